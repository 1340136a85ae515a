"""The measurement behind the step-matching threshold of `metrics.step_correctness` (0.85).

    python -m cagsr.evaluation.metrics.step_threshold ../shared/data/gsm8k_train.jsonl --problems 200

For each GSM8K solution step, the best cosine similarity (MiniLM) to a set of reference steps:
  paraphrase     hand-written rewordings (PARAPHRASES below, same numbers) vs their own solution
  same-solution  a step vs the *other* steps of its own solution (same entities, different step)
  other-problem  a step vs the steps of another, randomly paired problem
  wrong-number   a step with its last number changed vs its own solution (a wrong step that reads alike)

Measured (first 200 problems, 742 steps, seed 0; share of steps whose best cosine is >= t; "+num"
only counts reference steps that state the same numbers, as step_correctness does by default):

    t     paraphrase  same-solution  other-problem  wrong-number | paraphrase+num  same-solution+num
    0.75  1.00        0.53           0.00           1.00         | 1.00            0.02
    0.80  1.00        0.34           0.00           1.00         | 1.00            0.01
    0.85  0.95        0.22           0.00           1.00         | 0.95            0.01
    0.90  0.85        0.09           0.00           0.97         | 0.85            0.01
    0.95  0.30        0.02           0.00           0.89         | 0.30            0.00
    mean  0.93        0.75           0.28           0.98         (n = 20, 742, 742, 738)

Reading: steps of another problem never come near (mean 0.28), but other steps of the same
solution do (mean 0.75), and a step with a wrong number looks identical (0.98). With the number
check, 0.85 accepts 95% of the paraphrases while 1% of different same-solution steps pass; going
lower gains at most one paraphrase of twenty here, going higher loses a sixth of them. Without the
number check, 0.85 would let 22% of different same-solution steps through: use 0.90 there.
"""

from __future__ import annotations

import random

import numpy as np

from cagsr.data.schema import MathProblem
from cagsr.evaluation.metrics.embedding import Embedder
from cagsr.evaluation.metrics.scores import NUMBER, step_numbers

THRESHOLDS = (0.75, 0.80, 0.85, 0.90, 0.95)

# (GSM8K train index, reference step, a rewording with the same numbers), written by hand.
PARAPHRASES: list[tuple[int, str, str]] = [
    (0, "Natalia sold 48/2 = 24 clips in May.", "In May she sold half as many clips: 48/2 = 24."),
    (
        0,
        "Natalia sold 48+24 = 72 clips altogether in April and May.",
        "Altogether in April and May Natalia sold 48+24 = 72 clips.",
    ),
    (1, "Weng earns 12/60 = $0.2 per minute.", "Per minute, Weng makes 12/60 = 0.2 dollars."),
    (
        1,
        "Working 50 minutes, she earned 0.2 x 50 = $10.",
        "For 50 minutes of work she earned 0.2 * 50 = 10 dollars.",
    ),
    (
        2,
        "In the beginning, Betty has only 100 / 2 = $50.",
        "At first Betty only has half of the money, 100 / 2 = $50.",
    ),
    (2, "Betty's grandparents gave her 15 * 2 = $30.", "Her grandparents give Betty 15 * 2 = $30."),
    (3, "Maila read 12 x 2 = 24 pages today.", "Today Maila read twice as many pages, 12 x 2 = 24."),
    (3, "There are 120 - 36 = 84 pages left to be read.", "She still has 120 - 36 = 84 pages left to read."),
    (4, "He writes each friend 3*2=6 pages a week", "Each week he writes 3*2=6 pages to each friend."),
    (4, "That means he writes 12*52=624 pages a year", "In a year he writes 12*52=624 pages."),
    (
        5,
        "So in Mark's garden, there are 10 + 8 = 18 purple flowers.",
        "Mark has 10 + 8 = 18 purple flowers in his garden.",
    ),
    (
        5,
        "So in total Mark has 28 + 7 = 35 plants in his garden.",
        "Mark's garden has 28 + 7 = 35 plants in total.",
    ),
    (
        6,
        "He eats 16 from the small pizza because 2 x 8 = 16",
        "From the small pizzas he eats 2 x 8 = 16 pieces.",
    ),
    (6, "He eats 48 pieces because 32 + 16 = 48", "In total he eats 32 + 16 = 48 pieces."),
    (
        7,
        "Next, he added another 2 pounds of jelly beans, bringing the weight to 6+2=8 pounds.",
        "Adding 2 more pounds of jelly beans made it 6+2=8 pounds.",
    ),
    (8, "Thus, Alexis paid S = 184 - 143 = $41 for the shoes.", "So the shoes cost Alexis 184 - 143 = $41."),
    (9, "Her overtime pay is 18+9 = $27.00", "She earns 18+9 = $27 for each overtime hour."),
    (
        9,
        "2 hours of overtime pay for 5 days means she makes 54*5 = $270.00",
        "Over 5 days, 2 overtime hours a day earn her 54*5 = $270.",
    ),
    (11, "He earned $60 mowing lawns because 4 x 15 = 60", "Mowing lawns earned him 4 x 15 = $60."),
    (11, "He shoveled 5 driveways because 35 / 7 = 5", "He must have shoveled 35 / 7 = 5 driveways."),
]


