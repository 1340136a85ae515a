"""Quality metrics of method.md section 7: coherence, solution accuracy, step correctness, latency.

    sentence_bleu("the cat sat", "the cat sat")                     # 1.0
    coherence(generated, recorded)                                  # mean of BLEU and BERTScore F1 per pair
    answer_correct("... #### 1,234", "1234")                        # True
    step_correctness(split_steps(text), problem.steps, Embedder())  # share of matching steps

Text metrics are pure functions; BERTScore and embeddings load their model once, on first use.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU

from cagsr.data.readers import normalise_number
from cagsr.errors import ModelError
from cagsr.evaluation.config import MetricsConfig
from cagsr.evaluation.metrics.embedding import Embedder, resolve_device, resolve_model_path

__all__ = [
    "BertScorer",
    "Embedder",
    "answer_correct",
    "coherence",
    "extract_final_answer",
    "latency_summary",
    "normalise_step",
    "sentence_bleu",
    "split_steps",
    "step_correctness",
]

# Effective order: a short sentence with no matching 4-gram still gets a BLEU from its lower orders.
_BLEU = BLEU(effective_order=True)
# A leading minus only when it cannot be a subtraction ("10-8" is 10 and 8, "-5" is minus five).
NUMBER = re.compile(r"(?:(?<![\w).])-)?\$?(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)")
ANSWER_MARKERS = re.compile(r"####|answer\s*:", re.IGNORECASE)


def sentence_bleu(hyp: str, ref: str) -> float:
    """sacreBLEU sentence BLEU (13a tokens, exp smoothing, effective order) scaled to [0, 1]."""
    if not hyp.strip() or not ref.strip():
        return 0.0
    return _BLEU.sentence_score(hyp, [ref]).score / 100.0


class BertScorer:
    """BERTScore F1 with the bundled MiniLM, offline; the model loads on the first call, once.

    bert_score loads `model_type` with AutoModel.from_pretrained, so a local folder works. No
    baseline rescaling: bert_score ships baselines only for hub names, so raw F1 is reported
    (unrelated English sentences score about 0.1-0.3 with MiniLM, identical ones 1.0).
    """

    def __init__(self, config: MetricsConfig | None = None, device: str = "auto") -> None:
        self.config = config or MetricsConfig()
        self.path = str(resolve_model_path(self.config.bert_model))
        self.device = resolve_device(device)
        self._scorer = None

    def _load(self):
        if self._scorer is None:
            # bert_score picks T5EncoderModel for any model_type containing "t5"; a BERT folder
            # under such a path would load wrongly, so say so instead.
            if "t5" in self.path.lower() and "t5" not in (self.config.bert_model or "").lower():
                raise ModelError(
                    f"{self.path}: bert_score treats paths containing 't5' as T5; move the model"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from bert_score import BERTScorer

            self._scorer = BERTScorer(
                model_type=self.path,
                num_layers=self.config.bert_layers,
                batch_size=self.config.bert_batch_size,
                device=self.device,
                rescale_with_baseline=False,
            )
        return self._scorer

    def f1(self, hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
        """BERTScore F1 per (hypothesis, reference) pair; an empty hypothesis or reference scores 0."""
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
        # Empty texts never reach bert_score: its empty-sentence path calls a tokenizer method that
        # transformers 5 removed. Such a pair scores 0.
        keep = [i for i, (h, r) in enumerate(zip(hyps, refs, strict=True)) if h.strip() and r.strip()]
        out = [0.0] * len(hyps)
        if keep:
            _, _, f1 = self._load().score([hyps[i] for i in keep], [refs[i] for i in keep], verbose=False)
            for i, value in zip(keep, f1.tolist(), strict=True):
                out[i] = float(value)
        return out


@functools.cache
def default_bert_scorer() -> BertScorer:
    """One shared default scorer per process, so repeated coherence calls load the model once."""
    return BertScorer()


def coherence(hyps: Sequence[str], refs: Sequence[str], scorer: BertScorer | None = None) -> list[float]:
    """Per pair: mean of sentence BLEU and BERTScore F1 (clipped to [0, 1]) against the recorded response."""
    f1 = (scorer or default_bert_scorer()).f1(hyps, refs)
    return [
        0.5 * (sentence_bleu(h, r) + min(1.0, max(0.0, f))) for h, r, f in zip(hyps, refs, f1, strict=True)
    ]


def extract_final_answer(text: str) -> str | None:
    """The answer after the last '####' or 'Answer:' marker, else the last number; normalised.

    After a marker the first number wins ('Answer: 12 apples' -> '12'); a marker followed by no
    number gives its text ('Answer: seven' -> 'seven'). No marker and no number gives None.
    """
    markers = list(ANSWER_MARKERS.finditer(text))
    if markers:
        tail = text[markers[-1].end() :].strip()
        first = NUMBER.search(tail)
        if first:
            return normalise_number(first.group())
        words = tail.splitlines()[0].strip() if tail else ""
        return normalise_number(words) if words else None
    numbers = NUMBER.findall(text)
    return normalise_number(numbers[-1]) if numbers else None


def answer_correct(text: str, gold: str) -> bool:
    """Exact match of the extracted final answer with the gold answer, numbers normalised."""
    answer = extract_final_answer(text)
    return answer is not None and answer == normalise_number(gold)


def split_steps(text: str) -> list[str]:
    """Reasoning steps: non-empty lines, or sentences when there is one line; the answer is dropped.

    A line starting with an answer marker is dropped; text before a marker on a line is kept.
    """
    lines = []
    for line in text.strip().splitlines():
        marker = ANSWER_MARKERS.search(line)
        kept = line[: marker.start()] if marker else line
        if kept.strip():
            lines.append(kept.strip())
    if len(lines) == 1:
        # One line: split into sentences; decimals ('0.5') have no space after the point.
        lines = [s.strip() for s in re.split(r"(?<=[.!?])\s+", lines[0]) if s.strip()]
    return lines


def normalise_step(step: str) -> str:
    """Lowercase, numbers normalised ('$1,200.00' -> '1200'), punctuation stripped, spaces collapsed."""
    text = NUMBER.sub(lambda m: " " + normalise_number(m.group()) + " ", step.lower())
    text = re.sub(r"[^\w\s+\-*/=%.]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # sentence full stops go, decimal points stay
    return " ".join(text.split())


def step_numbers(step: str) -> frozenset[str]:
    return frozenset(normalise_number(n) for n in NUMBER.findall(step))


def step_correctness(
    generated_steps: Sequence[str],
    reference_steps: Sequence[str],
    embedder: Embedder | None = None,
    threshold: float = 0.85,
    same_numbers: bool = True,
) -> float:
    """Share of generated steps that match some reference step (0.0 when nothing was generated).

    A step matches when equal after `normalise_step`, or, with an embedder, when its cosine
    similarity to a reference step is >= `threshold` and (with `same_numbers`) it states the same
    numbers as that step: sentence embeddings hardly see arithmetic ('48/2 = 24' vs '48/2 = 25').

    Why 0.85 (`python -m cagsr.evaluation.metrics.step_threshold`, first 200 GSM8K train problems,
    MiniLM, best cosine of a step to a solution's steps; full table in that module): with the
    number check, 0.85 accepts 95% of 20 hand-written paraphrases of reference steps and 1% of
    the 742 *other* steps of the same solution (0.80: 100% / 1%, 0.90: 85% / 1%); steps of other
    problems never pass (mean cosine 0.28). Without the number check 22% of other same-solution
    steps pass at 0.85 (mean cosine 0.75) and wrong-number copies of a step score 0.98, so keep it.
    """
    if not generated_steps:
        return 0.0
    refs = {normalise_step(r) for r in reference_steps}
    exact = [normalise_step(g) in refs for g in generated_steps]
    if all(exact) or embedder is None or not reference_steps:
        return sum(exact) / len(generated_steps)
    todo = [i for i, hit in enumerate(exact) if not hit]
    sims = embedder.encode([generated_steps[i] for i in todo]) @ embedder.encode(list(reference_steps)).T
    ref_numbers = [step_numbers(r) for r in reference_steps]
    for row, i in zip(sims, todo, strict=True):
        ok = row >= threshold
        if same_numbers:
            gen_numbers = step_numbers(generated_steps[i])
            ok &= np.array([gen_numbers == nums for nums in ref_numbers])
        exact[i] = bool(ok.any())
    return sum(exact) / len(generated_steps)


def latency_summary(
    seconds: Sequence[float],
    turns: Sequence[int],
    tokens: Sequence[int],
) -> dict[str, float]:
    """Latency of timed generation calls: ms per dialogue turn and per generated (reasoning) token.

    Each index is one timed call (a batch of turns): its wall time in seconds, the number of turns
    it produced and the number of tokens it generated. Totals are divided, so big batches weigh
    more; the median over calls is reported too (robust to a slow first call).
    """
    if not (len(seconds) == len(turns) == len(tokens)):
        raise ValueError("seconds, turns and tokens must have one entry per timed call")
    if not seconds:
        return {
            "calls": 0,
            "total_s": 0.0,
            "ms_per_turn": math.nan,
            "ms_per_token": math.nan,
            "median_ms_per_turn": math.nan,
            "median_ms_per_token": math.nan,
        }
    s, n_turns, n_tok = (np.asarray(v, dtype=float) for v in (seconds, turns, tokens))
    total_ms = 1000.0 * s.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_turn = np.where(n_turns > 0, 1000.0 * s / n_turns, np.nan)
        per_token = np.where(n_tok > 0, 1000.0 * s / n_tok, np.nan)
    return {
        "calls": len(seconds),
        "total_s": float(s.sum()),
        "ms_per_turn": total_ms / n_turns.sum() if n_turns.sum() > 0 else math.nan,
        "ms_per_token": total_ms / n_tok.sum() if n_tok.sum() > 0 else math.nan,
        "median_ms_per_turn": float(np.nanmedian(per_turn)) if np.isfinite(per_turn).any() else math.nan,
        "median_ms_per_token": float(np.nanmedian(per_token)) if np.isfinite(per_token).any() else math.nan,
    }
