"""Held-out evaluation, episode by episode: what the before/after table of a run is computed from.

Trainer.evaluate appends one line per held-out episode to RUN/eval_episodes.jsonl (the attention reward
and its components, every reward part, the trained total, the quality proxy, response length, KL to the
reference, and under "replay" what rebuilds the episode token for token: `cagsr reward --model RUN
--heldout` scores it again with the run's reward definition), one block per evaluation. The table compares the first block (before any update) with the last, with 95%
bootstrap intervals over episodes; the change is bootstrapped in pairs when both blocks hold the same
episodes (the held-out set and its rollout seed are fixed, so they do).

    rows = episode_rows(updates, episodes, comps, parts, kl, total, replays)
    append_rows(run_dir, rows)
    table = before_after(read_rows(run_dir))

KL to the reference is logged twice per episode: kl_ref (k1, the mean log-ratio, which can come out
negative on a sample) and kl_ref_k3 (never negative); the table shows k3.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import Tensor

from cagsr.evaluation.analysis.bootstrap import bootstrap_change, bootstrap_mean
from cagsr.evaluation.metrics.quality import episode_quality
from cagsr.ppo import functional as PF
from cagsr.rollout.episode import Episode
from cagsr.scoring.rows import RowBatch

FILE = "eval_episodes.jsonl"
TABLE_FILE = "table.md"  # the name `cagsr report` shows in a run's section
COMPONENTS = ("reward", "coverage", "focus", "repetition", "entropy", "clamped_fraction")
# Labels, and k1 (kept in eval_episodes.jsonl and the logs; the table shows k3, which cannot be negative).
NOT_IN_TABLE = ("block", "updates", "episode", "turns", "kl_ref")


def kl_per_episode(rows: RowBatch, logprobs: Tensor, ref_logprobs: Tensor, n_episodes: int
                   ) -> dict[str, list[float]]:
    """Per-token KL estimates to the reference, averaged over each episode's response tokens:
    {'kl_ref': k1 (policy/kl_ref), 'kl_ref_k3': k3 (never negative)}, each a list of n_episodes."""
    mask = rows.batch.response_mask.float()
    tokens = torch.zeros(n_episodes).index_add_(0, rows.row_episode, mask.sum(-1)).clamp_min(1)
    out = {}
    for name, kind in (("kl_ref", "k1"), ("kl_ref_k3", "k3")):
        per_row = (PF.kl_penalty(logprobs, ref_logprobs, kind) * mask).sum(-1)
        out[name] = (torch.zeros(n_episodes).index_add_(0, rows.row_episode, per_row) / tokens).tolist()
    return out


def episode_rows(updates: int, episodes: list[Episode], comps: dict[str, Tensor], parts: dict[str, Tensor],
                 kl: dict[str, list[float]], total: Tensor | None = None, replays: list[dict] | None = None
                 ) -> list[dict]:
    """One dict per episode: turn means of every component and part and of the trained total (turn_reward,
    when there are parts), quality, words per turn, KL (k1, k3), and the episode's replay record."""
    mask = comps["turn_mask"].float()
    block = f"{time.time_ns()}"  # tells evaluations apart, also when a resumed run repeats an iteration
    out = []
    for e, ep in enumerate(episodes):
        turns = float(mask[e].sum())

        def mean(table: Tensor, e: int = e, turns: float = turns) -> float:
            return float((table[e] * mask[e]).sum()) / turns if turns else math.nan

        texts = ep.turn_texts
        quality = {k.removeprefix("eval/"): v for k, v in episode_quality([ep]).items()}
        out.append({"block": block, "updates": updates, "episode": ep.record.id, "turns": turns,
                    **{k: mean(comps[k]) for k in COMPONENTS if k in comps},
                    **{f"part/{name}": mean(part) for name, part in parts.items()},
                    **({"turn_reward": mean(total)} if parts and total is not None else {}), **quality,
                    "response_words": sum(len(t.split()) for t in texts) / max(1, len(texts)),
                    **{name: values[e] for name, values in kl.items()},
                    **({"replay": replays[e]} if replays else {})})
    return out


