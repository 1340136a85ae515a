"""The Python API end to end on chains of thought: train with a combined reward, score, evaluate.

    python examples/python_api/train_score_evaluate.py                       # tiny-llama, seconds
    python examples/python_api/train_score_evaluate.py --model smollm2-135m --iterations 8 --problems 64

The trained reward is the attention reward plus answer correctness (a built-in) plus a user reward from
my_rewards.py (next to this file), each with a weight; salient history tokens also come from a user source
in the same file. Every part is logged (reward/attention, reward/correctness, reward/shows_work; eval/... for the held-out episodes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cagsr.api as cagsr

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "my_rewards.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--problems", type=int, default=12, help="generated math problems")
    parser.add_argument("--output-dir", default="runs/example-api")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    run_dir = Path(args.output_dir) / "train"

    result = cagsr.train("tiny", {
        "data.path": "generated:math", "data.num_generated": args.problems,
        "rollout.cot_max_new_tokens": 24, "rollout.max_steps": 4,
        "reward.parts": ["attention", "1.0*correctness", f"0.2*{PLUGINS}:shows_work"],
        "salience.sources": f"idf|entities|{PLUGINS}:numbers",
        "ppo.iterations": args.iterations, "heldout.every": 1, "checkpoints.every": 1000,
        "run.output_dir": str(run_dir), "run.overwrite": True, "run.threads": args.threads,
    }, model=args.model)
    last = result.history[-1]
    parts = {k: round(v, 4) for k, v in last.items() if k.startswith(("reward/", "eval/"))}
    print(json.dumps({"run_dir": str(result.run_dir), "iterations": len(result.history), **parts}))

    # The trained model's attention reward on recorded solutions (the reference ones of the data).
    rows = cagsr.score(model=result.run_dir, data="generated:math",
                       overrides={"data.num_generated": 4, "run.threads": args.threads})
    print(json.dumps({"scored_turns": len(rows), "mean_reward": sum(r["reward"] for r in rows) / len(rows)}))

    # Held-out accuracy, step correctness and the attention reward of what the trained model generates.
    report = cagsr.evaluate(model=result.run_dir, data="generated:math",
                            overrides={"data.num_generated": args.problems, "max_records": 4,
                                       "run.threads": args.threads})
    print(json.dumps({k: report.summary[k] for k in ("n", "accuracy", "step_correctness", "reward")}))


if __name__ == "__main__":
    main()
