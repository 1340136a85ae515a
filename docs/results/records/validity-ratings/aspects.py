"""Other rated aspects from the per-reply scores of the validity runs (no model pass): the signals named below
against each aspect, with context-bootstrap intervals and the length-partial figure.

    python docs/results/records/validity-ratings/aspects.py RUNS   # RUNS holds v-{base,sft}-{usr,fed}/scores.jsonl
Writes aspects.json next to this file and prints the base model's Spearman figures. Run from the repository root.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, ".")
from cagsr.evaluation.analysis.correlation import signal_table  # noqa: E402

ASPECTS = {"usr": ("usr_personachat", ["maintains_context", "uses_knowledge", "engaging", "natural"]),
           "fed": ("fed_turn", ["relevant", "specific", "engaging", "correct"])}
SIGNALS = ["all/coverage", "all/focus", "all/reward", "content/reward", "first_mass", "predictive_entropy",
           "self_certainty", "length_tokens", "random"]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(runs: Path) -> dict:
    out = {}
    for key, (data, aspects) in ASPECTS.items():
        rated = {r["id"]: r["scores"] for r in jsonl(Path(f"../shared/data/ratings/{data}.jsonl"))}
        for model in ("base", "sft"):
            scores = jsonl(runs / f"v-{model}-{key}" / "scores.jsonl")
            for aspect in aspects:
                rows = [s | {"label": rated[s["id"]][aspect]} for s in scores]
                out[f"{model}-{key}-{aspect}"] = signal_table(rows, SIGNALS, n_boot=1000)
    return out


if __name__ == "__main__":
    tables = main(Path(sys.argv[1]))
    (Path(__file__).parent / "aspects.json").write_text(json.dumps(tables, indent=1))
    for name, table in tables.items():
        if name.startswith("base"):
            print(name, " ".join(f"{r['signal']}={r['spearman']:+.2f}" for r in table))
