"""Score episodes with a model's attention reward under a reward definition: the attention quality probe,
the held-out evaluation of a run, heatmaps.

    rows = probe(episodes, loaded, definition)                  # one dict per turn
    both = probe_versions(episodes, loaded, definition, {"all": terms_a, "content": terms_b})
    rows, scores, rewards = score_heldout(loaded, episodes, definition, scoring, job)   # what a run logs
    plot_episodes(episodes[:3], loaded, definition, out_dir)    # heatmap PNGs
    pngs = run_heatmaps(run_dir, 3)                             # a run's sample episode, final model
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import torch

from cagsr.attention.capture import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.data.schema import Dialogue, Utterance
from cagsr.models.registry import LoadedModel, load_model
from cagsr.reward.attention_reward import sink_mask
from cagsr.reward.builtin import seeded_uniform
from cagsr.reward.combine import LOGGED, TurnRewards
from cagsr.reward.config import RewardConfig, parse_sinks
from cagsr.reward.definition import AttentionTerms, RewardDefinition, define_reward, find_definition
from cagsr.reward.head_probe import HEAD_SIGNALS
from cagsr.reward.intrinsic import INTRINSIC
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.episode import Episode
from cagsr.rollout.recorded import recorded_episodes
from cagsr.salience.config import SalienceConfig
from cagsr.salience.masks import Salience
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.passes import PolicyScores, score_rows, score_versions
from cagsr.scoring.plots import plot_turn_attention
from cagsr.scoring.rows import RowBatch, build_rows, episode_keywords


def salient_words(action, salience: Salience, keywords: list[str]) -> list[str]:
    """Distinct salient words of a history, in order of first appearance."""
    mask = salience.token_mask(action.history, keywords)
    words, current, last_end = [], "", -1
    for keep, (start, end) in zip(mask, action.history.offsets, strict=True):
        if keep and current and not action.history.text[last_end:start].strip():
            current += action.history.text[last_end:end]
        elif keep:
            if current:
                words.append(current.strip())
            current = action.history.text[start:end]
        if keep:
            last_end = end
    if current:
        words.append(current.strip())
    return list(dict.fromkeys(w for w in words if w))


def probe(episodes: list[Episode], loaded: LoadedModel, definition: RewardDefinition, batch_episodes: int = 8,
          job=None, seed: int = 0) -> list[dict]:
    """One dict per (episode, turn) with every reward component, the attention reward, the log-prob signals of
    the pass, the controls (length in words, a random score seeded by `seed`), the salient words and the reward
    version (history tokens, sink tokens, weights); with reward parts besides the attention reward also each
    part (part/<name>) and the trained total (turn_reward). `job` reaches the parts."""
    own = dataclasses.replace(definition.terms, head_signals=True)  # the rows carry the per-head signals too
    return probe_versions(episodes, loaded, definition, {"own": own}, batch_episodes, job, seed)["own"]


def probe_versions(episodes: list[Episode], loaded: LoadedModel, definition: RewardDefinition,
                   versions: dict[str, AttentionTerms], batch_episodes: int = 8, job=None, seed: int = 0
                   ) -> dict[str, list[dict]]:
    """`probe` under each named version of the attention terms, all read from the same capture passes."""
    salience, attention = definition.salience_marker(), definition.attention_config()
    out: dict[str, list[dict]] = {name: [] for name in versions}
    for start in range(0, len(episodes), batch_episodes):
        chunk = episodes[start : start + batch_episodes]
        rows = build_rows(chunk, loaded, salience)
        n_turns = max(ep.num_turns for ep in chunk)
        comps = score_versions(loaded.model, rows, n_episodes=len(chunk), n_turns=n_turns, attention=attention,
                               rewards=versions, scoring=ScoringConfig())
        for name, terms in versions.items():
            stage = dataclasses.replace(definition.stage, weights=terms.weights)
            turn = stage(chunk, comps[name], job)
            table = {**comps[name], **turn.logged()}
            extra = [k for k in HEAD_SIGNALS if k in table]
            extra += [] if stage.attention_only else [k for k in table if k.startswith("part/")]
            if not stage.attention_only:
                table["turn_reward"] = turn.total
                extra.append("turn_reward")
            for e, ep in enumerate(chunk):
                keywords = episode_keywords(ep)
                for t in range(ep.num_turns):
                    action = next(a for a in ep.actions if t in a.token_turn)
                    text = ep.turn_texts[t]
                    controls = {"length_words": len(text.split()), "random": seeded_uniform(seed, text)}
                    out[name].append({"record_id": ep.record.id, "turn": t, "text": text,
                                      **{k: round(float(table[k][e, t]), 6) for k in (*LOGGED, *INTRINSIC, *extra)},
                                      **controls, "salient_words": salient_words(action, salience, keywords),
                                      "reward_version": reward_version(terms)})
    return out


def score_heldout(loaded: LoadedModel, episodes: list[Episode], definition: RewardDefinition,
                  scoring: ScoringConfig, job=None) -> tuple[RowBatch, PolicyScores, TurnRewards]:
    """A run's held-out scoring of `episodes` in one call: the rows, the capture pass (log-probs, components)
    and the turn rewards. Trainer.evaluate logs these; `cagsr reward --heldout` recomputes them."""
    rows = build_rows(episodes, loaded, definition.salience_marker())
    scores = score_rows(loaded.model, rows, n_episodes=len(episodes), n_turns=max(ep.num_turns for ep in episodes),
                        attention=definition.attention_config(), reward=definition.terms, scoring=scoring)
    return rows, scores, definition.stage(episodes, scores.components, job)


WEIGHTS = ("coverage_weight", "focus_weight", "repetition_weight", "tau0", "kappa", "repetition_ngram")
"""The reward settings a scored row names beside its components."""


def reward_version(terms: AttentionTerms) -> dict:
    """What a row's components depend on: which history tokens coverage and focus read, and the weights."""
    return {"history_tokens": terms.history_tokens, "sink_tokens": terms.sink_tokens,
            **{k: getattr(terms, k) for k in WEIGHTS}}


