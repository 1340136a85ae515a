"""Build one self-contained HTML page (no network: images are data URIs, CSS is inline).

    html = build_report([Path("runs/dialogue"), Path("runs/reproduce-dialogue-small")], heatmaps=True)
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from cagsr.report.figures import forest_plot, training_curves
from cagsr.utils.logging import read_metrics

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}h2{border-bottom:1px solid #ddd}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}.turn{margin:.3em 0}.agent{color:#0b5394}"""


def img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def markdown_table(text: str) -> str:
    """The pipe tables of our .md files as HTML tables; other lines as paragraphs."""
    out, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|[-|\s]+\|", r)]
            cells = [[html.escape(c.strip()) for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><tr>{head}</tr>{body}</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            out.append(f"<h3>{html.escape(line.lstrip('#').strip())}</h3>")
        elif line.startswith("!["):
            continue
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def samples_html(run: Path, limit: int = 2) -> str:
    path = run / "samples.jsonl"
    if not path.exists():
        return ""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    last = [r for r in rows if r["iteration"] == rows[-1]["iteration"]][:limit]
    parts = []
    for r in last:
        turns = iter(r["turns"])
        lines = []
        for u in r["conversation"]:
            extra = ""
            if u["role"] == "agent" and (t := next(turns, None)) is not None:
                extra = f" <small>[reward {t['reward']:+.3f}, coverage {t['coverage']:.3f}, focus {t['focus']:+.2f}]</small>"
            lines.append(f'<div class="turn {u["role"]}"><b>{u["role"]}:</b> {html.escape(u["text"])}{extra}</div>')
        parts.append(f"<h4>{html.escape(r['record_id'])} (iteration {r['iteration']})</h4>" + "".join(lines))
    return "".join(parts)


def section(run: Path, heatmaps: list[bytes]) -> str:
    parts = [f"<h2>{html.escape(str(run))}</h2>"]
    for name in ("table.md", "eval.md", "validity/validity.md"):
        if (run / name).exists():
            parts.append(markdown_table((run / name).read_text(encoding="utf-8")))
    if (run / "paired.json").exists():  # written by `cagsr reproduce --scale medium`
        paired = json.loads((run / "paired.json").read_text(encoding="utf-8"))
        for key, heading in (("comparisons", "Paired differences"), ("by_position", "By agent-turn position")):
            if plot := forest_plot(paired.get(key, []), title=f"{heading.lower()}, {run.name}"):
                parts += [f"<h3>{heading}</h3>", img(plot, f"{heading.lower()} (forest plot)")]
    for name in ("validity/validity.png", "validity.png"):
        if (run / name).exists():
            parts.append(img((run / name).read_bytes(), "reward validity"))
    parts.append(samples_html(run))
    parts += [img(h, "attention heatmap") for h in heatmaps]
    if (run / "config.yaml").exists():
        parts.append(f"<details><summary>config</summary><pre>{html.escape((run / 'config.yaml').read_text())}"
                     "</pre></details>")
    return "\n".join(parts)


# What a run folder of any command holds (train, eval, validity, reproduce): a folder with none of them
# would give an empty page.
RUN_FILES = ("config.yaml", "metrics.jsonl", "samples.jsonl", "table.md", "eval.md", "validity/validity.md",
             "paired.json")


def is_run_folder(folder: Path) -> bool:
    return any((folder / name).exists() for name in RUN_FILES)


def build_report(runs: list[Path], heatmaps: dict[Path, list[bytes]] | None = None) -> str:
    curves = training_curves({str(r): read_metrics(r) for r in runs if read_metrics(r)})
    body = ["<h1>cagsr report</h1>"]
    if curves:
        body += ["<h2>Training curves</h2>", img(curves, "training curves")]
    body += [section(r, (heatmaps or {}).get(r, [])) for r in runs]
    return f"<!doctype html><html><head><meta charset='utf-8'><title>cagsr report</title><style>{STYLE}</style>" \
           f"</head><body>{''.join(body)}</body></html>"
