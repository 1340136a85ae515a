"""Blinded export (CSV and HTML) and rating import with validation and agreement."""

from __future__ import annotations

import csv
import json
import math

import pytest

from cagsr.errors import DataError
from cagsr.human import export_samples, format_report, import_ratings


def systems(n: int = 8) -> dict[str, list[dict]]:
    return {
        "no-rl": [
            {"id": f"q{i}", "context": f"user: question {i}\nwith a second line", "response": f"base {i}"}
            for i in range(n)
        ],
        "cagsr": [
            {"id": f"q{i}", "context": f"user: question {i}\nwith a second line", "response": f"tuned, {i}"}
            for i in range(n)
        ],
    }


def read_sheet(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_export_is_blinded_shuffled_and_keyed(tmp_path):
    paths = export_samples(systems(), n=5, seed=0, path=tmp_path / "sheet.csv")
    rows = read_sheet(paths["sheet"])
    key = json.loads(paths["key"].read_text())
    assert paths["key"] == tmp_path / "key.json"
    assert len(rows) == 10 and list(rows[0]) == [
        "item_id",
        "context",
        "response",
        "helpfulness",
        "clarity",
        "comment",
    ]
    sheet_text = paths["sheet"].read_text()
    assert "no-rl" not in sheet_text and "cagsr" not in sheet_text
    assert set(key["systems"].values()) == {"no-rl", "cagsr"}
    assert all(sid.startswith("sys-") for sid in key["systems"])
    # Same prompts for both systems (equal lengths), and the key finds each row again.
    by_system = {}
    for row in rows:
        entry = key["items"][row["item_id"]]
        assert systems()[entry["system"]][entry["index"]]["response"] == row["response"]
        by_system.setdefault(entry["system"], set()).add(entry["index"])
    assert by_system["no-rl"] == by_system["cagsr"]
    assert [key["items"][r["item_id"]]["system"] for r in rows] != ["no-rl"] * 5 + ["cagsr"] * 5
    again = export_samples(systems(), n=5, seed=0, path=tmp_path / "again.csv")
    assert read_sheet(again["sheet"]) == rows


def test_html_export_is_a_local_form(tmp_path):
    unsafe = {"a": [{"context": "<script>alert(1)</script>", "response": "x & y"}], "b": [{"response": "z"}]}
    paths = export_samples(unsafe, n=3, seed=1, path=tmp_path / "sheet.html", fmt="html")
    page = paths["sheet"].read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "x &amp; y" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from the network
    assert 'type="radio"' in page and "Download ratings CSV" in page and "new Blob" in page
    key = json.loads(paths["key"].read_text())
    assert len(key["items"]) == 2 and all(f'data-item="{i}"' in page for i in key["items"])


def test_export_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="fmt must be csv or html"):
        export_samples(systems(), n=2, seed=0, path=tmp_path / "s.txt", fmt="txt")
    with pytest.raises(DataError, match="needs a 'response'"):
        export_samples({"a": [{"text": "no response"}]}, n=1, seed=0, path=tmp_path / "s.csv")


