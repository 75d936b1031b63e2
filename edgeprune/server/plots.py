"""Tiny inline-SVG charts for the dashboard (no JavaScript, no external assets)."""

from __future__ import annotations

from html import escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _legend(names: list[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        yy = y + i * 16
        out.append(f'<rect x="{x}" y="{yy - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 14}" y="{yy}" font-size="11">{escape(name)}</text>')
    return out


def grouped_bars(title: str, categories: list[str], series: dict[str, list[float | None]], unit: str) -> str:
    """Horizontal bars: one group per category (build), one bar per series (device); ``None`` = no data."""
    names = list(series)
    values = [v for vals in series.values() for v in vals if v is not None]
    if not categories or not values:
        return f'<p class="empty">{escape(title)}: no data yet.</p>'
    bar_h, gap, label_w, plot_w = 12, 10, 260, 360
    group_h = bar_h * max(len(names), 1) + gap
    height = 40 + group_h * len(categories) + 16 * len(names) + 10
    top = max(values) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 90}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for ci, cat in enumerate(categories):
        y0 = 30 + ci * group_h
        parts.append(f'<text x="0" y="{y0 + group_h / 2}" font-size="11">{escape(cat[:42])}</text>')
        for si, name in enumerate(names):
            value = series[name][ci]
            y = y0 + si * bar_h
            if value is None:
                continue
            w = max(1.0, plot_w * value / top)
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                         f'fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(name)}: {_fmt(value)} {escape(unit)}'
                         f'</title></rect>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}" font-size="10">'
                         f'{_fmt(value)} {escape(unit)}</text>')
    parts += _legend(names, label_w, 30 + group_h * len(categories) + 12)
    parts.append("</svg>")
    return "".join(parts)


def scatter(title: str, points: list[tuple[str, float, float]], x_label: str, y_label: str) -> str:
    """Labelled points (label, x, y); used for accuracy vs latency."""
    if not points:
        return f'<p class="empty">{escape(title)}: no data yet.</p>'
    w, h, left, bottom = 520, 300, 60, 40
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x0, x1 = (x0 * 0.9, x1 * 1.1) if x1 > x0 else (x0 * 0.5, x0 * 1.5 + 1e-9)
    y0, y1 = (y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)) if y1 > y0 else (y0 - 0.05, y0 + 0.05)

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (w - left - 140)

    def sy(v: float) -> float:
        return h - bottom - (v - y0) / (y1 - y0) * (h - bottom - 30)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 140}" y2="{h - bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="30" x2="{left}" y2="{h - bottom}" stroke="#333"/>',
             f'<text x="{left}" y="{h - 8}" font-size="11">{escape(x_label)} ({_fmt(x0)} to {_fmt(x1)})</text>',
             f'<text x="4" y="{h - bottom - 4}" font-size="11">{_fmt(y0)}</text>',
             f'<text x="4" y="40" font-size="11">{_fmt(y1)}</text>',
             f'<text x="{left + 4}" y="28" font-size="11">{escape(y_label)}</text>']
    for i, (label, x, y) in enumerate(points):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{color}"><title>{escape(label)}: '
                     f'{_fmt(x)}, {_fmt(y)}</title></circle>')
        parts.append(f'<text x="{sx(x) + 7:.1f}" y="{sy(y) + 4:.1f}" font-size="10">{escape(label[:30])}</text>')
    parts.append("</svg>")
    return "".join(parts)
