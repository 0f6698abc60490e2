"""Counts, rejects and timings of an output root, computed from its manifests and rejects.

``meta/summary.json`` is rewritten from the committed batches at the end of every run,
so it always agrees with what is on disk; ``datakit stats`` prints the same numbers
without writing anything. Score quantiles cover kept and rejected clips, by verdict
(reject rows keep every score computed before the clip was rejected).
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict

from . import fsio, tally
from .output import layout
from .output.reader import Output, open_output, sample_doc

_MANIFEST_COLUMNS = ["key", "source_id", "source_clips", "scores", "source", "json"]
_REJECT_COLUMNS = ["key", "source_id", "source_clips", "stage", "reason", "scores"]


def _numbers(prefix: str, struct: dict | None, into: dict[str, list]) -> None:
    for name, v in (struct or {}).items():
        if v is not None:
            into[f"{prefix}.{name}"].append(v)


def build(root: str | Output) -> dict:
    out = root if isinstance(root, Output) else open_output(root)
    spec = out.spec
    stages = [s.get("stage") for s in spec.get("stages", [])]
    source_clips: dict[str, int] = {}
    kept: dict[str, list] = defaultdict(list)
    rejected: dict[str, list] = defaultdict(list)
    timings: dict[str, list[float]] = defaultdict(list)
    samples, shards = 0, 0
    for name, table in out.manifest_tables(_MANIFEST_COLUMNS):
        shards += table.num_rows > 0
        uri = layout.manifest_uri(out.root, name)
        for r in table.to_pylist():
            samples += 1
            source_clips[r["source_id"]] = r["source_clips"]
            _numbers("scores", r.get("scores"), kept)
            src = r.get("source") or {}
            _numbers("source", {"duration_s": src.get("duration_s"), "height": src.get("height")}, kept)
            for st, sec in (sample_doc(r, uri).get("timings") or {}).items():
                timings[st].append(sec)
    rejects: list[dict] = []
    for r in out.reject_rows(_REJECT_COLUMNS):
        rejects.append(r)
        if r["key"] != r["source_id"] and r["source_clips"] is not None:
            source_clips[r["source_id"]] = r["source_clips"]
        _numbers("scores", r.get("scores"), rejected)
    indexed = 0
    for r in out.index_rows(["key", "source_id", "source_clips", "stage"]):
        indexed += 1
        if out.kind == "curate":           # indexed clips are the curate's "kept" clips
            source_clips[r["source_id"]] = r["source_clips"]
    whole_sources = {r["source_id"] for r in rejects if r["key"] == r["source_id"]}
    by_stage = Counter(r["stage"] for r in rejects)
    clips = sum(n for n in source_clips.values() if n)
    sources = len(set(source_clips) | whole_sources)
    return {
        "format_version": out.config.get("format_version"),
        "config_hash": out.config.get("config_hash"),
        "pipeline": spec.get("name"),
        "task": spec.get("task"),
        "counts": {"sources": sources, "samples": samples, "shards": shards, "rejects": len(rejects),
                   "clips": clips, "indexed": indexed},
        "kind": out.kind,
        "stages": tally.stage_flow(stages, sources, clips, by_stage),
        "rejects_by_reason": dict(Counter(r["reason"] for r in rejects).most_common()),
        "rejects_by_stage": {st: dict(Counter(r["reason"] for r in rejects if r["stage"] == st)) for st in by_stage},
        "timings_s": tally.timing_table(timings, stages),
        "quantiles": tally.by_verdict(kept, rejected),
        "config": spec or None,
    }


def read(root: str | Output) -> dict | None:
    """meta/summary.json as the last run wrote it (None if no run finished)."""
    out = root if isinstance(root, Output) else open_output(root)
    return out.summary()


def write(root: str, run: dict | None = None) -> dict:
    """Rebuild ``meta/summary.json``; ``run`` (this run's wall time, counts) is appended to ``runs``."""
    out = open_output(root)
    uri = layout.summary_uri(out.root)
    runs = []
    if fsio.exists(uri):
        try:
            runs = json.loads(fsio.read_text(uri)).get("runs", [])
        except ValueError:
            runs = []
    summary = build(out)
    if run:
        runs.append({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **run})
    summary["runs"] = runs
    fsio.write_atomic(uri, json.dumps(summary, indent=2, sort_keys=False).encode())
    return summary

