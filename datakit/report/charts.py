"""Inline SVG histograms with threshold lines (no JavaScript, no external assets)."""
from __future__ import annotations

from html import escape

import numpy as np


def histogram_svg(values: list[float], title: str, lo: float | None = None, hi: float | None = None,
                  bins: int = 20, width: int = 360, height: int = 160) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    pad_l, pad_b, pad_t = 36, 28, 18
    pw, ph = width - pad_l - 8, height - pad_b - pad_t
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" class="hist">',
             f'<text x="{pad_l}" y="12" class="t">{escape(title)} (n={v.size})</text>']
    if v.size == 0:
        parts.append(f'<text x="{pad_l}" y="{pad_t + ph // 2}">no values</text></svg>')
        return "".join(parts)
    marks = [m for m in (lo, hi) if m is not None]
    a, b = float(min([v.min(), *marks])), float(max([v.max(), *marks]))
    if a == b:
        a, b = a - 0.5, b + 0.5
    counts, edges = np.histogram(v, bins=bins, range=(a, b))
    top = max(1, int(counts.max()))
    x = lambda val: pad_l + (val - a) / (b - a) * pw  # noqa: E731
    bw = pw / bins
    for i, c in enumerate(counts):
        h = c / top * ph
        parts.append(f'<rect x="{pad_l + i * bw:.1f}" y="{pad_t + ph - h:.1f}" width="{max(bw - 1, 1):.1f}" '
                     f'height="{h:.1f}" class="bar"><title>{edges[i]:.4g} to {edges[i + 1]:.4g}: {c}</title></rect>')
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}" class="axis"/>')
    parts.append(f'<text x="{pad_l}" y="{height - 8}" class="lab">{a:.4g}</text>')
    parts.append(f'<text x="{pad_l + pw}" y="{height - 8}" class="lab" text-anchor="end">{b:.4g}</text>')
    parts.append(f'<text x="4" y="{pad_t + 8}" class="lab">{top}</text>')
    for name, m in (("min", lo), ("max", hi)):
        if m is not None:
            parts.append(f'<line x1="{x(m):.1f}" y1="{pad_t - 4}" x2="{x(m):.1f}" y2="{pad_t + ph}" class="thr">'
                         f'<title>threshold {name} {m:.4g}</title></line>')
            parts.append(f'<text x="{x(m) + 2:.1f}" y="{pad_t + 6}" class="thrlab">{name} {m:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)
