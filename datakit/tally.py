"""The arithmetic of ``datakit stats``: stage flow, counts and quantiles from plain rows.

No file is read here; :mod:`datakit.summary` gathers the rows from an output.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

SOURCE_LEVEL = ("probe", "caption")  # stages that see sources; later stages see clips
QUANTILES = {"min": 0.0, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}
KEPT, REJECTED = "kept", "rejected"


def quantiles(values: list) -> dict:
    """Quantiles, count and mean of the finite numbers in ``values`` ({} when there are none)."""
    a = np.asarray([v for v in values if _finite(v)], dtype=np.float64)
    if a.size == 0:
        return {}
    q = np.quantile(a, list(QUANTILES.values()))
    return dict(zip(QUANTILES, [round(float(x), 6) for x in q]), count=int(a.size), mean=round(float(a.mean()), 6))


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def stage_flow(stages: list[str], sources: int, clips: int, rejects_by_stage: Counter) -> dict:
    """Per stage: what went in, was rejected and came out (sources until ``split``, clips after)."""
    out, flowing = {}, sources
    for i, st in enumerate(stages):
        rejected = rejects_by_stage.get(st, 0)
        if st == "split":
            out[st] = {"in": flowing, "rejected": rejected, "out": clips, "unit": "source -> clip"}
            flowing = clips
            continue
        unit = "source" if st in SOURCE_LEVEL and "split" in stages[i:] else "clip"
        out[st] = {"in": flowing, "rejected": rejected, "out": flowing - rejected, "unit": unit}
        flowing -= rejected
    return out


def by_verdict(kept: dict[str, list], rejected: dict[str, list]) -> dict[str, dict]:
    """name -> {"kept": quantiles, "rejected": quantiles} for every name with a value in either."""
    names = sorted(set(kept) | set(rejected))
    return {n: {KEPT: quantiles(kept.get(n, [])), REJECTED: quantiles(rejected.get(n, []))} for n in names}


def timing_table(timings: dict[str, list[float]], stages: list[str]) -> dict:
    order = {s: i for i, s in enumerate(stages)}
    return {st: {"total": round(sum(v), 3), "mean_per_sample": round(sum(v) / len(v), 4)}
            for st, v in sorted(timings.items(), key=lambda kv: order.get(kv[0], len(stages))) if v}
