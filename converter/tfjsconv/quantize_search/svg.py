"""The size-vs-error plot of the quantization report, written as plain SVG text.

No plotting library: a fixed 640x400 canvas, linear axes from 0 to past the largest value
(bytes in KiB on x, error on y), grey dots for every configuration the search measured,
labelled squares for the uniform dtypes, a red diamond for the chosen mix and a dashed
line at the budget. Numbers are printed with fixed precision so the bytes are the same
on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

_W, _H = 640, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 20, 30, 50


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _finite(value: float) -> bool:
    return math.isfinite(value)


def plot(
    uniform: Mapping[str, tuple[int, float] | None],
    chosen: tuple[int, float],
    tried: Sequence[tuple[int, float]],
    budget: float,
    metric: str,
) -> str:
    """The SVG document (a str ending in a newline)."""
    points = [p for p in uniform.values() if p is not None] + [chosen] + list(tried)
    xmax = max([p[0] for p in points] + [1]) / 1024.0 * 1.15  # room for the labels
    errors = [p[1] for p in points if _finite(p[1])] + ([budget] if _finite(budget) else [])
    ymax = max(errors + [1e-12]) * 1.1
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def xy(point: tuple[int, float]) -> tuple[float, float]:
        err = point[1] if _finite(point[1]) else ymax
        return _LEFT + point[0] / 1024.0 / xmax * plot_w, _TOP + plot_h - min(err, ymax) / ymax * plot_h

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W // 2}" y="18" text-anchor="middle" font-size="13">weight bytes vs. {_esc(metric)} error</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}" stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="black"/>',
    ]
    for i in range(5):
        fx = i / 4
        x = _LEFT + fx * plot_w
        y = _TOP + plot_h - fx * plot_h
        out.append(
            f'<text x="{_fmt(x)}" y="{_TOP + plot_h + 15}" text-anchor="middle">{xmax * fx:.0f}</text>'
        )
        out.append(f'<text x="{_LEFT - 5}" y="{_fmt(y + 4)}" text-anchor="end">{ymax * fx:.3g}</text>')
    out.append(f'<text x="{_LEFT + plot_w // 2}" y="{_H - 12}" text-anchor="middle">weight KiB</text>')
    if _finite(budget) and budget <= ymax:
        _, by = xy((0, budget))
        out.append(
            f'<line x1="{_LEFT}" y1="{_fmt(by)}" x2="{_LEFT + plot_w}" y2="{_fmt(by)}" stroke="#888" '
            'stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{_LEFT + plot_w - 2}" y="{_fmt(by - 4)}" text-anchor="end" fill="#555">budget {budget:.3g}</text>'
        )
    for point in tried:
        x, y = xy(point)
        out.append(f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="2.5" fill="#bbb"/>')
    # float16 and uint16 share their size and often their error: uint16's label goes left.
    for dtype, mark in uniform.items():
        if mark is None:
            continue
        x, y = xy(mark)
        out.append(f'<rect x="{_fmt(x - 4)}" y="{_fmt(y - 4)}" width="8" height="8" fill="#1f77b4"/>')
        left = dtype == "uint16"
        anchor = ' text-anchor="end"' if left else ""
        out.append(
            f'<text x="{_fmt(x - 6 if left else x + 6)}" y="{_fmt(y - 6)}"{anchor}>{_esc(dtype)}</text>'
        )
    x, y = xy(chosen)
    out.append(
        f'<polygon points="{_fmt(x)},{_fmt(y - 7)} {_fmt(x + 7)},{_fmt(y)} {_fmt(x)},{_fmt(y + 7)} '
        f'{_fmt(x - 7)},{_fmt(y)}" fill="#d62728"/>'
    )
    out.append(f'<text x="{_fmt(x + 9)}" y="{_fmt(y + 14)}" fill="#d62728">chosen</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
