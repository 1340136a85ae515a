"""Score recorded dialogues or solutions with a model's attention reward: an attention quality probe.

    rows = probe(records, loaded, salience, attention_cfg, reward_cfg)     # one dict per turn
    both = probe_versions(records, loaded, salience, attention_cfg, {"all": cfg_a, "content": cfg_b})
    plot_episodes(episodes[:3], loaded, salience, attention_cfg, out_dir)  # heatmap PNGs
"""

from __future__ import annotations

from pathlib import Path

import torch

from cagsr.attention.capture import forward_with_capture
from cagsr.attention.config import AttentionConfig
from cagsr.models.registry import LoadedModel
from cagsr.reward.attention_reward import sink_mask
from cagsr.reward.builtin import seeded_uniform
from cagsr.reward.config import RewardConfig, parse_sinks, resolve_reward
from cagsr.rollout.episode import Episode
from cagsr.salience.masks import Salience
from cagsr.scoring.config import ScoringConfig
from cagsr.scoring.passes import SIGNALS, score_versions
from cagsr.scoring.plots import plot_turn_attention
from cagsr.scoring.rows import build_rows, episode_keywords


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


def probe(episodes: list[Episode], loaded: LoadedModel, salience: Salience, attention: AttentionConfig,
          reward: RewardConfig, batch_episodes: int = 8, seed: int = 0) -> list[dict]:
    """One dict per (episode, turn) with every reward component and log-prob signal of the pass, the controls
    (length in words, a random score seeded by `seed`), the salient words and the reward version (history
    tokens, sink tokens, weights) the components were computed with."""
    return probe_versions(episodes, loaded, salience, attention, {"own": reward}, batch_episodes, seed)["own"]


def probe_versions(episodes: list[Episode], loaded: LoadedModel, salience: Salience, attention: AttentionConfig,
                   rewards: dict[str, RewardConfig], batch_episodes: int = 8, seed: int = 0
                   ) -> dict[str, list[dict]]:
    """`probe` under each named reward version, all read from the same capture passes."""
    rewards = {name: resolve_reward(r, loaded.is_encoder_decoder) for name, r in rewards.items()}
    out: dict[str, list[dict]] = {name: [] for name in rewards}
    for start in range(0, len(episodes), batch_episodes):
        chunk = episodes[start : start + batch_episodes]
        rows = build_rows(chunk, loaded, salience)
        n_turns = max(ep.num_turns for ep in chunk)
        comps = score_versions(loaded.model, rows, n_episodes=len(chunk), n_turns=n_turns, attention=attention,
                               rewards=rewards, scoring=ScoringConfig())
        for e, ep in enumerate(chunk):
            keywords = episode_keywords(ep)
            for t in range(ep.num_turns):
                action = next(a for a in ep.actions if t in a.token_turn)
                words = salient_words(action, salience, keywords)
                text = ep.turn_texts[t]
                controls = {"length_words": len(text.split()), "random": seeded_uniform(seed, text)}
                for name, reward in rewards.items():
                    out[name].append({"record_id": ep.record.id, "turn": t, "text": text,
                                      **{k: round(float(comps[name][k][e, t]), 6) for k in SIGNALS},
                                      **controls, "salient_words": words, "reward_version": reward_version(reward)})
    return out


def reward_version(reward: RewardConfig) -> dict:
    """What a row's components depend on: which history tokens coverage and focus read, and the weights."""
    return {"history_tokens": reward.history_tokens, "sink_tokens": reward.sink_tokens,
            **{k: getattr(reward, k) for k in ("alpha", "beta", "gamma", "tau0", "kappa", "n")}}


def sink_flags(action, loaded: LoadedModel, reward: RewardConfig) -> list[bool]:
    """[N] the reward.sink_tokens of one action's history (reward resolved)."""
    history = action.history
    real = torch.ones(1, len(history.input_ids), dtype=torch.bool)
    template = torch.tensor([[r == "template" for r in history.token_role]])
    special_ids = set(loaded.tokenizer.all_special_ids)
    special = torch.tensor([[i in special_ids for i in history.input_ids]])
    return sink_mask(real, template, special, parse_sinks(reward.sink_tokens))[0].tolist()


@torch.no_grad()
def plot_episodes(episodes: list[Episode], loaded: LoadedModel, salience: Salience, attention: AttentionConfig,
                  folder: Path, reward: RewardConfig | None = None) -> list[Path]:
    """A heatmap per turn (row) of each episode; the sink columns are hatched (grey: left out)."""
    reward = resolve_reward(reward or RewardConfig(), loaded.is_encoder_decoder)
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
