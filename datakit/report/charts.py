"""Inline SVG charts: verdict-stacked histograms with labelled thresholds, and sparklines.

Pure functions from numbers to SVG text (no JavaScript needed to read them; the site's
script makes histogram bins clickable filters through their ``data-`` attributes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fmt import e, num

CHAR_W = 6.0          # approximate width of one label character at the chart's font size
ROW_H = 13            # height of one row of threshold labels


@dataclass
class Threshold:
    label: str        # e.g. "low_detail ≥ 100"
    value: float


def _finite(values) -> np.ndarray:
    a = np.asarray([float(x) for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)],
                   dtype=np.float64)
    return a[np.isfinite(a)]


def nice_ticks(a: float, b: float, n: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [a, b]."""
    if b <= a:
        return [a]
    raw = (b - a) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(a / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((b - first) / step + 1e-9) + 1)]


def _place_labels(xs: list[float], widths: list[float], left: float, right: float) -> list[tuple[int, str, float]]:
    """(row, text-anchor, x) for each label so that labels in a row do not overlap."""
    rows: list[list[tuple[float, float]]] = []
    out = []
    for x, w in zip(xs, widths):
        if x + 3 + w <= right:
            anchor, x0, x1, tx = "start", x + 3, x + 3 + w, x + 3
        else:
            anchor, x0, x1, tx = "end", max(left, x - 3 - w), x - 3, x - 3
        for i, row in enumerate(rows):
            if all(x1 + 4 < a or x0 > b + 4 for a, b in row):
                row.append((x0, x1))
                out.append((i, anchor, tx))
                break
        else:
            rows.append([(x0, x1)])
            out.append((len(rows) - 1, anchor, tx))
    return out


def histogram_svg(kept, rejected, thresholds: list[Threshold], metric: str = "", bins: int = 24,
                  width: int = 420, height: int = 200) -> str:
    """Counts of kept and rejected values per bin, stacked; every threshold drawn and labelled."""
    k, r = _finite(kept), _finite(rejected)
    allv = np.concatenate([k, r])
    pad_l, pad_r, pad_t, pad_b = 34, 10, 6, 22
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" class="hist" role="img" aria-label="histogram of {e(metric)}">']
    if allv.size == 0:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" class="empty" text-anchor="middle">no values</text>')
    marks = [t.value for t in thresholds]
    lo = float(min([*allv.tolist(), *marks])) if (allv.size or marks) else 0.0
    hi = float(max([*allv.tolist(), *marks])) if (allv.size or marks) else 1.0
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - 0.02 * span, hi + 0.02 * span
    x = lambda v: pad_l + (v - lo) / (hi - lo) * pw

    # threshold labels first: they decide how much headroom the bars leave
    order = sorted(range(len(thresholds)), key=lambda i: thresholds[i].value)
    placed = _place_labels([x(thresholds[i].value) for i in order],
                           [len(thresholds[i].label) * CHAR_W for i in order], pad_l, pad_l + pw)
    n_rows = 1 + max((p[0] for p in placed), default=-1)
    bar_top = pad_t + n_rows * ROW_H + (4 if n_rows else 0)
    bar_h = pad_t + ph - bar_top

    if allv.size:
        edges = np.linspace(lo, hi, bins + 1)
        ck, _ = np.histogram(k, bins=edges)
        cr, _ = np.histogram(r, bins=edges)
        top = max(1, int((ck + cr).max()))
        bw = pw / bins
        for i in range(bins):
            x0 = pad_l + i * bw
            hk, hr = ck[i] / top * bar_h, cr[i] / top * bar_h
            tip = f"{num(float(edges[i]))} to {num(float(edges[i + 1]))}: {ck[i]} kept, {cr[i]} rejected"
            parts.append(f'<g class="bin" data-metric="{e(metric)}" data-lo="{edges[i]:.6g}" data-hi="{edges[i + 1]:.6g}">'
                         f'<title>{e(tip)}</title>'
                         f'<rect class="hit" x="{x0:.1f}" y="{pad_t}" width="{bw:.1f}" height="{ph}"/>')
            if ck[i]:
                parts.append(f'<rect class="kept" x="{x0 + 0.5:.1f}" y="{pad_t + ph - hk:.1f}" '
                             f'width="{max(bw - 1, 1):.1f}" height="{hk:.1f}"/>')
            if cr[i]:
                parts.append(f'<rect class="rejected" x="{x0 + 0.5:.1f}" y="{pad_t + ph - hk - hr:.1f}" '
                             f'width="{max(bw - 1, 1):.1f}" height="{hr:.1f}"/>')
            parts.append("</g>")
        parts.append(f'<text x="{pad_l - 4}" y="{bar_top + 4:.1f}" class="lab" text-anchor="end">{top}</text>'
                     f'<line x1="{pad_l}" y1="{bar_top:.1f}" x2="{pad_l + pw}" y2="{bar_top:.1f}" class="grid"/>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + ph}" class="lab" text-anchor="end">0</text>'
                 f'<line x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}" class="axis"/>')
    for t in nice_ticks(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" y1="{pad_t + ph}" x2="{x(t):.1f}" y2="{pad_t + ph + 3}" class="axis"/>'
                     f'<text x="{x(t):.1f}" y="{height - 6}" class="lab" text-anchor="middle">{e(num(t))}</text>')
    for (row, anchor, tx), i in zip(placed, order):
        t = thresholds[i]
        parts.append(f'<g class="threshold"><title>{e(t.label)}</title>'
                     f'<line x1="{x(t.value):.1f}" y1="{pad_t}" x2="{x(t.value):.1f}" y2="{pad_t + ph}" class="thr"/>'
                     f'<text x="{tx:.1f}" y="{pad_t + 10 + row * ROW_H}" class="thrlab" text-anchor="{anchor}">'
                     f'{e(t.label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def sparkline_svg(values, width: int = 132, height: int = 24) -> str:
    """A small line of a per-frame series; its tooltip lists the values."""
    v = _finite(values)
    if v.size == 0:
        return ""
    a, b = float(v.min()), float(v.max())
    pad = 3
    xs = np.linspace(pad, width - pad, v.size) if v.size > 1 else np.array([width / 2])
    ys = (height - pad - (v - a) / (b - a) * (height - 2 * pad)) if b > a else np.full(v.size, height / 2)
    pts = " ".join(f"{px:.1f},{py:.1f}" for px, py in zip(xs, ys))
    tip = "per frame: " + ", ".join(num(float(x)) for x in v[:200]) + (" …" if v.size > 200 else "")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="spark" role="img" '
            f'aria-label="{e(tip)}"><title>{e(tip)}</title><polyline points="{pts}"/>'
            f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="1.8"/><circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="1.8"/>'
            "</svg>")
