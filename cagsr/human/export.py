"""Blinded rating sheets for human evaluation: N outputs per system, shuffled, system names hidden.

    paths = export_samples({"no-rl": rows_a, "cagsr": rows_b}, n=50, seed=0, path="human/sheet.csv")
    paths = export_samples(systems, n=50, seed=0, path="human/sheet.html", fmt="html")

Each system's rows are dicts with "response" and optionally "context" (and "id", kept in the key).
When every system has the same number of rows, the same row indices are drawn for all of them, so
raters judge the systems on the same prompts. Raters see only opaque item ids; `key.json` next to
the sheet maps each item to its system (by opaque id and by name) and row index. The HTML sheet is
a local form: radio buttons 1..5 per criterion and a button that downloads the ratings as CSV; it
loads nothing from the network.
"""

from __future__ import annotations

import csv
import html
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cagsr.errors import DataError

CRITERIA = ("helpfulness", "clarity")
SCALE = (1, 2, 3, 4, 5)
KEY_FILE = "key.json"


def _draw(systems: Mapping[str, Sequence[dict]], n: int, rng: random.Random) -> list[tuple[str, int]]:
    """(system, row index) pairs: the same indices for all systems when their lengths agree."""
    lengths = {len(rows) for rows in systems.values()}
    if len(lengths) == 1:
        shared = sorted(rng.sample(range(lengths.pop()), min(n, len(next(iter(systems.values()))))))
        return [(name, i) for name in systems for i in shared]
    return [
        (name, i)
        for name, rows in systems.items()
        for i in sorted(rng.sample(range(len(rows)), min(n, len(rows))))
    ]


def blind_items(
    systems: Mapping[str, Sequence[dict]], n: int, seed: int
) -> tuple[list[dict], dict[str, Any]]:
    """Shuffled sheet rows (item_id, context, response) and the key that un-blinds them."""
    if not systems:
        raise DataError("export_samples: no systems given")
    for name, rows in systems.items():
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or not isinstance(row.get("response"), str):
                raise DataError(f"system {name!r}, sample {i}: needs a 'response' text")
    rng = random.Random(seed)
    names = list(systems)
    opaque = [f"sys-{rng.getrandbits(24):06x}" for _ in names]
    while len(set(opaque)) < len(opaque):  # 24 random bits rarely collide; make sure anyway
        opaque = [f"sys-{rng.getrandbits(24):06x}" for _ in names]
    system_id = dict(zip(names, opaque, strict=True))
    drawn = _draw(systems, n, rng)
    rng.shuffle(drawn)
    width = max(4, len(str(len(drawn))))
    items, key_items = [], {}
    for k, (name, index) in enumerate(drawn, start=1):
        row = systems[name][index]
        item_id = f"item-{k:0{width}d}"
        items.append(
            {"item_id": item_id, "context": str(row.get("context", "")), "response": row["response"]}
        )
        key_items[item_id] = {
            "system_id": system_id[name],
            "system": name,
            "index": index,
            "id": row.get("id"),
        }
    key = {
        "format": 1,
        "seed": seed,
        "criteria": list(CRITERIA),
        "scale": [SCALE[0], SCALE[-1]],
        "systems": {system_id[s]: s for s in names},
        "items": key_items,
    }
    return items, key


def write_csv(items: Sequence[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "context", "response", *CRITERIA, "comment"])
        for item in items:
            writer.writerow([item["item_id"], item["context"], item["response"], *([""] * len(CRITERIA)), ""])


def _radio_cells(item_id: str) -> str:
    cells = []
    for crit in CRITERIA:
        radios = "".join(
            f'<label><input type="radio" name="{item_id}|{crit}" value="{v}">{v}</label>' for v in SCALE
        )
        cells.append(f'<td class="scale"><b>{crit}</b><br>{radios}</td>')
    return "".join(cells)


def render_html(items: Sequence[dict]) -> str:
    """A self-contained rating form; the script builds the CSV in the browser and downloads it."""
    rows = "\n".join(
        f'<tr data-item="{html.escape(it["item_id"])}"><td>{html.escape(it["item_id"])}</td>'
        f"<td><pre>{html.escape(it['context'])}</pre></td><td><pre>{html.escape(it['response'])}</pre></td>"
        f'{_radio_cells(html.escape(it["item_id"]))}<td><input class="comment" size="18"></td></tr>'
        for it in items
    )
    criteria = json.dumps(list(CRITERIA))
    return _PAGE.replace("{{ROWS}}", rows).replace("{{CRITERIA}}", criteria).replace("{{N}}", str(len(items)))


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Rate responses</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:4px;vertical-align:top}pre{white-space:pre-wrap;max-width:34em;margin:0}.scale label{margin-right:6px}</style>
</head><body>
<h1>Rate each response (1 = poor, 5 = excellent)</h1>
<p>Helpfulness: does the response move the conversation or the solution forward correctly?
Clarity: is it easy to read and understand? {{N}} items. Your ratings stay on this computer until
you send the downloaded file.</p>
<p>Your name or rater id: <input id="rater" size="20"> <button id="download">Download ratings CSV</button>
<span id="status"></span></p>
<table><tr><th>item</th><th>context</th><th>response</th><th colspan="2">rating</th><th>comment</th></tr>
{{ROWS}}
</table>
<script>
const CRITERIA = {{CRITERIA}};
function cell(text) { return '"' + String(text).replace(/"/g, '""') + '"'; }
document.getElementById("download").addEventListener("click", () => {
  const rater = document.getElementById("rater").value.trim();
  const lines = [["item_id", "rater", ...CRITERIA, "comment"].join(",")];
  let missing = 0;
  for (const row of document.querySelectorAll("tr[data-item]")) {
    const item = row.dataset.item;
    const scores = CRITERIA.map(c => {
      const picked = row.querySelector('input[name="' + item + "|" + c + '"]:checked');
      if (!picked) missing += 1;
      return picked ? picked.value : "";
    });
    const comment = row.querySelector(".comment").value;
    lines.push([cell(item), cell(rater), ...scores, cell(comment)].join(","));
  }
  const blob = new Blob([lines.join("\\n") + "\\n"], {type: "text/csv"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "ratings-" + (rater || "rater") + ".csv";
  link.click();
  document.getElementById("status").textContent = missing ? missing + " ratings left blank" : "all rated";
});
</script></body></html>
"""


def export_samples(
    systems: Mapping[str, Sequence[dict]], n: int, seed: int, path: str | Path, fmt: str = "csv"
) -> dict[str, Path]:
    """Write the blinded sheet (csv or html) and key.json beside it; returns both paths."""
    if fmt not in ("csv", "html"):
        raise DataError(f"export_samples: fmt must be csv or html, got {fmt!r}")
    if n < 1:
        raise DataError(f"export_samples: n must be >= 1, got {n}")
    items, key = blind_items(systems, n, seed)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_csv(items, out)
    else:
        out.write_text(render_html(items), encoding="utf-8")
    key["sheet"] = out.name
    key_path = out.parent / KEY_FILE
    key_path.write_text(json.dumps(key, indent=2), encoding="utf-8")
    return {"sheet": out, "key": key_path}


def read_system_rows(path: Path) -> list[dict]:
    """One system's evaluated replies from an eval.json (`cagsr eval`, or a `cagsr reproduce` row's
    eval-<set>.json): id, context and response per row."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(f"{path}: not an eval.json written by cagsr eval") from None
    out = []
    for r in rows:
        out.append({"id": f"{r.get('episode')}#{r.get('turn')}", "context": r.get("context", ""),
                    "response": r["generated"]})
    return out