def sink_flags(action, loaded: LoadedModel, reward: AttentionTerms) -> list[bool]:
    """[N] the reward.sink_tokens of one action's history (reward resolved)."""
    history = action.history
    real = torch.ones(1, len(history.input_ids), dtype=torch.bool)
    template = torch.tensor([[r == "template" for r in history.token_role]])
    special_ids = set(loaded.tokenizer.all_special_ids)
    special = torch.tensor([[i in special_ids for i in history.input_ids]])
    return sink_mask(real, template, special, parse_sinks(reward.sink_tokens))[0].tolist()


@torch.no_grad()
def plot_episodes(episodes: list[Episode], loaded: LoadedModel, definition: RewardDefinition, folder: Path
                  ) -> list[Path]:
    """A heatmap per turn (row) of each episode under the definition's salience and capture settings; the sink
    columns are hatched (grey: left out)."""
    reward, salience, attention = definition.terms, definition.salience_marker(), definition.attention_config()
    tok, paths = loaded.tokenizer, []
    for ep in episodes:
        rows = build_rows([ep], loaded, salience)
        for r, action in enumerate(ep.actions):
            part = rows.select(torch.tensor([r])).to(loaded.device)
            cap = forward_with_capture(loaded.model, part.batch, attention.last_layers)
            n_real, s_real = len(action.history.input_ids), len(action.response_ids)
            hist = part.batch.history_mask[0]
            abar = cap.abar[0, :s_real][:, hist].float().cpu().numpy()
            assert abar.shape[1] == n_real
            turn = action.token_turn[0]
            title = f"{ep.record.id} turn {turn}: {ep.turn_texts[turn][:90]}"
            path = folder / f"{ep.record.id}-turn{turn:02d}.png".replace("/", "_")
            paths.append(plot_turn_attention(
                abar, [tok.decode([i]) for i in action.history.input_ids], action.history.token_turn,
                action.history.token_role, salience.token_mask(action.history, episode_keywords(ep)),
                [tok.decode([i]) for i in action.response_ids], title, path, sink_flags(action, loaded, reward),
                reward.history_tokens == "content"))
    return paths


def run_heatmaps(run: Path, limit: int) -> list[bytes]:
    """Heatmaps of the run's last sample episode, re-scored with its final model under the run's reward
    definition (its salience with the fitted IDF table, capture settings and sink tokens)."""
    samples = run / "samples.jsonl"
    if not (run / "model" / "config.json").exists() or not samples.exists():
        return []
    first = json.loads(samples.read_text(encoding="utf-8").splitlines()[-1])
    if first["kind"] != "dialogue":
        return []
    dialogue = Dialogue(id=first["record_id"], turns=[Utterance(u["role"], u["text"] or "…")
                                                      for u in first["conversation"]])
    loaded = load_model(str(run))
    episodes = recorded_episodes([dialogue], loaded, max_turns=limit)
    # A run written before reward definitions were saved: the paper's reward, salience fitted on the dialogue.
    definition = find_definition(run) or define_reward(
        RewardConfig(), SalienceConfig(), AttentionConfig(), max_steps=RolloutConfig().max_steps,
        corpus=[u.text for u in dialogue.turns], encoder_decoder=loaded.is_encoder_decoder)
    with tempfile.TemporaryDirectory() as tmp:
        paths = plot_episodes(episodes, loaded, definition, Path(tmp))
        return [p.read_bytes() for p in paths]
