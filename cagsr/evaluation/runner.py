"""Generate on a split and measure it: the engine of `cagsr eval` and of every `cagsr reproduce` row.

Dialogues are answered turn by turn with the recorded history (so each reply can be compared with
the recorded one); math problems get a greedy chain of thought. Every generation call is timed.

    report = evaluate(loaded, records, EvalSettings(), consistency_corpus=train_dialogues)
    report.summary, report.rows
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

from cagsr.attention.config import AttentionConfig
from cagsr.data.schema import Dialogue, MathProblem, Record, Utterance
from cagsr.data.sources import corpus_texts
from cagsr.evaluation.metrics.scores import (
    answer_correct,
    coherence,
    latency_summary,
    split_steps,
    step_correctness,
)
from cagsr.formatting.examples import supervised_pairs
from cagsr.formatting.history import format_history
from cagsr.models.registry import LoadedModel
from cagsr.reward.config import RewardConfig
from cagsr.reward.definition import RewardDefinition, define_reward
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.engines.base import SamplingConfig, make_engine
from cagsr.rollout.episode import Action, Episode
from cagsr.rollout.generate import decode_reply
from cagsr.rollout.runner import fill_cot_episode
from cagsr.salience.config import SalienceConfig
from cagsr.scoring.probe import probe_versions


@dataclass
class EvalSettings:
    engine: str = "auto"
    """Generation engine whose latency is reported (auto, hf, lean, vllm)."""
    batch_size: int = 8
    """Prompts per generation call."""
    max_new_tokens: int = 48
    """New tokens per dialogue turn."""
    cot_max_new_tokens: int = 128
    """New tokens per chain-of-thought solution."""
    max_turns: int | None = 4
    """Agent turns evaluated per dialogue, its first ones (None: every one)."""
    max_context: int = 768
    """Longest prompt in tokens."""
    step_threshold: float = 0.85
    """Cosine similarity from which a generated step matches a reference step (see metrics.step_correctness)."""
    attention_reward: bool = True
    """Also score the generated text with the attention reward."""
    reuse_history: bool = True
    """Dialogues: an engine that keeps K/V per session (lean) carries each dialogue's cached history from
    one evaluated turn to the next and prefills only the new tokens (same replies up to float rounding)."""

    def applying_to(self, kind: str) -> dict:
        """The settings an evaluation of `kind` (dialogue or math) depends on: what a saved evaluation
        records, so that a rerun can tell whether it still holds."""
        unused = {"dialogue": ("cot_max_new_tokens", "step_threshold"),
                  "math": ("max_new_tokens", "max_turns", "reuse_history")}
        return {k: v for k, v in asdict(self).items() if k not in unused[kind]}


@dataclass
class EvalReport:
    summary: dict = field(default_factory=dict)
    """Means of every metric, latency and the engine name."""
    rows: list[dict] = field(default_factory=list)
    """One row per evaluated turn (dialogue) or solution (math)."""


def _generate_timed(engine, prompts: list[list[int]], max_new_tokens: int, batch: int,
                    sessions: list[str] | None = None):
    """Greedy completions in the order of `prompts`, and the latency of the generation calls.

    Prompts are batched shortest first: a batch is padded to its longest prompt, so batches of similar
    lengths waste the least prefill. With `sessions` (each prompt's dialogue, its turns in order), the
    k-th prompts of the dialogues are generated after the (k-1)-th, so an engine that keeps K/V per
    session prefills only what a turn adds to the dialogue's previous prompt."""
    sampling = SamplingConfig(do_sample=False, max_new_tokens=max_new_tokens)
    outputs, seconds, turns, tokens = [None] * len(prompts), [], [], []
    batches = _batches(prompts, batch, sessions)
    last_call = {sessions[i]: n for n, chunk in enumerate(batches) for i in chunk} if sessions else {}
    for n, chunk in enumerate(batches):
        keys = [sessions[i] for i in chunk] if sessions else None
        began = time.perf_counter()
        result = engine.generate([prompts[i] for i in chunk], sampling, sessions=keys)
        seconds.append(time.perf_counter() - began)
        turns.append(len(chunk))
        tokens.append(sum(len(c[0].token_ids) for c in result))
        for i, candidates in zip(chunk, result, strict=True):
            outputs[i] = candidates[0]
        for key in keys or []:
            if last_call[key] == n and hasattr(engine, "end_session"):  # free a finished dialogue's K/V
                engine.end_session(key)
    return outputs, latency_summary(seconds, turns, tokens)


def _batches(prompts: list[list[int]], batch: int, sessions: list[str] | None) -> list[list[int]]:
    """Prompt indices per generation call: shortest first, and with sessions one wave per turn position
    (a wave never holds two prompts of one session, and follows the wave before it).

    >>> _batches([[1] * 3, [1], [1] * 2], 2, None)
    [[1, 2], [0]]
    >>> _batches([[1] * 3, [1] * 5, [1], [1] * 2], 2, ["a", "a", "b", "b"])
    [[2, 0], [3, 1]]
    """
    waves: dict[int, list[int]] = {}
    earlier: dict[str, int] = {}  # session -> its prompts so far
    for i in range(len(prompts)):
        position = 0
        if sessions:
            position = earlier.get(sessions[i], 0)
            earlier[sessions[i]] = position + 1
        waves.setdefault(position, []).append(i)
    out = []
    for _, members in sorted(waves.items()):
        members.sort(key=lambda i: len(prompts[i]))
        out += [members[start : start + batch] for start in range(0, len(members), batch)]
    return out


def _dialogue_rows(loaded, engine, dialogues: list[Dialogue], s: EvalSettings, consistency):
    pairs = [p for p in supervised_pairs(dialogues, loaded, s.max_context) if p.turn_index > 0]
    by_dialogue: dict[str, list] = {}
    for p in pairs:
        by_dialogue.setdefault(p.record_id, []).append(p)
    pairs = [p for group in by_dialogue.values() for p in group[: s.max_turns]]
    outputs, latency = _generate_timed(engine, [p.history.input_ids for p in pairs], s.max_new_tokens, s.batch_size,
                                       [p.record_id for p in pairs] if s.reuse_history else None)
    texts = [decode_reply(loaded, c.token_ids) for c in outputs]
    coh = coherence(texts, [p.response_text for p in pairs])
    records = {d.id: d for d in dialogues}
    contexts = [records[p.record_id].turns[: p.turn_index] for p in pairs]
    accepted = consistency.accepts(contexts, texts) if consistency is not None else [math.nan] * len(pairs)
    rows = [
        {
            "episode": p.record_id,
            "turn": p.turn_index,
            "generated": t,
            "reference": p.response_text,
            "coherence": c,
            "consistency": float(a),
        }
        for p, t, c, a in zip(pairs, texts, coh, accepted, strict=True)
    ]
    episodes = []
    for p, c in zip(pairs, outputs, strict=True):
        ids = c.token_ids or [loaded.eos_token_id]
        # The recorded history before the reply, then the reply: what a reward part reads the context from.
        said = [Utterance(u.role, u.text) for u in records[p.record_id].turns[: p.turn_index]]
        ep = Episode(record=records[p.record_id], kind="dialogue", done=True,
                     utterances=[*said, Utterance("agent", decode_reply(loaded, ids))])
        ep.actions, ep.turn_texts = [Action(p.history, ids, [0] * len(ids), c.finished)], [ep.utterances[-1].text]
        episodes.append(ep)
    return rows, episodes, latency


def _math_rows(loaded, engine, problems: list[MathProblem], s: EvalSettings, embedder, max_steps: int):
    prompts = [
        format_history(
            loaded.tokenizer, [Utterance("user", p.question)], loaded.is_encoder_decoder, s.max_context
        )
        for p in problems
    ]
    outputs, latency = _generate_timed(engine, [p.input_ids for p in prompts], s.cot_max_new_tokens, s.batch_size)
    rows, episodes = [], []
    for problem, prompt, c in zip(problems, prompts, outputs, strict=True):
        text = decode_reply(loaded, c.token_ids)
        rows.append(
            {
                "episode": problem.id,
                "turn": 0,
                "generated": text,
                "reference": problem.solution_text(),
                "accuracy": float(answer_correct(text, problem.answer)),
                "step_correctness": step_correctness(
                    split_steps(text), problem.steps, embedder, s.step_threshold
                ),
            }
        )
        ep = Episode(record=problem, kind="math", utterances=[Utterance("user", problem.question)])
        fill_cot_episode(ep, prompt, c.token_ids or [loaded.eos_token_id], c.finished, loaded, max_steps)
        episodes.append(ep)
    return rows, episodes, latency


def default_definition(loaded: LoadedModel, records: list[Record]) -> RewardDefinition:
    """The reward `cagsr train` would define with default settings, salience fitted on `records`: what a model
    that carries no reward of its own is scored with."""
    return define_reward(RewardConfig(), SalienceConfig(), AttentionConfig(), max_steps=RolloutConfig().max_steps,
                         corpus=corpus_texts(records), encoder_decoder=loaded.is_encoder_decoder)


def _attach_rewards(rows: list[dict], episodes: list[Episode], loaded, kind: str, reward: RewardDefinition,
                    job=None) -> None:
    # Both versions of the reward, so the validity report can set them side by side; unprefixed keys are
    # the definition's own version. A definition that trains more than the attention reward adds its total.
    versions = probe_versions(episodes, loaded, reward,
                              {v: replace(reward.terms, history_tokens=v) for v in ("all", "content")}, job=job)
    keys = ("coverage", "focus", "repetition", "entropy", "clamped_fraction", "sink_mass", "reward",
            *(("turn_reward",) if "turn_reward" in (versions["all"] or [{}])[0] else ()))
    scored = [{**own, **{f"{v}/{k}": versions[v][i][k] for v in versions for k in keys}}
              for i, own in enumerate(versions[reward.terms.history_tokens])]
    keys = (*keys, *(f"{v}/{k}" for v in versions for k in keys))
    if kind == "math":  # one row per solution: mean over its steps
        for row in rows:
            mine = [r for r in scored if r["record_id"] == row["episode"]]
            row.update({k: sum(r[k] for r in mine) / max(1, len(mine)) for k in keys})
            row["reward_version"] = scored[0]["reward_version"] if scored else None
        return
    for row, s in zip(rows, scored, strict=True):
        row.update({k: s[k] for k in keys}, reward_version=s["reward_version"])


def evaluate(
    loaded: LoadedModel,
    records: list[Record],
    settings: EvalSettings | None = None,
    consistency=None,
    embedder=None,
    reward: RewardDefinition | None = None,
    reward_reader: LoadedModel | None = None,
    reward_job=None,
) -> EvalReport:
    """Generate on `records` and compute every metric that applies to their kind; the attention reward (and
    the chain of thought's step split) is `reward`'s, by default the paper's (default_definition), read from
    `reward_reader`'s pass over the replies (default: the model that wrote them; reward.reader reference: the
    frozen reference, same tokenizer). `reward_job` reaches the reward's parts (a seeded random part reads its
    seed from job.run.seed, as in the run it was trained in)."""
    s = settings or EvalSettings()
    reward = reward or default_definition(loaded, records)
    engine = make_engine(s.engine, loaded)
    kind = "math" if isinstance(records[0], MathProblem) else "dialogue"
    if kind == "dialogue":
        rows, episodes, latency = _dialogue_rows(loaded, engine, records, s, consistency)
    else:
        rows, episodes, latency = _math_rows(loaded, engine, records, s, embedder, reward.max_steps)
    if s.attention_reward:
        _attach_rewards(rows, episodes, reward_reader or loaded, kind, reward, reward_job)
    metric_keys = [k for k in rows[0] if isinstance(rows[0][k], float)] if rows else []
    summary = {k: _nanmean([r[k] for r in rows]) for k in metric_keys}
    summary |= {
        "engine": getattr(engine, "name", s.engine),
        "n": len(rows),
        "kind": kind,
        "ms_per_turn": latency["ms_per_turn"],
        "ms_per_token": latency["ms_per_token"],
    }
    return EvalReport(summary, rows)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan
