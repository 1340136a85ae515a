"""Scoring: rows of the rollout's turns, the teacher-forced passes over them, and what they give.

    rows = build_rows(episodes, policy, salience)             # rows.py: per-turn views, named masks
    passes = plan_passes(rows, layout="packed", ...)          # layout.py: one sequence per dialogue
    scores = score_rows(policy.model, rows, ...)               # passes.py: log-probs, values, components

Used by ppo/ (training), evaluation/ and the `cagsr reward` probe (probe.py, plots.py).
"""
