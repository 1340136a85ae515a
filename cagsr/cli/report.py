"""`cagsr report RUN_DIR...`: one self-contained HTML page with curves, tables, validity plots and
attention heatmaps of sample episodes (drawn with the run's final model).

    cagsr report runs/dialogue runs/reproduce-dialogue-small --output report.html
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from cagsr.cli.args import JobParser
from cagsr.errors import ConfigError


def heatmaps_for(run: Path, limit: int) -> list[bytes]:
    """Heatmaps of the run's first sample episode, re-scored with its final model."""
    import json

    from cagsr.attention.config import AttentionConfig
    from cagsr.data.schema import Dialogue, Utterance
    from cagsr.models.registry import load_model
    from cagsr.rollout.recorded import recorded_episodes
    from cagsr.salience.masks import Salience
    from cagsr.scoring.probe import plot_episodes

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
    salience = Salience.fit([u.text for u in dialogue.turns], "entities|keywords", 0.7)
    with tempfile.TemporaryDirectory() as tmp:
        paths = plot_episodes(episodes, loaded, salience, AttentionConfig(), Path(tmp))
        return [p.read_bytes() for p in paths]


def main(argv: list[str], prog: str = "cagsr report") -> None:
    parser = JobParser(prog=prog, description="Self-contained HTML report of one or more run folders.")
    parser.add_argument("runs", nargs="+", help="run folders (train, eval or reproduce outputs)")
    parser.add_argument("--output", default="report.html", help="HTML file to write [default: report.html]")
    parser.add_argument("--heatmaps", type=int, default=3,
                        help="attention heatmaps (turns) per run, drawn with its final model; 0 disables [default: 3]")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runs]
    for run in runs:
        if not run.is_dir():
            raise ConfigError(f"{run}: not a folder")
    from cagsr.report.page import build_report, is_run_folder

    for run in runs:
        if not is_run_folder(run):
            raise ConfigError(f"{run}: not a cagsr run folder (no config.yaml, metrics or tables to report)")
    from cagsr.cli.common import quiet_libraries

    quiet_libraries()
    maps = {r: heatmaps_for(r, args.heatmaps) for r in runs} if args.heatmaps else {}
    Path(args.output).write_text(build_report(runs, maps), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
