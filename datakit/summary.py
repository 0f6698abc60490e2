"""Counts, rejects and timings of an output root, computed from its manifests.

``summary.json`` is rewritten from the manifests and reject parts at the end of every
run, so it always agrees with what is on disk; ``datakit stats`` prints the same
numbers without writing anything.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from . import fsio
from .shards import _read_parquet, manifest_uris, read_manifest, reject_part_uris

_SOURCE_LEVEL = ("probe", "caption")  # stages that see sources; later stages see clips


def _manifests(root: str) -> pa.Table | None:
    tables = [_read_parquet(u) for u in manifest_uris(root)]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def _rejects(root: str) -> pa.Table | None:
    tables = [_read_parquet(u) for u in reject_part_uris(root)]
    return pa.concat_tables(tables) if tables else None


def _quantiles(values: list[float]) -> dict:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return {}
    q = np.quantile(a, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return dict(zip(["min", "p05", "p25", "p50", "p75", "p95", "max"], [round(float(x), 6) for x in q]),
                count=int(a.size), mean=round(float(a.mean()), 6))


def _order(stages: list[str], name: str) -> int:
    return stages.index(name) if name in stages else len(stages)


def build(root: str) -> dict:
    root = fsio.normalize(root)
    cfg = json.loads(fsio.read_text(fsio.join(root, "config.json"))) if fsio.exists(fsio.join(root, "config.json")) else {}
    stages = [s["stage"] for s in cfg.get("spec", {}).get("stages", [])]
    man = _manifests(root)
    rej = _rejects(root)
    samples = man.num_rows if man is not None else 0
    docs = [row for u in manifest_uris(root) for row in read_manifest(u)]
    rej_rows = rej.to_pylist() if rej is not None else []

    source_clips: dict[str, int] = {}
    if man is not None:
        for sid, n in zip(man.column("source_id").to_pylist(), man.column("source_clips").to_pylist()):
            source_clips[sid] = n
    for r in rej_rows:
        if r["key"] != r["source_id"] and r["source_clips"] is not None:
            source_clips[r["source_id"]] = r["source_clips"]
    source_rejects = [r for r in rej_rows if r["key"] == r["source_id"]]
    sources = len(set(source_clips) | {r["source_id"] for r in source_rejects})

    by_stage = Counter(r["stage"] for r in rej_rows)
    per_stage = {}
    flowing = sources
    for st in stages:
        if st == "split":
            rejected = by_stage.get(st, 0)
            entered = flowing
            flowing = sum(source_clips.values())
            per_stage[st] = {"in": entered, "rejected": rejected, "out": flowing, "unit": "source -> clip"}
            continue
        rejected = by_stage.get(st, 0)
        per_stage[st] = {"in": flowing, "rejected": rejected, "out": flowing - rejected,
                         "unit": "source" if (st in _SOURCE_LEVEL and "split" in stages[stages.index(st):])
                         else "clip"}
        flowing -= rejected

    timings: dict[str, list[float]] = defaultdict(list)
    for d in docs:
        for st, sec in (d.get("timings") or {}).items():
            timings[st].append(sec)
    numeric: dict[str, list[float]] = defaultdict(list)
    for d in docs:
        for name, v in (d.get("scores") or {}).items():
            if isinstance(v, (int, float)):
                numeric[f"scores.{name}"].append(float(v))
        if d.get("source"):
            numeric["source.duration_s"].append(d["source"]["duration_s"])
            numeric["source.height"].append(d["source"]["height"])
    return {
        "format_version": cfg.get("format_version"),
        "config_hash": cfg.get("config_hash"),
        "pipeline": cfg.get("spec", {}).get("name"),
        "task": cfg.get("spec", {}).get("task"),
        "counts": {"sources": sources, "samples": samples, "shards": len(manifest_uris(root)),
                   "rejects": len(rej_rows),
                   "clips": sum(source_clips.values())},
        "stages": per_stage,
        "rejects_by_reason": dict(Counter(r["reason"] for r in rej_rows).most_common()),
        "rejects_by_stage": {st: dict(Counter(r["reason"] for r in rej_rows if r["stage"] == st))
                             for st in by_stage},
        "timings_s": {st: {"total": round(sum(v), 3), "mean_per_sample": round(sum(v) / len(v), 4)}
                      for st, v in sorted(timings.items(), key=lambda kv: _order(stages, kv[0]))},
        "quantiles": {k: _quantiles(v) for k, v in sorted(numeric.items())},
        "config": cfg.get("spec"),
    }


def write(root: str, run: dict | None = None) -> dict:
    """Rebuild ``summary.json``; ``run`` (this run's wall time, counts) is appended to ``runs``."""
    root = fsio.normalize(root)
    uri = fsio.join(root, "summary.json")
    runs = []
    if fsio.exists(uri):
        try:
            runs = json.loads(fsio.read_text(uri)).get("runs", [])
        except ValueError:
            runs = []
    summary = build(root)
    if run:
        runs.append({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **run})
    summary["runs"] = runs
    fsio.write_atomic(uri, json.dumps(summary, indent=2, sort_keys=False).encode())
    return summary
