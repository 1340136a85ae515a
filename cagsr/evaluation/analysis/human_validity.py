"""Does the attention reward tell good replies from bad ones, as people judged them? AUC per component.

    replies, _ = read_labelled_replies(Path("../shared/data/taskmaster4_reward.jsonl"))
    scores = score_replies(replies, loaded, salience, attention, reward)   # one dict per reply
    table = auc_table(scores)                                              # both versions, every component

Each labelled reply is scored as the last agent turn of its context, in one capture pass, under both
versions of the reward (reward.history_tokens all and content) from the same attention. A score row holds
`VERSION/COMPONENT` for every component, `VERSION/focus@TAU0` for the floors the calibration searches,
`first_mass` (attention on the first history token), the log-prob signals of the same pass (`logprob`,
`predictive_entropy`, `self_certainty`, `length_tokens`: reward/intrinsic.py), the controls `length_words` and
`random` (a seeded score of the text: reward/builtin.py), and the label and group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from cagsr.attention.capture import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.attention.heads import Head, HeadRequest, all_heads, parse_heads
from cagsr.attention.tap import attention_modules
from cagsr.data.taskmaster import LabelledReply
from cagsr.evaluation.analysis.validity import auc_ci, column
from cagsr.formatting.history import format_history, format_response
from cagsr.models.checks import model_heads
from cagsr.models.registry import LoadedModel
from cagsr.reward.attention_reward import turn_components
from cagsr.reward.builtin import seeded_uniform
from cagsr.reward.combine import attention_weights, with_attention_reward
from cagsr.reward.config import RewardConfig, resolve_reward
from cagsr.reward.definition import AttentionTerms
from cagsr.reward.head_probe import turn_head_features
from cagsr.reward.intrinsic import token_signals, turn_mean
from cagsr.rollout.engines.onednn import fast_no_grad
from cagsr.rollout.episode import Action, Episode
from cagsr.salience.masks import Salience
from cagsr.scoring.passes import head_request
from cagsr.scoring.rows import build_rows

VERSIONS = ("all", "content")
TAU_GRID = (-math.inf, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
# What the reward assumes of a good reply: +1 the component is higher, -1 lower, 0 no claim (diagnostic).
EXPECTED = {"coverage": 1, "entropy": -1, "focus": 1, "repetition": -1, "reward": 1, "sink_mass": 0}
SCORED = ("coverage", "entropy", "focus", "repetition", "reward", "sink_mass")


def reply_episode(reply: LabelledReply, loaded: LoadedModel, max_context: int) -> Episode:
    """One-action episode: the context as the history, the reply as the response, at the reply's turn."""
    turns = reply.dialogue.turns
    response = format_response(loaded.tokenizer, turns[-1].text, loaded.eos_token_id)
    history = format_history(loaded.tokenizer, turns[:-1], loaded.is_encoder_decoder,
                             max_tokens=max(16, max_context - len(response)))
    ep = Episode(record=reply.dialogue, kind="dialogue", utterances=list(turns), done=True)
    ep.actions.append(Action(history, response, [reply.turn] * len(response), True))
    ep.turn_texts = [turns[-1].text]
    return ep


def _row_values(out: dict[str, torch.Tensor], key: str) -> list[float]:
    """[R, T'] component -> the value at each row's only turn."""
    return (out[key] * out["turn_mask"]).sum(-1).tolist()


def _chunk_scores(cap, inputs: dict, reward: AttentionTerms | RewardConfig, tau_grid: Sequence[float]) -> dict[str, list[float]]:
    """Every scored column of one chunk of rows from one capture."""
    cols: dict[str, list[float]] = {}
    for version in VERSIONS:
        cfg = replace(reward, history_tokens=version)
        out = with_attention_reward(turn_components(cap, **inputs, cfg=cfg), attention_weights(cfg))
        for key in SCORED:
            cols[f"{version}/{key}"] = _row_values(out, key)
        for tau0 in tau_grid:
            floored = turn_components(cap, **inputs, cfg=replace(cfg, tau0=tau0))
            cols[f"{version}/focus@{tau0:g}"] = _row_values(floored, "focus")
    first = turn_components(cap, **inputs, cfg=replace(reward, history_tokens="all", sink_tokens="first"))
    cols["first_mass"] = _row_values(first, "sink_mass")
    seg = inputs["response_mask"].bool()  # one reply per row: every response token is the scored turn
    for name, values in token_signals(cap.logits, inputs["response_ids"]).items():
        cols[name] = turn_mean(values, seg).tolist()
    cols["length_tokens"] = seg.sum(-1).float().tolist()
    return cols


def _validity_request(loaded: LoadedModel, attention: AttentionConfig, reward) -> tuple[HeadRequest, tuple[Head, ...]]:
    """The capture's head request: the reward's own (attention.heads, a probe's heads) plus the per-head
    statistics of every head, which the lookback-ratio signals read; and that list of every head."""
    layers = len(attention_modules(loaded.model, cross=loaded.is_encoder_decoder))
    heads = all_heads(layers, model_heads(loaded) or 1)
    own = head_request(attention, [reward])
    features = tuple(dict.fromkeys([*(own.features if own else ()), *heads]))
    return HeadRequest(abar=own.abar if own else None, features=features), heads


