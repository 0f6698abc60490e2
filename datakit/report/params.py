"""Nested parameter records (degradations, sdedit, refs) as flat rows a person can read.

``{"order1": {"blur": {"applied": true, "sigma_x": [1.2, 1.19, ...]}}}`` becomes the row
``order1 › blur | sigma_x | 1.149 – 1.211 | per-frame series``; a step with
``applied: false`` becomes one "not applied" row; empty lists are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

from .fmt import num, value

# steps in the order a degradation applies them; anything else follows alphabetically
STEP_ORDER = ["order1", "order2", "final", "blur", "resize", "noise", "jpeg", "sinc", "video"]


@dataclass
class ParamRow:
    step: str                       # "order1 › blur"; "general" for top-level settings
    name: str                       # "sigma_x"; "" for a "not applied" row
    text: str                       # the value as text
    series: list[float] | None = None   # a per-frame walk, drawn as a sparkline
    applied: bool = True


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _key(k: str) -> tuple[int, str]:
    return (STEP_ORDER.index(k) if k in STEP_ORDER else len(STEP_ORDER), k)


def param_rows(params: dict, step: str = "") -> list[ParamRow]:
    """Flat rows of a nested parameter record; top-level values fall under the step "general"."""
    rows: list[ParamRow] = []
    nested = []
    for k in sorted(params, key=_key):
        v = params[k]
        if isinstance(v, dict):
            nested.append(k)
            continue
        if k == "applied":
            continue
        if isinstance(v, list):
            if not v:
                continue
            if len(v) > 1 and all(_is_number(x) for x in v):
                lo, hi = min(v), max(v)
                text = (f"{num(v[0])} (every frame)" if lo == hi
                        else f"{num(lo)} – {num(hi)}  (first {num(v[0])}, last {num(v[-1])})")
                rows.append(ParamRow(step or "general", k, text, [float(x) for x in v] if lo != hi else None))
                continue
        rows.append(ParamRow(step or "general", k, value(v)))
    for k in nested:
        sub = f"{step} › {k}" if step else k
        v = params[k]
        if v.get("applied") is False:
            rows.append(ParamRow(sub, "", "not applied", applied=False))
        else:
            rows += param_rows(v, sub)
    return rows
