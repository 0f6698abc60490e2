"""Committing finished records, run where the records are (a Ray worker, or the driver).

``write_batch(records, settings)`` turns one batch of finished records (samples and
rejects) into committed files and returns one small status row per record; the encoded
media never leave the process that made them.

Commit protocol, per shard of the batch (a batch is cut into shards of at most
``max_samples`` samples and ``max_bytes`` bytes)::

    shards/NAME.tar         written to a temporary name, renamed        (skipped: no samples)
    rejects/NAME.parquet    written to a temporary name, renamed        (the batch's rejects,
                                                                         with its last shard)
    index/NAME.parquet      written to a temporary name, renamed        (clip index rows of the
                                                                         shard's records that have
                                                                         scores; ``settings.index``)
    manifests/NAME.parquet  written to a temporary name, renamed LAST   (the commit point)

``NAME`` comes from the keys the manifest commits (``layout.batch_name``), so a task that
Ray retries claims the same names; a shard whose manifest already exists is left as it
is (an earlier attempt committed it). A crash at any point leaves either a committed
shard or files without a manifest, which the next run deletes (see ``resume``). Records
are ordered by key first, so the same records give the same shards in any order.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from .. import __version__, faults, fsio
from ..records import Record
from . import layout, parquet, schema, tarpack
from .settings import OutputSettings

log = logging.getLogger("datakit")

#: meta keys that are working state, not part of the sample json
PRIVATE_META = frozenset({"manifest_caption", "caption"})

#: the columns of the status rows ``write_batch`` returns
STATUS_FIELDS = ("key", "source_id", "source_clips", "verdict", "reason", "bytes", "shard")


def sample_doc(rec: Record, settings: OutputSettings) -> dict:
    """The sample's json member."""
    doc = {"format_version": layout.FORMAT_VERSION, "key": rec.key, "task": settings.task}
    doc.update({k: v for k, v in rec.meta.items() if k not in PRIVATE_META})
    doc.setdefault("scores", {})
    doc.setdefault("degradations", [])
    doc.update(config_hash=settings.config_hash, pipeline=settings.pipeline, datakit_version=__version__)
    return doc


def sample_members(rec: Record, doc: dict) -> dict[str, bytes]:
    """The WebDataset members of a sample, as bytes, in a fixed order."""
    members = dict(sorted(rec.media.items()))
    members["txt"] = rec.meta.get("caption", "").encode("utf-8")
    members["json"] = schema.sample_json_bytes(doc)
    return members


def reject_row(rec: Record) -> dict:
    m = rec.meta
    return {"key": rec.key, "source_uri": m.get("source_uri"), "source_id": m.get("source_id"),
            "source_clips": m.get("source_clips"), "start_frame": m.get("start_frame"),
            "end_frame": m.get("end_frame"), **rec.reject.to_dict(),
            "json": {k: v for k, v in m.items() if k != "manifest_caption"}}


def index_row(rec: Record, settings: OutputSettings) -> dict:
    """The clip index row of a scored record (kept, rejected, or only indexed by ``curate``)."""
    meta = {k: v for k, v in rec.meta.items() if k != "manifest_caption"}
    row = {**meta, "key": rec.key, "pipeline": settings.pipeline, "index_hash": settings.index_hash,
           "format_version": layout.FORMAT_VERSION, "datakit_version": __version__,
           "stage": rec.reject.stage if rec.reject else None, "reason": rec.reject.reason if rec.reject else None,
           "json": json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)}
    return row


@dataclass
class _Shard:
    samples: list[tuple[Record, dict, dict[str, bytes]]]
    rejects: list[Record]
    indexed: list[Record] = field(default_factory=list)     # curate: scored records, index rows only

    def keys(self) -> list[str]:
        return [r.key for r, _, _ in self.samples] + [r.key for r in self.rejects] + [r.key for r in self.indexed]

    def index_records(self) -> list[Record]:
        recs = [r for r, _, _ in self.samples] + self.rejects + self.indexed
        return [r for r in recs if "scores" in r.meta]


