"""Server-rendered inline SVG charts (no JavaScript libraries). Output is Markup-safe:
every label goes through `html.escape`."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float | None  # None: suppressed / no data (drawn as an empty slot)
    low: float | None = None
    high: float | None = None


def fit_label(label: str, width_px: int, char_px: float = 6.5) -> str:
    """`label` cut with "…" to fit `width_px` (a CJK character counts as two Latin ones)."""
    budget = width_px / char_px
    used = 0.0
    for i, ch in enumerate(label):
        used += 2 if ord(ch) > 0x2E7F else 1
        if used > budget:
            return label[:max(i - 1, 0)] + "…"
    return label


def bar_chart(bars: Sequence[Bar], *, max_value: float, title: str, width: int = 720,
              bar_height: int = 22, label_width: int = 280, fmt: str = "{:.2f}") -> Markup:
    """Horizontal bars with optional CI whiskers. A label too long for its column is cut
    with "…" and shown whole on hover."""
    plot = width - label_width - 60
    height = 30 + bar_height * max(1, len(bars)) + 10
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{html.escape(title)}</title>',
             f'<text x="0" y="16" class="chart-title">{html.escape(title)}</text>']
    scale = plot / max_value if max_value > 0 else 0
    for i, bar in enumerate(bars):
        y = 30 + i * bar_height
        parts.append(f'<text x="{label_width - 6}" y="{y + bar_height * 0.65:.1f}" '
                     f'text-anchor="end" class="chart-label"><title>{html.escape(bar.label)}'
                     f'</title>{html.escape(fit_label(bar.label, label_width - 10))}</text>')
        if bar.value is None:
            parts.append(f'<text x="{label_width + 4}" y="{y + bar_height * 0.65:.1f}" '
                         'class="chart-muted">–</text>')
            continue
        w = max(0.0, bar.value * scale)
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" '
                     f'height="{bar_height - 6}" class="chart-bar"/>')
        if bar.low is not None and bar.high is not None:
            lo = label_width + max(0.0, bar.low) * scale
            hi = label_width + min(max_value, bar.high) * scale
            mid = y + bar_height / 2
            parts.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
                         'class="chart-ci"/>')
        parts.append(f'<text x="{label_width + w + 4:.1f}" y="{y + bar_height * 0.65:.1f}" '
                     f'class="chart-value">{html.escape(fmt.format(bar.value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_MONTH = re.compile(r"\d{4}-\d{2}")


def line_chart(points: Sequence[tuple[str, float | None]], *, max_value: float, title: str,
               width: int = 640, height: int = 200, fmt: str = "{:.2f}") -> Markup:
    """A line over months; missing (suppressed) points break the line. A month label
    (`2026-02`) repeats its year only where the year changes (`2025-11`, `12`, `2026-01`),
    so twelve months fit under the axis."""
    left, right, top, bottom = 40, 40, 30, 30
    pw, ph = width - left - right, height - top - bottom
    step = pw / max(1, len(points) - 1)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{html.escape(title)}</title>',
             f'<text x="0" y="16" class="chart-title">{html.escape(title)}</text>',
             f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" '
             'class="chart-axis"/>']
    path: list[str] = []
    for i, (label, value) in enumerate(points):
        x = left + i * step
        shown = label
        if i > 0 and _MONTH.fullmatch(label) and points[i - 1][0][:5] == label[:5]:
            shown = label[5:]
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" '
                     f'class="chart-label">{html.escape(shown)}</text>')
        if value is None or max_value <= 0:
            if len(path) > 1:
                parts.append(f'<polyline points="{" ".join(path)}" class="chart-line"/>')
            path = []
            continue
        y = top + ph - min(value, max_value) / max_value * ph
        path.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="chart-dot"/>')
        parts.append(f'<text x="{x:.1f}" y="{y - 6:.1f}" text-anchor="middle" '
                     f'class="chart-value">{html.escape(fmt.format(value))}</text>')
    if len(path) > 1:
        parts.append(f'<polyline points="{" ".join(path)}" class="chart-line"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
