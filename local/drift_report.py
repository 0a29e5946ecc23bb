"""The drift report as one self-contained HTML page: a small bar chart per feature (reference
against current share per bin, worst first), inline SVG, no scripts, no fonts or styles fetched.

Written by hand rather than with Evidently: Evidently 0.7 installs beside the pinned stack (a pip
dry run here added 37 packages with it, among them pyarrow, litestar, uvicorn, statsmodels and a
telemetry client, and changed no pin), but its drift report needs the raw reference rows and
bins them itself, while the manifest keeps a profile (bins and shares), not the training rows:
its scores would not be the ones the scheduled function publishes from the same profile
(serving/profile.py), which must stay numpy-only inside Lambda.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 10, 46
REFERENCE_COLOUR, CURRENT_COLOUR, DRIFTED_COLOUR = "#8c9fb5", "#2563eb", "#dc2626"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111}
h1{font-size:20px;margin:0 0 4px} .meta{color:#555;font-size:13px;margin-bottom:16px}
.verdict{display:inline-block;padding:4px 10px;border-radius:4px;font-weight:600;color:#fff}
.ok{background:#15803d} .bad{background:#dc2626}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 10px;width:360px}
.card.drifted{border-color:#dc2626;box-shadow:0 0 0 1px #dc2626}
.card h2{font-size:14px;margin:0 0 2px} .scores{font-size:12px;color:#333;margin-bottom:4px}
.legend{font-size:12px;margin:8px 0 14px} .swatch{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


def bar_chart(bins: list[str], reference: list[float], current: list[float]) -> str:
    """Reference and current shares per bin, side by side, as an SVG."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max([*reference, *current, 0.01])
    slot = plot_width / max(len(bins), 1)
    bar = slot * 0.4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f'<line x1="{LEFT}" y1="{TOP + plot_height}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_height}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="9" text-anchor="end">{top:.0%}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_height}" font-size="9" text-anchor="end">0</text>',
    ]
    for index, label in enumerate(bins):
        x = LEFT + index * slot + slot * 0.1
        for offset, share, colour in ((0.0, reference[index], REFERENCE_COLOUR), (bar, current[index], CURRENT_COLOUR)):
            height = plot_height * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{TOP + plot_height - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(label)}: {share:.1%}</title></rect>'
            )
        label_x, label_y = x + bar, TOP + plot_height + 10
        parts.append(
            f'<text x="{label_x:.1f}" y="{label_y}" font-size="8" text-anchor="end" '
            f'transform="rotate(-35 {label_x:.1f} {label_y})">{escape(label[:14])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _card(drift: dict[str, Any]) -> str:
    scores = [f"PSI {drift['psi']:.3f}", f"missing {drift['missing_change']:+.1%}"]
    if drift["kind"] == "category":
        scores.append(f"unseen {drift['unknown_share']:.1%}")
    scores.append(f"{drift['rows']:,} rows")
    flagged = ", ".join(drift["drifted"])
    title = escape(drift["name"]) + (
        f' <span style="color:{DRIFTED_COLOUR}">drifted: {flagged}</span>' if flagged else ""
    )
    return (
        f'<div class="card{" drifted" if flagged else ""}"><h2>{title}</h2>'
        f'<div class="scores">{" · ".join(scores)}</div>'
        f"{bar_chart(drift['bins'], drift['reference'], drift['current'])}</div>"
    )


def render(summary: dict[str, Any]) -> str:
    """The page for a `make drift` summary (local/drift.py)."""
    drifted = summary["drifted"]
    verdict = (
        '<span class="verdict bad">drift found</span>' if drifted else '<span class="verdict ok">no drift found</span>'
    )
    thresholds = summary["thresholds"]
    meta = (
        f"{escape(summary['model'])} {escape(summary['version'])} · {summary['start']} to {summary['end']} · "
        f"{summary['records']:,} captured requests, {summary['rows']:,} rows · thresholds: PSI {thresholds['psi']}, "
        f"missing rate ±{thresholds['missing_change']:.0%}, unseen categories {thresholds['unknown_share']:.0%}"
    )
    if not summary["enough_rows"]:
        meta += " · fewer rows than the recommended minimum: scores are noisy"
    legend = (
        f'<div class="legend">share of rows per bin:<span class="swatch" style="background:{REFERENCE_COLOUR}">'
        f'</span>training profile<span class="swatch" style="background:{CURRENT_COLOUR}"></span>captured</div>'
    )
    cards = "".join(_card(drift) for drift in [summary["predictions"], *summary["features"]])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Drift: {escape(summary['model'])}</title><style>{STYLE}</style></head><body>"
        f'<h1>Drift report {verdict}</h1><div class="meta">{meta}</div>{legend}'
        f'<div class="grid">{cards}</div></body></html>\n'
    )