def plan_shards(records: list[Record], settings: OutputSettings) -> list[_Shard]:
    """The shards a batch is written as: samples in key order, cut at ``max_samples`` or once a
    shard holds ``max_bytes``; the rejects ride with the last shard (or alone)."""
    recs = sorted(records, key=lambda r: r.key)
    if settings.mode == "curate":         # no samples: scored clips become index rows, the rest rejects
        indexed = [r for r in recs if r.reject is None]
        rejects = [r for r in recs if r.reject is not None]
        return [_Shard([], rejects, indexed)] if recs else []
    shards: list[_Shard] = []
    cur: list = []
    size = 0
    for rec in recs:
        if rec.reject is not None:
            continue
        doc = sample_doc(rec, settings)
        members = sample_members(rec, doc)
        cur.append((rec, doc, members))
        size += sum(len(b) for b in members.values())
        if len(cur) >= settings.max_samples or size >= settings.max_bytes:
            shards.append(_Shard(cur, []))
            cur, size = [], 0
    rejects = [r for r in recs if r.reject is not None]
    if cur or rejects or not shards:
        shards.append(_Shard(cur, rejects))
    else:
        shards[-1].rejects = rejects
    return [s for s in shards if s.samples or s.rejects]


def write_batch(records: list[Record], settings: OutputSettings) -> list[dict]:
    """Commit ``records`` (samples and rejects) under ``settings.root``; one status row per record."""
    status: list[dict] = []
    seen: set[str] = set()
    unique = []
    for r in records:                      # one record per key (a key delivered twice is written once)
        if r.key not in seen:
            seen.add(r.key)
            unique.append(r)
    for shard in plan_shards(unique, settings):
        name = layout.batch_name(settings.prefix, shard.keys())
        sizes = _commit(shard, name, settings)
        for rec, _, members in shard.samples:
            status.append(_status(rec, "kept", None, sizes.get(rec.key, 0), name))
        for rec in shard.rejects:
            _log_reject(rec)
            status.append(_status(rec, "rejected", rec.reject.reason, 0, name))
        for rec in shard.indexed:
            status.append(_status(rec, "indexed", None, 0, name))
    return status


def _status(rec: Record, verdict: str, reason: str | None, nbytes: int, name: str) -> dict:
    m = rec.meta
    return {"key": rec.key, "source_id": m.get("source_id"), "source_clips": m.get("source_clips"),
            "verdict": verdict, "reason": reason, "bytes": nbytes, "shard": name}


def _log_reject(rec: Record) -> None:
    # unexpected errors are worth a line even without -v; expected rejects are counted in stats
    log.log(logging.WARNING if rec.reject.reason == "error" else logging.DEBUG,
            "reject at stage %s (%s): %s: %s", rec.reject.stage, rec.reject.reason,
            rec.meta.get("source_uri"), rec.reject.detail)


def _commit(shard: _Shard, name: str, settings: OutputSettings) -> dict[str, int]:
    """Write one shard's files in commit order; returns the bytes written per sample key."""
    root = settings.root
    man_uri = layout.manifest_uri(root, name)
    sizes = {rec.key: sum(len(b) for b in members.values()) for rec, _, members in shard.samples}
    if fsio.exists(man_uri):
        return sizes                       # an earlier attempt at this batch committed it
    rows = []
    if shard.samples:
        tar_uri = layout.tar_uri(root, name)
        fsio.makedirs(fsio.join(root, layout.SHARDS))
        tmp, stream = fsio.open_output_tmp(tar_uri)
        offset = 0
        with stream:
            for rec, doc, members in shard.samples:
                data, member_rows = tarpack.pack(rec.key, members)
                stream.write(data)
                for m in member_rows:
                    m["offset"] += offset
                offset += len(data)
                row = dict(doc)
                row.update(caption=members["txt"].decode("utf-8"), shard=name, members=member_rows,
                           json=members["json"].decode("utf-8"))
                rows.append(row)
            stream.write(tarpack.END)
        fsio.commit(tmp, tar_uri)
    fault_point("after_tar")
    if shard.rejects:
        fsio.makedirs(fsio.join(root, layout.REJECTS))
        _write_parquet(layout.rejects_uri(root, name),
                       schema.reject_table([reject_row(r) for r in shard.rejects], settings))
    fault_point("after_rejects")
    index = shard.index_records() if settings.index else []
    if index:
        fsio.makedirs(fsio.join(root, layout.INDEX))
        _write_parquet(layout.index_uri(root, name), schema.index_table([index_row(r, settings) for r in index],
                                                                         settings))
    fault_point("after_index")
    fsio.makedirs(fsio.join(root, layout.MANIFESTS))
    table = schema.manifest_table(rows, settings)
    fault_point("before_manifest")
    _write_parquet(man_uri, table)         # the commit point
    return sizes


def _write_parquet(uri: str, table) -> None:
    fsio.write_atomic(uri, parquet.encode(table))     # temporary name, then rename


def fault_point(point: str) -> None:
    """``DATAKIT_FAULT_INJECT=write:POINT`` ends the process here (see ``datakit.faults``)."""
    faults.maybe_crash("write", lambda what: what == point)
