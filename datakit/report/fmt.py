"""Formatting values for people: numbers, escaping, the rule labels drawn on charts."""
from __future__ import annotations

import hashlib
import math
import re
from html import escape


def e(v) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape("" if v is None else str(v), quote=True)


def num(v) -> str:
    """A number as a person reads it: 4 significant digits, thousands grouped, no ``1e+04``."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) < 10 ** 9 else str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)


def value(v) -> str:
    """Any JSON value as short text (lists of scalars joined, numbers formatted)."""
    if isinstance(v, (bool, int, float)) or v is None:
        return num(v)
    if isinstance(v, list):
        return ", ".join(value(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {value(x)}" for k, x in v.items())
    return str(v)


def safe_name(key: str) -> str:
    """A key as a file name and HTML id: letters, digits, ``-`` and ``_`` only.

    Keys datakit writes (32 hex digits) stay as they are; any other key is reduced and gets
    a digest of itself, so two different keys never share a page.
    """
    if re.fullmatch(r"[A-Za-z0-9_-]{1,120}", key or ""):
        return key
    return re.sub(r"[^A-Za-z0-9_-]", "_", key or "")[:80] + "-" + hashlib.sha1((key or "").encode()).hexdigest()[:10]


def rule_label(name: str, lo: float | None, hi: float | None) -> str:
    """``static ≥ 0.05``, ``shaky ≤ 10``, ``x in [a, b]``."""
    if lo is not None and hi is not None:
        return f"{name} in [{num(lo)}, {num(hi)}]"
    return f"{name} ≥ {num(lo)}" if lo is not None else f"{name} ≤ {num(hi)}"