def change_last_number(step: str) -> str | None:
    """The step with its last number increased by one (None when it has no number)."""
    matches = list(NUMBER.finditer(step))
    if not matches:
        return None
    last = matches[-1]
    digits = last.group().lstrip("$-").replace(",", "")
    try:
        changed = str(int(float(digits)) + 1)
    except ValueError:
        return None
    return step[: last.start()] + changed + step[last.end() :]


def _best(emb: Embedder, queries: list[str], refs: list[list[str]], same_numbers: bool) -> np.ndarray:
    """Best cosine of each query to its own reference steps (only those with its numbers, if asked)."""
    out = []
    for vec, query, ref in zip(emb.encode(queries), queries, refs, strict=True):
        if same_numbers:
            ref = [r for r in ref if step_numbers(r) == step_numbers(query)]
        out.append(float((emb.encode(ref) @ vec).max()) if ref else -1.0)
    return np.array(out)


def measure(problems: list[MathProblem], embedder: Embedder, seed: int = 0) -> dict[str, np.ndarray]:
    """Best-cosine samples of the four kinds described in the module docstring."""
    rng = random.Random(seed)
    with_steps = [p for p in problems if len(p.steps) >= 2]
    same_q, same_r, other_q, other_r, wrong_q, wrong_r = [], [], [], [], [], []
    for p in with_steps:
        partner = rng.choice([o for o in with_steps if o is not p])
        for i, step in enumerate(p.steps):
            same_q.append(step)
            same_r.append(p.steps[:i] + p.steps[i + 1 :])
            other_q.append(step)
            other_r.append(partner.steps)
            wrong = change_last_number(step)
            if wrong is not None:
                wrong_q.append(wrong)
                wrong_r.append(p.steps)
    by_index = {int(p.id.rsplit("-", 1)[-1]) - 1: p for p in problems if p.id.rsplit("-", 1)[-1].isdigit()}
    para = [
        (by_index[i], text) for i, step, text in PARAPHRASES if i in by_index and step in by_index[i].steps
    ]
    kinds = {
        "paraphrase": ([t for _, t in para], [p.steps for p, _ in para]),
        "same-solution": (same_q, same_r),
        "other-problem": (other_q, other_r),
        "wrong-number": (wrong_q, wrong_r),
    }
    out = {name: _best(embedder, q, r, same_numbers=False) for name, (q, r) in kinds.items()}
    out |= {f"{name}+num": _best(embedder, q, r, same_numbers=True) for name, (q, r) in kinds.items()}
    return out


def table(samples: dict[str, np.ndarray], thresholds=THRESHOLDS) -> str:
    kinds = list(samples)
    lines = ["t     " + " ".join(f"{k:>14}" for k in kinds)]
    for t in thresholds:
        lines.append(f"{t:.2f}   " + " ".join(f"{float((samples[k] >= t).mean()):>14.2f}" for k in kinds))
    means = [samples[k][samples[k] > -1] for k in kinds]  # -1: no reference step had the same numbers
    lines.append("mean  " + " ".join(f"{float(m.mean()) if m.size else float('nan'):>14.2f}" for m in means))
    lines.append("n      " + " ".join(f"{samples[k].size:>14d}" for k in kinds))
    return "\n".join(lines)
