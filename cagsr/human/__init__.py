"""Human evaluation (method.md section 7): blinded rating sheets out, raters' scores back in.

    paths = export_samples({"no-rl": rows_a, "cagsr": rows_b}, n=50, seed=0, path="human/sheet.html", fmt="html")
    report = import_ratings(["ratings-ana.csv", "ratings-ben.csv"], paths["key"])

Raters see only opaque item ids; key.json, written beside the sheet, un-blinds their scores.
"""

from cagsr.human.agreement import krippendorff_alpha
from cagsr.human.export import export_samples
from cagsr.human.ratings import format_report, import_ratings

__all__ = ["export_samples", "format_report", "import_ratings", "krippendorff_alpha"]
