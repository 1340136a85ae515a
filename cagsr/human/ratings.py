"""Import raters' CSV files, un-blind them with key.json, and report means, spread and agreement.

    report = import_ratings(["ratings-ana.csv", "ratings-ben.csv"], "human/key.json")
    print(format_report(report))

A rating file has an item_id column and one column per criterion (helpfulness, clarity) holding an
integer 1..5 or nothing (not rated); an optional rater column names the rater, else the file name
does. Any problem raises DataError naming file:line. Agreement is Krippendorff's alpha over raters x
items per criterion (interval by default; ordinal also fits a 1..5 scale).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cagsr.errors import DataError
from cagsr.human.agreement import krippendorff_alpha

Rating = tuple[str, str, str, int]  # (rater, item id, criterion, score)


def load_key(path: str | Path) -> dict[str, Any]:
    key_path = Path(path)
    try:
        key = json.loads(key_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{key_path}: key file not found") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{key_path}: not a readable key file ({type(err).__name__})") from None
    if not isinstance(key, dict) or not isinstance(key.get("items"), dict) or not key.get("criteria"):
        raise DataError(f"{key_path}: not a key written by export_samples (no items or criteria)")
    return key


def _score(text: str, criterion: str, low: int, high: int, where: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer() or not low <= value <= high:
        raise DataError(f"{where}: {criterion} must be an integer {low}..{high}, got {text!r}")
    return int(value)


def read_rating_file(path: str | Path, key: dict[str, Any]) -> list[Rating]:
    """Validated ratings of one file: known item ids, scores in the key's scale."""
    file = Path(path)
    criteria, (low, high) = key["criteria"], key.get("scale", [1, 5])
    try:
        handle = file.open(encoding="utf-8-sig", newline="")  # -sig: spreadsheets often add a BOM
    except OSError:
        raise DataError(f"{file}: cannot read the rating file") from None
    out: list[Rating] = []
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "item_id" not in header or not any(c in header for c in criteria):
            raise DataError(f"{file}:1: needs an item_id column and one of {', '.join(criteria)}")
        start = reader.line_num + 1
        for row in reader:
            where, start = f"{file}:{start}", reader.line_num + 1  # a quoted field may span lines
            item = (row.get("item_id") or "").strip()
            if not item and not any((row.get(c) or "").strip() for c in criteria):
                continue  # blank line
            if item not in key["items"]:
                raise DataError(f"{where}: unknown item id {item!r} (not in the key)")
            rater = (row.get("rater") or "").strip() or file.stem
            for crit in criteria:
                if crit in header:
                    score = _score(row.get(crit), crit, low, high, where)
                    if score is not None:
                        out.append((rater, item, crit, score))
    return out


def _summary(scores: Sequence[int]) -> dict[str, float]:
    values = np.asarray(scores, dtype=float)
    return {
        "mean": float(values.mean()) if values.size else math.nan,
        "std": float(values.std(ddof=1)) if values.size > 1 else math.nan,
        "n": int(values.size),
    }


def import_ratings(
    files: Sequence[str | Path], key_path: str | Path, level: str = "interval"
) -> dict[str, Any]:
    """Per system and criterion: mean, std, n; per criterion: Krippendorff's alpha across raters."""
    key = load_key(key_path)
    ratings: list[Rating] = []
    seen: dict[tuple[str, str, str], str] = {}
    for file in files:
        for rating in read_rating_file(file, key):
            where = seen.get(rating[:3])
            if where is not None:
                raise DataError(
                    f"{file}: rater {rating[0]!r} rated {rating[1]} twice ({rating[2]}; also in {where})"
                )
            seen[rating[:3]] = str(file)
            ratings.append(rating)
    if not ratings:
        raise DataError(f"no ratings in {', '.join(str(f) for f in files) or 'no files'}")
    items, criteria = key["items"], key["criteria"]
    raters = sorted({r for r, _, _, _ in ratings})
    systems: dict[str, dict[str, Any]] = {}
    for name in sorted({v["system"] for v in items.values()}):
        systems[name] = {
            crit: _summary([s for _, i, c, s in ratings if c == crit and items[i]["system"] == name])
            for crit in criteria
        }
    agreement = {}
    for crit in criteria:
        rated = sorted({i for _, i, c, _ in ratings if c == crit})
        table = np.full((len(raters), len(rated)), np.nan)
        col = {item: j for j, item in enumerate(rated)}
        for r, i, c, s in ratings:
            if c == crit:
                table[raters.index(r), col[i]] = s
        paired = int((np.isfinite(table).sum(axis=0) >= 2).sum())
        alpha = krippendorff_alpha(table, level) if paired else math.nan
        agreement[crit] = {
            "alpha": alpha,
            "level": level,
            "raters": len(raters),
            "items_multiply_rated": paired,
        }
    return {
        "raters": raters,
        "ratings": len(ratings),
        "criteria": list(criteria),
        "systems": systems,
        "agreement": agreement,
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table for the CLI."""
    criteria = report["criteria"]
    lines = [f"{len(report['raters'])} raters, {report['ratings']} ratings", ""]
    lines.append(f"{'system':<24}" + "".join(f"{c + ' mean±std (n)':>28}" for c in criteria))
    for name, row in report["systems"].items():
        cells = "".join(
            f"{row[c]['mean']:>14.2f} ± {row[c]['std']:<5.2f} ({row[c]['n']:>3})" for c in criteria
        )
        lines.append(f"{name:<24}{cells}")
    lines.append("")
    for crit, agr in report["agreement"].items():
        lines.append(
            f"Krippendorff's alpha ({agr['level']}) {crit}: {agr['alpha']:.3f} "
            f"over {agr['items_multiply_rated']} items rated by two or more raters"
        )
    return "\n".join(lines)