def append_rows(run_dir: Path, rows: list[dict]) -> None:
    with (run_dir / FILE).open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def read_rows(run_dir: Path) -> list[dict]:
    path = run_dir / FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _blocks(rows: list[dict]) -> list[list[dict]]:
    blocks: dict[str, list[dict]] = {}
    for row in rows:
        blocks.setdefault(row["block"], []).append(row)
    return list(blocks.values())


def before_after(rows: list[dict]) -> dict | None:
    """{'before': updates, 'after': updates, 'episodes': n, 'metrics': [{name, before, after, change}]}:
    each value a (mean, low, high) triple; None without two evaluations."""
    blocks = _blocks(rows)
    if len(blocks) < 2:
        return None
    first, last = min(blocks, key=lambda b: b[0]["updates"]), blocks[-1]
    paired = [r["episode"] for r in first] == [r["episode"] for r in last]
    names = [k for k in first[0] if k not in NOT_IN_TABLE and isinstance(first[0][k], int | float)]
    metrics = []
    for name in names:
        a = [r[name] for r in first if isinstance(r.get(name), int | float) and not math.isnan(r[name])]
        b = [r[name] for r in last if isinstance(r.get(name), int | float) and not math.isnan(r[name])]
        metrics.append({"name": name, "before": bootstrap_mean(a), "after": bootstrap_mean(b),
                        "change": bootstrap_change(a, b, paired and len(a) == len(b) == len(first))})
    return {"before": first[0]["updates"], "after": last[0]["updates"], "episodes": len(last), "metrics": metrics}


def _cell(triple: tuple[float, float, float]) -> str:
    mean, low, high = triple
    return "n/a" if math.isnan(mean) else f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def render_table(table: dict) -> str:
    """A Markdown pipe table: metric | before | after | change, with 95% intervals."""
    head = (f"# Held-out metrics before and after training\n\n{table['episodes']} held-out episodes, mean "
            f"[95% bootstrap interval over episodes]; before: {table['before']} PPO updates, after: "
            f"{table['after']}; change: after - before.\n\n")
    lines = ["| metric | before | after | change |", "|---|---|---|---|"]
    lines += [f"| {m['name']} | {_cell(m['before'])} | {_cell(m['after'])} | {_cell(m['change'])} |"
              for m in table["metrics"]]
    return head + "\n".join(lines) + "\n"


def saved_train_job(run: Path):
    """The TrainJob a run folder saved (what its reward parts read as `job`), or None."""
    from cagsr.config import load_saved_job
    from cagsr.ppo.config import TrainJob

    return load_saved_job(TrainJob, run / "config.yaml", {}) if (run / "config.yaml").is_file() else None


def heldout_rows(job, loaded, definition) -> list[dict]:
    """The run's held-out episodes of its last evaluation, rebuilt token for token and scored as the run
    scored them: one row per episode with the keys of RUN/eval_episodes.jsonl (KL to the reference left out)."""
    from cagsr.errors import ConfigError
    from cagsr.rollout.recorded import replayed_episode
    from cagsr.scoring.config import ScoringConfig
    from cagsr.scoring.probe import score_heldout

    run = Path(job.model.name)
    logged = [r for r in read_rows(run) if "replay" in r]
    if not logged:
        raise ConfigError(f"--heldout: {run / FILE} holds no held-out episodes to replay (not a cagsr run folder, "
                          "or one written before replays were logged)")
    last = [r for r in logged if r["block"] == logged[-1]["block"]]
    episodes = [replayed_episode(r["replay"], loaded, definition.max_steps) for r in last]
    saved = saved_train_job(run)
    _, scores, turn = score_heldout(loaded, episodes, definition, saved.scoring if saved else ScoringConfig(), saved)
    comps = {**scores.components, "reward": turn.attention}
    rows = episode_rows(last[0]["updates"], episodes, comps, turn.parts, {"kl_ref": [math.nan] * len(episodes)},
                        turn.total)
    return [{k: v for k, v in row.items() if k not in ("block", "kl_ref", "kl_ref_k3")} for row in rows]
