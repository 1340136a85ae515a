"""Where a row's change of the attention reward comes from: the reward is alpha*coverage + beta*focus -
gamma*repetition per turn, so its change over No-RL splits exactly into the three weighted terms. A rise
that is all "less repetition of the history" reads differently from one in coverage, the term the paper
builds its method on; and a control that moves the reward as far through the same term says the term is
easy to move, not that the reward was learned.

    rows = reward_sources(rep.eval_rows, sft_seeds=3)
    print(render_sources(rows, order))      # a markdown table
    png = sources_plot(rows, order)         # the same as stacked bars
"""

from __future__ import annotations

import statistics

from cagsr.report.figures import term_bars
from cagsr.reproduce.claims import NO_RL

TERMS = (("coverage", ("coverage_weight", "alpha"), 1.0), ("focus", ("focus_weight", "beta"), 1.0),
         ("repetition", ("repetition_weight", "gamma"), -1.0))
"""(term, its weight's key in a row's reward_version (today's name, then the name evaluations saved before
the reward had one definition used), sign in the reward)."""


def _weight(version: dict, keys: tuple[str, str]) -> float:
    return version[keys[0]] if keys[0] in version else version[keys[1]]


def _term_means(rows: list[dict]) -> dict[str, float] | None:
    """The mean weighted terms and reward of one row-seed's turns; None when the rows carry no reward terms."""
    if not rows or any(not isinstance(r.get("reward_version"), dict) or "coverage" not in r for r in rows):
        return None
    weights = rows[0]["reward_version"]
    means = {t: sign * _weight(weights, w) * statistics.fmean(r[t] for r in rows) for t, w, sign in TERMS}
    return {"reward": statistics.fmean(r["reward"] for r in rows), **means}


def reward_sources(eval_rows: list[dict], sft_seeds: int, baseline: str = NO_RL) -> list[dict]:
    """Per system (other than `baseline`), the change of the reward over the baseline seed that starts from the
    same supervised model (seed s % sft_seeds), split into weighted terms; means over the system's seeds.
    `eval_rows`: one per evaluated turn, with system, seed, reward, coverage, focus, repetition, reward_version.

    >>> v = {"coverage_weight": 1.0, "focus_weight": 0.1, "repetition_weight": 0.5}
    >>> def row(system, cov, foc, rep):
    ...     return {"system": system, "seed": 0, "coverage": cov, "focus": foc, "repetition": rep,
    ...             "reward": cov + 0.1 * foc - 0.5 * rep, "reward_version": v}
    >>> out = reward_sources([row("No-RL", 0.1, -2.0, 0.4), row("A", 0.1, -1.0, 0.2)], sft_seeds=1)
    >>> {k: round(x, 3) if isinstance(x, float) else x for k, x in out[0].items()}
    {'system': 'A', 'seeds': 1, 'reward': 0.2, 'coverage': 0.0, 'focus': 0.1, 'repetition': 0.1}
    """
    grouped: dict[tuple[str, int], list[dict]] = {}
    for r in eval_rows:
        grouped.setdefault((r["system"], r["seed"]), []).append(r)
    means = {key: m for key, rows in grouped.items() if (m := _term_means(rows)) is not None}
    out: dict[str, list[dict[str, float]]] = {}
    for (system, seed), m in means.items():
        base = means.get((baseline, seed % sft_seeds))
        if system != baseline and base is not None:
            out.setdefault(system, []).append({k: m[k] - base[k] for k in m})
    return [{"system": system, "seeds": len(diffs), **{k: statistics.fmean(d[k] for d in diffs) for k in diffs[0]}}
            for system, diffs in out.items()]


def render_sources(rows: list[dict], order: list[str]) -> str:
    """A markdown table, systems in `order` (the table's rows).

    >>> print(render_sources([{"system": "A", "seeds": 2, "reward": 0.2, "coverage": 0.0, "focus": 0.1,
    ...                        "repetition": 0.1}], ["A"]))
    | system | seeds | reward change | = coverage | + focus | + repetition |
    |---|---|---|---|---|---|
    | A | 2 | +0.200 | +0.000 | +0.100 | +0.100 |
    """
    by_name = {r["system"]: r for r in rows}
    lines = ["| system | seeds | reward change | = coverage | + focus | + repetition |", "|---|---|---|---|---|---|"]
    for name in order:
        if r := by_name.get(name):
            lines.append(f"| {name} | {r['seeds']} | {r['reward']:+.3f} | {r['coverage']:+.3f} | {r['focus']:+.3f} "
                         f"| {r['repetition']:+.3f} |")
    return "\n".join(lines)


def sources_plot(rows: list[dict], order: list[str]) -> bytes | None:
    """The table as stacked bars per system: each term's contribution, the reward's change as a dot."""
    by_name = {r["system"]: r for r in rows}
    present = [by_name[name] for name in order if name in by_name]
    return term_bars([f"{r['system']} ({r['seeds']})" for r in present],
                     {term: [r[term] for r in present] for term, _, _ in TERMS}, [r["reward"] for r in present],
                     "attention reward − No-RL (same supervised model), split into its weighted terms; "
                     "repetition: positive = less")