def fill(sheet_rows, path, scores, rater=None):
    """Write a rater's file: scores[i] = (helpfulness, clarity) for sheet row i."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "rater", "helpfulness", "clarity"])
        for row, (helpful, clear) in zip(sheet_rows, scores, strict=True):
            writer.writerow([row["item_id"], rater or "", helpful, clear])


def test_import_reports_means_and_agreement(tmp_path):
    paths = export_samples(systems(4), n=4, seed=0, path=tmp_path / "sheet.csv")
    rows = read_sheet(paths["sheet"])
    key = json.loads(paths["key"].read_text())
    truth = {"no-rl": 2, "cagsr": 4}
    ideal = [(truth[key["items"][r["item_id"]]["system"]],) * 2 for r in rows]
    fill(rows, tmp_path / "ana.csv", ideal)
    fill(rows, tmp_path / "ben.csv", [(h, c) for h, c in ideal], rater="ben")
    report = import_ratings([tmp_path / "ana.csv", tmp_path / "ben.csv"], paths["key"])
    assert report["raters"] == ["ana", "ben"] and report["ratings"] == 32
    assert report["systems"]["cagsr"]["helpfulness"] == {"mean": 4.0, "std": 0.0, "n": 8}
    assert report["systems"]["no-rl"]["clarity"]["mean"] == 2.0
    assert report["agreement"]["helpfulness"]["alpha"] == pytest.approx(1.0)
    assert "Krippendorff" in format_report(report)
    # A second rater who disagrees lowers alpha; blanks are not ratings.
    fill(rows, tmp_path / "cy.csv", [(5 if h == 2 else 1, "") for h, _ in ideal])
    report = import_ratings([tmp_path / "ana.csv", tmp_path / "cy.csv"], paths["key"])
    assert report["agreement"]["helpfulness"]["alpha"] < 0
    assert math.isnan(report["agreement"]["clarity"]["alpha"])  # only ana rated clarity


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "item_id,helpfulness,clarity\nitem-0001,6,3\n",
            r"r.csv:2: helpfulness must be an integer 1\.\.5, got '6'",
        ),
        ("item_id,helpfulness,clarity\nitem-0001,3,2.5\n", r"r.csv:2: clarity must be an integer"),
        (
            "item_id,helpfulness,clarity\nitem-0001,3,3\nitem-9999,3,3\n",
            r"r.csv:3: unknown item id 'item-9999'",
        ),
        (
            'item_id,helpfulness,clarity,comment\nitem-0001,3,3,"two\nlines"\nnope,1,1,\n',
            r"r.csv:4: unknown item id",
        ),
        ("name,score\nx,1\n", r"r.csv:1: needs an item_id column"),
        ("item_id,helpfulness\nitem-0001,2\nitem-0001,3\n", r"rated item-0001 twice"),
    ],
)
def test_import_errors_name_file_and_line(tmp_path, content, message):
    paths = export_samples(systems(2), n=2, seed=0, path=tmp_path / "sheet.csv")
    (tmp_path / "r.csv").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        import_ratings([tmp_path / "r.csv"], paths["key"])


def test_import_needs_a_key(tmp_path):
    with pytest.raises(DataError, match="key file not found"):
        import_ratings([], tmp_path / "key.json")


NODE_DOM_STUB = r"""
const fs = require("fs");
const script = fs.readFileSync(process.argv[2], "utf8");
const items = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
let handler = null;
let link = null;
const elements = {
  rater: {value: " ana "},
  download: {addEventListener: (event, fn) => { handler = fn; }},
  status: {textContent: ""},
};
const rows = items.map(it => ({
  dataset: {item: it.id},
  querySelector: selector => {
    if (selector === ".comment") return {value: 'said "fine", thanks'};
    const m = selector.match(/name="([^|]+)\|([^"]+)"\]:checked/);
    const v = it.scores[m[2]];
    return v ? {value: String(v)} : null;
  },
}));
global.document = {
  getElementById: id => elements[id],
  querySelectorAll: () => rows,
  createElement: () => ({click() { link = this; }}),
};
global.Blob = class { constructor(parts) { this.text = parts.join(""); } };
global.URL = {createObjectURL: blob => blob};
eval(script);
handler();
process.stdout.write(JSON.stringify({name: link.download, csv: link.href.text, status: elements.status.textContent}));
"""


def test_html_form_script_downloads_importable_csv(tmp_path):
    """Run the page's script under node with a minimal DOM stub, then import the CSV it builds."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    paths = export_samples(systems(3), n=3, seed=0, path=tmp_path / "sheet.html", fmt="html")
    page = paths["sheet"].read_text()
    script = page[page.index("<script>") + len("<script>") : page.index("</script>")]
    item_ids = list(json.loads(paths["key"].read_text())["items"])
    answers = [
        {"id": i, "scores": {"helpfulness": 1 + k % 5, "clarity": "" if k == 0 else 3}}
        for k, i in enumerate(item_ids)
    ]
    (tmp_path / "page.js").write_text(script)
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    (tmp_path / "stub.js").write_text(NODE_DOM_STUB)
    done = subprocess.run(
        [node, tmp_path / "stub.js", tmp_path / "page.js", tmp_path / "answers.json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["name"] == "ratings-ana.csv" and result["status"] == "1 ratings left blank"
    (tmp_path / result["name"]).write_text(result["csv"])
    report = import_ratings([tmp_path / result["name"]], paths["key"])
    assert report["raters"] == ["ana"] and report["ratings"] == 2 * len(item_ids) - 1
