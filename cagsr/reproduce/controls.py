"""What the controls say, in sentences read from the paired comparisons: whether this budget can move held-out
quality when the reward is quality itself (the positive control against No-RL), and whether the attention
reward trains anything a random reward does not (CAGSR multi-turn against the random-reward control).

    lines = controls_section(rep.paired, rep.stops, "dialogue", main_set="star")
    png = controls_plot(rep.paired)          # the same comparisons on quality metrics, as a forest plot
"""

from __future__ import annotations

from cagsr.report.figures import forest_plot
from cagsr.reproduce.claims import METRICS, MULTI, NO_RL, VERSUS_MULTI
from cagsr.reproduce.stopping import kl_text
from cagsr.reproduce.tables import POSITIVE, RANDOM


def _find(paired: list[dict], a: str, b: str, metric: str, main_set: str) -> dict | None:
    return next((r for r in paired if (r["a"], r["b"], r["metric"], r["set"]) == (a, b, metric, main_set)), None)


def _diff(r: dict | None) -> str:
    if r is None or r["n"] == 0:
        return "not run yet"
    seeds = len(r["seed_diffs"])
    return (f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}] ({seeds} seed{'s' if seeds > 1 else ''}, "
            f"{r['verdict']})")


def _kl(stops: list[dict]) -> str:
    kl = kl_text(stops)
    return f"KL to the reference {kl.removeprefix('KL ')}" if kl else "KL not logged"


def controls_section(paired: list[dict], stops: dict[str, list[dict]], table: str, main_set: str) -> list[str]:
    """Markdown lines of the section (empty when neither control has run).

    >>> paired = [{"a": POSITIVE, "b": NO_RL, "metric": "coherence", "set": "s", "mean": 0.02, "low": 0.01,
    ...            "high": 0.03, "n": 9, "seed_diffs": [0.02], "verdict": "holds"}]
    >>> print("\\n".join(controls_section(paired, {POSITIVE: [{"kl_ref": 0.05}]}, "dialogue", "s")))
    - Positive control (quality reward) − No-RL, the reward being the evaluation's quality itself (KL to the reference 0.0500): coherence +0.020 [+0.010, +0.030] (1 seed, holds); consistency not run yet; reward not run yet.
    - CAGSR multi-turn − Random-reward control: coherence not run yet; consistency not run yet; reward not run yet.
    - Random-reward control − No-RL: coherence not run yet; consistency not run yet; reward not run yet.
    """
    if not any(r["a"] in (POSITIVE, RANDOM) for r in paired):
        return []
    metrics = METRICS[table]

    def line(a: str, b: str, lead: str) -> str:
        return f"- {lead}: " + "; ".join(f"{m} {_diff(_find(paired, a, b, m, main_set))}" for m in metrics) + "."

    def reversed_line(a: str, b: str) -> str:  # the comparisons are stored as control - multi-turn
        cells = []
        for m in metrics:
            r = _find(paired, b, a, m, main_set)
            # the claim expects the control below multi-turn, so its verdict reads the same either way round
            flipped = None if r is None else {**r, "mean": -r["mean"], "low": -r["high"], "high": -r["low"],
                                              "seed_diffs": [-d for d in r["seed_diffs"]]}
            cells.append(f"{m} {_diff(flipped)}")
        return f"- {a} − {b}: " + "; ".join(cells) + "."

    return [line(POSITIVE, NO_RL, f"{POSITIVE} − No-RL, the reward being the evaluation's quality itself "
                                  f"({_kl(stops.get(POSITIVE, []))})"),
            reversed_line(MULTI, RANDOM),
            line(RANDOM, NO_RL, f"{RANDOM} − No-RL")]


def controls_plot(paired: list[dict]) -> bytes | None:
    """A forest plot (PNG) of the controls' and peers' comparisons with No-RL and CAGSR multi-turn on the quality
    metrics of every held-out set (the attention reward left out: it is what most rows did not train on)."""
    return forest_plot([r for r in paired if r["a"] in VERSUS_MULTI and r["metric"] != "reward"],
                       title="controls and peers against No-RL and CAGSR multi-turn")
