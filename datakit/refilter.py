"""``datakit refilter``: apply another filter profile to the scores stored in an output.

The keep-list (Parquet; default ``ROOT/keep/PROFILE.parquet``) has one row per committed
sample: ``key``, ``shard``, ``kept``, ``reason`` (first failing rule) and ``failed`` (all
failing rules, comma-separated). Nothing is scored or rewritten. A stricter profile
narrows the corpus this way; a looser one cannot bring back clips an earlier ``filter``
stage rejected (their media were not stored) — they are only counted (``rescued``). To
keep that option open, run the pipeline's filter stage with ``action: tag``, which
records verdicts but keeps every clip.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from . import fsio
from .output import parquet
from .output.reader import Output, open_output, reject_meta, sample_doc
from .scoring.profiles import Profile

KEEP_SCHEMA = pa.schema([("key", pa.string()), ("shard", pa.string()), ("kept", pa.bool_()),
                         ("reason", pa.string()), ("failed", pa.string())])


@dataclass
class RefilterResult:
    profile: str
    keep_list: str
    samples: int           # samples in the output's committed batches
    kept: int              # of those, the ones the profile keeps
    by_reason: dict[str, int]
    rescued: int           # clips an earlier filter rejected (no media stored) that this profile would keep


def verdict(profile: Profile, key: str, shard: str, scores: dict) -> dict:
    """One keep-list row."""
    fails = profile.failures(scores or {})
    return {"key": key, "shard": shard, "kept": not fails, "reason": fails[0][0] if fails else None,
            "failed": ",".join(f for f, _ in fails) or None}


def refilter(root: str | Output, profile: Profile, dest: str | None = None) -> RefilterResult:
    out = root if isinstance(root, Output) else open_output(root)
    rows = [verdict(profile, r["key"], r["shard"], sample_doc(r).get("scores"))
            for r in out.manifest_rows(["key", "shard", "json"])]
    rescued = sum(not profile.failures(reject_meta(r).get("scores") or {})
                  for r in out.reject_rows(["stage", "json"]) if r["stage"] == "filter")
    dest = dest or fsio.join(out.root, "keep", f"{profile.name}.parquet")
    table = pa.Table.from_pylist(rows, schema=KEEP_SCHEMA).replace_schema_metadata(
        {"datakit.profile": profile.model_dump_json()})
    fsio.makedirs(dest.rsplit("/", 1)[0] if "/" in dest else ".")
    fsio.write_atomic(dest, parquet.encode(table))
    reasons = Counter(r["reason"] for r in rows if r["reason"])
    return RefilterResult(profile.name, dest, len(rows), sum(r["kept"] for r in rows),
                          dict(reasons.most_common()), rescued)
