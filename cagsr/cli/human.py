"""`cagsr human export|import`: blinded rating sheets for raters, and their ratings summarised.

    cagsr human export --systems runs/a/eval.json runs/b/eval.json --n 20 --format html --output-dir human/
    cagsr human import --key human/key.json --ratings alice.csv bob.csv
Systems are eval.json files of `cagsr eval` (or rows of `cagsr reproduce`); names default to
their folder names. Import prints per-system means with spread and Krippendorff's alpha.
"""

from __future__ import annotations

from pathlib import Path

from cagsr.cli.args import JobParser
from cagsr.utils.run import jsonl_sink


def export(argv: list[str], prog: str) -> None:
    parser = JobParser(prog=prog, description="Write a blinded, shuffled rating sheet and its key.")
    parser.add_argument("--systems", nargs="+", required=True, metavar="EVAL_JSON",
                        help="eval.json files, one per system (name: NAME=PATH or the parent folder's name)")
    parser.add_argument("--n", type=int, default=20, help="outputs sampled per system [default: 20]")
    parser.add_argument("--format", choices=["csv", "html"], default="html", help="sheet format [default: html]")
    parser.add_argument("--seed", type=int, default=0, help="sampling and shuffling seed [default: 0]")
    parser.add_argument("--output-dir", default="human", help="where the sheet and key.json go [default: human]")
    args = parser.parse_args(argv)
    from cagsr.human.export import export_samples, read_system_rows

    systems = {}
    for spec in args.systems:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).parent.name, "", spec)
        systems[name] = read_system_rows(Path(path))
    paths = export_samples(systems, args.n, args.seed, Path(args.output_dir) / f"sheet.{args.format}", args.format)
    with jsonl_sink(None) as write:
        write({k: str(v) for k, v in paths.items()})


def import_(argv: list[str], prog: str) -> None:
    parser = JobParser(prog=prog, description="Summarise raters' CSV files: means, spread, Krippendorff's alpha.")
    parser.add_argument("--key", required=True, help="key.json written by `cagsr human export`")
    parser.add_argument("--ratings", nargs="+", required=True, help="raters' CSV files")
    parser.add_argument("--level", choices=["interval", "ordinal"], default="interval",
                        help="Krippendorff's alpha metric [default: interval]")
    parser.add_argument("--output", default=None, help="write the JSON report here instead of stdout")
    args = parser.parse_args(argv)
    from cagsr.human.ratings import format_report, import_ratings

    report = import_ratings(args.ratings, args.key, args.level)
    import sys

    print(format_report(report), file=sys.stderr)
    with jsonl_sink(args.output) as write:
        write(report)


def main(argv: list[str], prog: str = "cagsr human") -> None:
    actions = {"export": export, "import": import_}
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{export,import}} ...\n\n  export   write a blinded rating sheet (CSV or HTML)"
              "\n  import   summarise raters' files\n\nRun `cagsr human export --help` for options.")
        return
    if argv[0] not in actions:
        from cagsr.errors import ConfigError

        raise ConfigError(f"unknown action {argv[0]!r} (export, import)")
    actions[argv[0]](argv[1:], f"{prog} {argv[0]}")
