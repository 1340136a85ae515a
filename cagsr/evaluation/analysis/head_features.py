"""Per-head attention features and label-free attention signals of rated replies, from one capture pass each.

    replies = read_rated_replies(Path("../shared/data/ratings/fed_turn.jsonl"), aspect="overall")
    rows = score_head_features(replies, loaded, salience, attention, reward, retrieval=top_heads)

A rated-reply file (format: ../shared/data/ratings/README.md) holds one reply a line: dialogue `turns`,
the last one the rated agent reply, and `scores` per aspect. Each reply is scored as the last agent turn
of its context, teacher-forced, in one capture pass that keeps, for every head of every layer, the
lookback ratio, the history entropy, the first-token mass and the history mass averaged over the reply's
tokens ([L*H] each), the paper's reward (all and content history tokens) from the default abar, and the
same reward read from the `retrieval` heads only (a second abar of the same pass).

A row: id, group (the context), score, model, tokens, words, the scalar signals (`all/reward`,
`retrieval/coverage`, `mean_lookback`, ...) and one list per feature (`lookback`, ...) in `heads` order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from cagsr.attention.capture import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.attention.heads import Head, HeadRequest, all_heads
from cagsr.attention.tap import attention_modules
from cagsr.data.readers import RecordError, decode_json_line, iter_lines
from cagsr.data.schema import Dialogue, Utterance
from cagsr.data.taskmaster import LabelledReply
from cagsr.errors import DataError
from cagsr.evaluation.analysis.human_validity import reply_episode
from cagsr.models.checks import model_heads
from cagsr.models.registry import LoadedModel
from cagsr.reward.attention_reward import turn_components
from cagsr.reward.combine import attention_weights, with_attention_reward
from cagsr.reward.config import RewardConfig, resolve_reward
from cagsr.reward.head_probe import FEATURES, turn_head_features
from cagsr.salience.masks import Salience
from cagsr.scoring.rows import build_rows

SIGNALS = ("coverage", "focus", "repetition", "reward")


@dataclass(kw_only=True)
class RatedReply(LabelledReply):
    """A reply with a continuous human score (label) and the system that wrote it."""

    model: str = ""
    """meta.model of the row: the system or human that wrote the reply."""


def context_key(turns: Sequence[Utterance]) -> str:
    """A short stable id of a list of turns."""
    text = json.dumps([[u.role, u.text] for u in turns])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def conversation_groups(dialogues: Sequence[Sequence[Utterance]]) -> list[str]:
    """[n] conversation id of each rated dialogue (context + reply): replies to the same context, and a reply
    whose whole dialogue opens another one's context (FED rates several turns of one conversation), share
    it, so splits and the bootstrap keep a conversation together. The id is the key of the group's shortest
    context."""
    n = len(dialogues)
    turns = [[(u.role, u.text) for u in d] for d in dialogues]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_context: dict[str, int] = {}
    for i, t in enumerate(turns):
        parent[root(i)] = root(by_context.setdefault(json.dumps(t[:-1]), i))
    for i, t in enumerate(turns):  # O(n^2) prefix checks: rated files hold hundreds of replies
        for j, u in enumerate(turns):
            if len(u) > len(t) and u[: len(t)] == t:
                parent[root(i)] = root(j)
    shortest: dict[int, int] = {}
    for i in range(n):
        r = root(i)
        if r not in shortest or len(turns[i]) < len(turns[shortest[r]]):
            shortest[r] = i
    return [context_key(dialogues[shortest[root(i)]][:-1]) for i in range(n)]


def read_rated_replies(path: Path, aspect: str = "overall", exclude_models: Sequence[str] = ()) -> list[RatedReply]:
    """Every row whose meta.model is not excluded; a bad row raises DataError naming file:line."""
    out = []
    for lineno, item in iter_lines(path):
        try:
            obj = decode_json_line(item)
            turns = [Utterance(t["role"], str(t["text"])) for t in obj["turns"]]
            score = float(obj["scores"][aspect])
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}:{lineno}: expected turns [{{role, text}}] and scores.{aspect} ({err})") from None
        except RecordError as err:
            raise DataError(f"{path}:{lineno}: {err}") from None
        if len(turns) < 2 or turns[-1].role != "agent":
            raise DataError(f"{path}:{lineno}: the last turn must be the rated agent reply, after some context")
        model = str(obj.get("meta", {}).get("model", ""))
        rid = str(obj.get("id", f"line{lineno}"))
        out.append(RatedReply(dialogue=Dialogue(rid, turns), label=score, group="", model=model))
    for reply, group in zip(out, conversation_groups([r.dialogue.turns for r in out]), strict=True):
        reply.group = group  # grouped before rows are left out: a left-out reply still links its conversation
    out = [r for r in out if r.model not in exclude_models]
    if not out:
        raise DataError(f"{path}: no rated replies (after leaving out {list(exclude_models)})")
    return out


def _reply_values(out: dict[str, torch.Tensor], key: str) -> list[float]:
    return (out[key] * out["turn_mask"]).sum(-1).tolist()


def _signals(cap, inputs: dict, reward: RewardConfig, heads: tuple[Head, ...], retrieval: tuple[Head, ...]
             ) -> dict[str, list]:
    """Every column of one chunk of replies (one turn per row) from its capture."""
    cols: dict[str, list] = {}
    versions = {"all": cap, "content": cap}
    if retrieval:
        abar, mass = cap.extra_abar["retrieval"]
        versions["retrieval"] = replace(cap, abar=abar, history_mass=mass)
    for name, capture in versions.items():
        cfg = replace(reward, history_tokens="content" if name == "content" else "all")
        out = with_attention_reward(turn_components(capture, **inputs, cfg=cfg), attention_weights(cfg))
        for key in SIGNALS:
            cols[f"{name}/{key}"] = _reply_values(out, key)
    seg = inputs["response_mask"].bool()
    for kind in FEATURES:
        cols[kind] = turn_head_features(cap.head_stats, seg, heads, [kind]).tolist()
    lookback = torch.tensor(cols["lookback"])
    cols["mean_lookback"] = lookback.mean(-1).tolist()
    if retrieval:
        cols["retrieval_lookback"] = lookback[:, [heads.index(h) for h in retrieval]].mean(-1).tolist()
    cols["tokens"] = seg.sum(-1).tolist()
    return cols


@torch.no_grad()
def score_head_features(replies: Sequence[RatedReply], loaded: LoadedModel, salience: Salience,
                        attention: AttentionConfig, reward: RewardConfig, retrieval: tuple[Head, ...] = (),
                        max_context: int = 768, batch_rows: int = 8, progress: bool = False
                        ) -> tuple[list[dict[str, Any]], tuple[Head, ...]]:
    """(one row per reply, the heads of the feature lists): see the module docstring."""
    reward = resolve_reward(reward, loaded.is_encoder_decoder)
    layers = len(attention_modules(loaded.model, cross=loaded.is_encoder_decoder))
    heads = all_heads(layers, model_heads(loaded) or 1)
    request = HeadRequest(features=heads, extra_abar={"retrieval": retrieval} if retrieval else {})
    out: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(replies), batch_rows), desc="head features", unit="batch", disable=not progress):
        chunk = list(replies[start : start + batch_rows])
        part = build_rows([reply_episode(r, loaded, max_context) for r in chunk], loaded, salience).to(loaded.device)
        cap = forward_with_capture(loaded.model, part.batch, attention.last_layers, heads=request)
        cols = _signals(cap, part.reward_inputs(), reward, heads, retrieval)
        for i, reply in enumerate(chunk):
            row = {"id": reply.dialogue.id, "group": reply.group, "score": reply.label, "model": reply.model,
                   "words": len(reply.dialogue.turns[-1].text.split())}
            for key, values in cols.items():
                value = values[i]
                row[key] = [round(v, 5) for v in value] if isinstance(value, list) else round(float(value), 6)
            out.append(row)
    return out, heads
