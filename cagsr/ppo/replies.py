"""The same held-out prompts answered before and after training, side by side: what changed, in words.

The training job answers the first `heldout.replies` held-out records greedily (no sampling, one
candidate, a fixed seed for the user simulator) once before any update and once at the end, and appends
each conversation to RUN/heldout_replies.jsonl. table.md (and so report.html) pairs the first block with
the last, agent turn by agent turn; the terminal gets the same pairs as plain text.

    episodes = greedy_episodes(records, policy, engine, simulator, rollout_cfg, seed)
    append_replies(run_dir, reply_rows(updates, episodes))
    pairs = before_after_replies(read_replies(run_dir))   # None until both ends exist
    markdown, text = render_replies(pairs), replies_text(pairs)
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

from cagsr.models.registry import LoadedModel
from cagsr.rollout.config import RolloutConfig
from cagsr.rollout.episode import Episode
from cagsr.rollout.runner import rollout

FILE = "heldout_replies.jsonl"


def greedy_episodes(records: list, policy: LoadedModel, engine, simulator, cfg: RolloutConfig,
                    seed: int) -> list[Episode]:
    """The records rolled out with greedy decoding: the same prompts give the same replies until the
    weights change (a sampled reply would differ by chance alone)."""
    sampling = dataclasses.replace(cfg.sampling, do_sample=False)
    return rollout(records, policy, engine, simulator, dataclasses.replace(cfg, sampling=sampling),
                   random.Random(seed))


def reply_rows(updates: int, episodes: list[Episode]) -> list[dict]:
    """One dict per episode: its conversation as the policy held it after `updates` PPO updates."""
    block = f"{time.time_ns()}"  # tells the two ends apart, also when a resumed run repeats an iteration
    return [{"block": block, "updates": updates, "episode": ep.record.id, "kind": ep.kind,
             "conversation": [{"role": u.role, "text": u.text} for u in ep.utterances]} for ep in episodes]


def append_replies(run_dir: Path, rows: list[dict]) -> None:
    with (run_dir / FILE).open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_replies(run_dir: Path) -> list[dict]:
    path = run_dir / FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _turns(conversation: list[dict]) -> list[tuple[str, str]]:
    """(prompt, reply) per agent turn: the user message before each agent reply."""
    out, prompt = [], ""
    for u in conversation:
        if u["role"] == "agent":
            out.append((prompt, u["text"]))
        elif u["role"] == "user":
            prompt = u["text"]
    return out


def before_after_replies(rows: list[dict]) -> dict | None:
    """{'before': updates, 'after': updates, 'episodes': [{'episode', 'turns': [{'prompt', 'before', 'after'}]}]}
    pairing the first and the last block episode by episode; None without two blocks."""
    blocks: dict[str, list[dict]] = {}
    for row in rows:
        blocks.setdefault(row["block"], []).append(row)
    if len(blocks) < 2:
        return None
    first = min(blocks.values(), key=lambda b: b[0]["updates"])
    last = list(blocks.values())[-1]
    after = {r["episode"]: _turns(r["conversation"]) for r in last}
    episodes = []
    for row in first:
        later = after.get(row["episode"], [])
        turns = []
        for t, (prompt, reply) in enumerate(_turns(row["conversation"])):
            prompt_after, reply_after = later[t] if t < len(later) else ("", "")
            if prompt_after and prompt_after != prompt:  # a simulator that reacts to the reply asked otherwise
                prompt = f"{prompt} (after: {prompt_after})"
            turns.append({"prompt": prompt, "before": reply, "after": reply_after})
        episodes.append({"episode": row["episode"], "turns": turns})
    return {"before": first[0]["updates"], "after": last[0]["updates"], "episodes": episodes}


def _cell(text: str) -> str:
    """One Markdown table cell: no pipe or line break may split it."""
    return " ".join(text.replace("|", "/").split()) or "(empty)"


def render_replies(pairs: dict) -> str:
    """A Markdown section: per held-out episode a table prompt | before | after."""
    out = [f"# The same held-out prompts, before and after training\n\nGreedy replies after {pairs['before']} and "
           f"{pairs['after']} PPO updates.\n"]
    for ep in pairs["episodes"]:
        out += [f"## {ep['episode']}\n", f"| prompt | before ({pairs['before']}) | after ({pairs['after']}) |",
                "|---|---|---|"]
        out += [f"| {_cell(t['prompt'])} | {_cell(t['before'])} | {_cell(t['after'])} |" for t in ep["turns"]]
        out.append("")
    return "\n".join(out)


def replies_text(pairs: dict) -> str:
    """The same pairs for a terminal: the prompt, then the reply before and after, one block per turn."""
    out = [f"The same held-out prompts, greedy, before ({pairs['before']} PPO updates) and after "
           f"({pairs['after']}):"]
    for ep in pairs["episodes"]:
        out.append(f"\n== {ep['episode']}")
        for t in ep["turns"]:
            out += [f"  prompt: {_cell(t['prompt'])}", f"  before: {_cell(t['before'])}",
                    f"   after: {_cell(t['after'])}"]
    return "\n".join(out)
