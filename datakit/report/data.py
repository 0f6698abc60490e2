"""Everything the report reads from an output root, turned into plain Python rows.

This is the report's only reader of an output: the pages, charts and tables are built
from :class:`ClipRow` and :class:`OutputView` alone. Kept samples come from the shard
manifests (their members from the shard tars), rejected clips and sources from the reject
parts, whose ``json`` column holds the record's metadata at the time, scores included.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow.parquet as pq

from .. import fsio, summary
from ..scoring.profiles import Rule
from ..shards import manifest_uris, read_manifest, reject_part_uris

KEPT, REJECTED = "kept", "rejected"


@dataclass
class ClipRow:
    """One clip (or one source rejected before it was split) as the report shows it."""

    key: str
    verdict: str                      # KEPT or REJECTED
    stage: str                        # the stage that rejected it; "" for kept samples
    reason: str                       # the reject reason; "" for kept samples
    detail: str
    task: str
    source_uri: str
    start_frame: int | None
    end_frame: int | None
    caption: str
    scores: dict[str, float]          # numeric scores only
    doc: dict                         # the sample json (kept) or the reject's metadata json
    shard: str = ""                   # kept samples: the shard holding the media

    @property
    def source_name(self) -> str:
        return (self.source_uri or "").rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_source(self) -> bool:
        """A whole source rejected before it was cut into clips."""
        return self.key == self.doc.get("source_id") or self.start_frame is None


@dataclass
class OutputView:
    root: str
    summary: dict
    rules: list[Rule] = field(default_factory=list)   # the filter stages' rules, in order


def _numeric(scores: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (scores or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}


def filter_rules(config: dict | None) -> list[Rule]:
    """The rules of every filter stage in a run's resolved spec (config.json stores them inline)."""
    out: list[Rule] = []
    for st in (config or {}).get("stages", []):
        if st.get("stage") == "filter":
            out += [Rule.model_validate(r) for r in st.get("rules") or []]
    return out


def open_output(root: str) -> OutputView:
    root = fsio.normalize(root)
    summ = summary.build(root)
    return OutputView(root=root, summary=summ, rules=filter_rules(summ.get("config")))


def iter_kept(view: OutputView) -> Iterator[ClipRow]:
    """Every sample in the complete shards, in shard order."""
    for uri in manifest_uris(view.root):
        for r in read_manifest(uri):
            yield ClipRow(key=r["key"], verdict=KEPT, stage="", reason="", detail="",
                          task=r.get("task") or "", source_uri=r.get("source_uri") or "",
                          start_frame=r.get("start_frame"), end_frame=r.get("end_frame"),
                          caption=r.get("caption") or "", scores=_numeric(r.get("scores")), doc=r,
                          shard=r.get("shard") or "")


def iter_rejected(view: OutputView) -> Iterator[ClipRow]:
    """Every reject row, with the metadata its ``json`` column recorded."""
    task = (view.summary.get("config") or {}).get("task") or ""
    for uri in reject_part_uris(view.root):
        fs, path = fsio.resolve(uri)
        for r in pq.read_table(path, filesystem=fs).to_pylist():
            try:
                doc = json.loads(r.get("json") or "{}")
            except ValueError:
                doc = {}
            if not isinstance(doc, dict):
                doc = {}
            yield ClipRow(key=r["key"], verdict=REJECTED, stage=r.get("stage") or "", reason=r.get("reason") or "",
                          detail=r.get("detail") or "", task=doc.get("task") or task,
                          source_uri=r.get("source_uri") or "", start_frame=r.get("start_frame"),
                          end_frame=r.get("end_frame"), caption=str(doc.get("caption") or ""),
                          scores=_numeric(doc.get("scores")), doc=doc)


def read_members(view: OutputView, rows: list[ClipRow]) -> Iterator[tuple[ClipRow, dict[str, bytes]]]:
    """``(row, {member name: bytes})`` of kept samples, reading each shard's tar once."""
    by_shard: dict[str, list[ClipRow]] = {}
    for r in rows:
        by_shard.setdefault(r.shard, []).append(r)
    for shard, items in by_shard.items():
        wanted = {r.key: {} for r in items}
        with tarfile.open(fileobj=io.BytesIO(fsio.read_bytes(fsio.join(view.root, shard + ".tar")))) as tf:
            for ti in tf:
                key, _, name = ti.name.partition(".")
                if key in wanted and ti.isfile():
                    wanted[key][name] = tf.extractfile(ti).read()
        for r in items:
            yield r, wanted[r.key]