def _lookback_signals(cap, seg: torch.Tensor, heads: tuple[Head, ...], selected: tuple[Head, ...]
                      ) -> dict[str, list[float]]:
    """Per-head attention read as one number per reply: mean_lookback, the lookback ratio (Lookback Lens: mass
    per history token over mass per own earlier token) averaged over every head; heads_lookback, over the
    attention.heads selection (the label-free retrieval heads of `cagsr heads`) when there is one."""
    lookback = turn_head_features(cap.head_stats, seg, heads, ["lookback"])  # [R, H]
    out = {"mean_lookback": lookback.mean(-1).tolist()}
    if selected:
        out["heads_lookback"] = lookback[:, [heads.index(h) for h in selected]].mean(-1).tolist()
    return out


@torch.no_grad()
def score_replies(replies: Sequence[LabelledReply], loaded: LoadedModel, salience: Salience,
                  attention: AttentionConfig, reward: AttentionTerms | RewardConfig, max_context: int = 768,
                  batch_rows: int = 8, tau_grid: Sequence[float] = TAU_GRID, progress: bool = False, seed: int = 0
                  ) -> list[dict[str, Any]]:
    """One dict per reply (in the replies' order): id, label, group, turn, every scored column under both
    versions, the log-prob signals and the controls (random seeded by `seed`).

    reward's history_tokens is overridden per version; its sink_tokens 'auto' is resolved for the model."""
    reward = resolve_reward(reward, loaded.is_encoder_decoder)
    request, heads = _validity_request(loaded, attention, reward)
    out: list[dict[str, Any] | None] = [None] * len(replies)
    # Replies of similar length share a padded batch: far less padding than file order.
    order = sorted(range(len(replies)), key=lambda i: sum(len(u.text) for u in replies[i].dialogue.turns))
    starts = range(0, len(replies), batch_rows)
    for start in tqdm(starts, desc="validity", unit="batch", disable=not progress):
        index = order[start : start + batch_rows]
        episodes = [reply_episode(replies[i], loaded, max_context) for i in index]
        part = build_rows(episodes, loaded, salience).to(loaded.device)
        with fast_no_grad(loaded.model, True):
            cap = forward_with_capture(loaded.model, part.batch, attention.last_layers, attention.window,
                                       attention.prune_above, part.salient_mask, attention.prune_threshold,
                                       heads=request)
        inputs = part.reward_inputs()
        cols = _chunk_scores(cap, inputs, reward, tau_grid)
        cols |= _lookback_signals(cap, inputs["response_mask"].bool(), heads, parse_heads(attention.heads))
        for k, i in enumerate(index):
            reply, text = replies[i], replies[i].dialogue.turns[-1].text
            row = {"id": reply.dialogue.id, "label": reply.label, "group": reply.group, "turn": reply.turn}
            out[i] = row | {name: round(float(v[k]), 6) for name, v in cols.items()} | {
                "length_words": len(text.split()), "random": seeded_uniform(seed, text)}
    return [row for row in out if row is not None]


def holds(auc: float, low: float, high: float, expected: int) -> str:
    """'yes' when the interval excludes 0.5 on the expected side, 'no (reversed)' on the other side."""
    if math.isnan(low) or expected == 0:
        return "—"
    if (low > 0.5 and expected > 0) or (high < 0.5 and expected < 0):
        return "yes"
    if (low > 0.5 and expected < 0) or (high < 0.5 and expected > 0):
        return "no (reversed)"
    return "not significant"


def auc_table(scores: Sequence[dict[str, Any]], components: Sequence[str] = SCORED, n_boot: int = 1000,
              seed: int = 0) -> list[dict[str, Any]]:
    """AUC of each component (both versions) and of first_mass for telling label 1 from 0, with a cluster
    bootstrap interval over dialogues."""
    labels = column(scores, "label")
    groups = [s.get("group", i) for i, s in enumerate(scores)]
    good, bad = int((labels == 1).sum()), int((labels == 0).sum())
    keys = [(v, c) for v in VERSIONS for c in components] + [("all", "first_mass")]
    out = []
    for version, comp in keys:
        name = comp if comp == "first_mass" else f"{version}/{comp}"
        if name not in scores[0]:
            continue
        value, low, high = auc_ci(column(scores, name), labels, groups, n_boot, seed)
        expected = EXPECTED.get(comp, 0)
        out.append({"version": version, "component": comp, "auc": value, "low": low, "high": high,
                    "good": good, "bad": bad, "expected": expected, "holds": holds(value, low, high, expected)})
    return out


def auc_markdown(table: Sequence[dict[str, Any]]) -> str:
    """The AUC table as Markdown (one line per version and component)."""
    arrow = {1: "higher", -1: "lower", 0: "—"}
    lines = ["| history tokens | component | AUC [95% CI] | good / bad | good replies expected | holds? |",
             "|---|---|---|---|---|---|"]
    for r in table:
        cell = "—" if math.isnan(r["auc"]) else f"{r['auc']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        lines.append(f"| {r['version']} | {r['component']} | {cell} | {r['good']} / {r['bad']} | "
                     f"{arrow[r['expected']]} | {r['holds']} |")
    return "\n".join(lines)


def sink_summary(scores: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean attention share on the first history token and on all sink tokens, over the replies."""
    return {"first_mass": float(np.nanmean(column(scores, "first_mass"))),
            "sink_mass": float(np.nanmean(column(scores, "all/sink_mass")))}
