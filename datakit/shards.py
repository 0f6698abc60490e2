"""The output side: WebDataset shards, Parquet manifests, rejects, resume state.

Layout of an output root::

    config.json                 the resolved spec and its hash (a rerun must match it)
    PREFIX-000000.tar           samples; written under a temporary name, then renamed
    PREFIX-000000.parquet       one row per sample; written after the tar: its presence
                                is what makes the shard complete
    rejects/part-000000.parquet reject rows, committed the same way
    rejects.parquet             all reject parts in one file (rewritten at the end of a run)
    summary.json                counts, rejects by reason, timings, config

A rerun reads the complete manifests and reject parts, deletes temporary files and
tars without a manifest, and skips every key already written: at-least-once work
upstream, idempotent sinks here.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from . import __version__, fsio
from .records import Record
from .output.layout import FORMAT_VERSION
from .spec import PipelineSpec

log = logging.getLogger("datakit")

# meta keys that are working state, not part of the sample json
_PRIVATE_META = {"manifest_caption", "caption"}
MEMBER_STRUCT = pa.struct([("name", pa.string()), ("size", pa.int64()), ("sha256", pa.string())])
REJECT_SCHEMA = pa.schema([
    ("key", pa.string()), ("source_uri", pa.string()), ("source_id", pa.string()),
    ("source_clips", pa.int64()), ("start_frame", pa.int64()), ("end_frame", pa.int64()),
    ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("json", pa.string()),
])


class OutputError(RuntimeError):
    """The output root cannot be used (e.g. it was made with a different config)."""


def shard_pattern(prefix: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(prefix)}-(\d{{6}})\.(tar|parquet)$")


def sample_json(rec: Record, spec: PipelineSpec, config_hash: str) -> dict:
    doc = {"format_version": FORMAT_VERSION, "key": rec.key, "task": spec.task}
    doc.update({k: v for k, v in rec.meta.items() if k not in _PRIVATE_META})
    doc.setdefault("scores", {})
    doc.setdefault("degradations", [])
    doc.update(config_hash=config_hash, pipeline=spec.name, datakit_version=__version__)
    return doc


def sample_members(rec: Record, doc: dict) -> dict[str, bytes]:
    """The WebDataset members of a sample, as bytes, in a fixed order."""
    members = dict(sorted(rec.media.items()))
    members["txt"] = rec.meta.get("caption", "").encode("utf-8")
    members["json"] = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return members


def _column_value(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v


def manifest_table(rows: list[dict]) -> pa.Table:
    """Top-level json fields as columns (nested values as JSON text), plus members."""
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    cols = {}
    json_cols = sorted({n for r in rows for n, v in r.items() if isinstance(v, (dict, list)) and n != "members"})
    for n in names:
        vals = [_column_value(r.get(n)) for r in rows]
        if n == "members":
            cols[n] = pa.array([r["members"] for r in rows], type=pa.list_(MEMBER_STRUCT))
            continue
        arr = pa.array(vals)
        if pa.types.is_null(arr.type):
            arr = arr.cast(pa.string())
        cols[n] = arr
    # which text columns hold JSON, so readers can restore the sample json exactly
    return pa.table(cols).replace_schema_metadata({"datakit.json_columns": json.dumps(json_cols)})


def read_manifest(uri: str) -> list[dict]:
    """Manifest rows with their JSON columns decoded (each row = sample json + shard fields)."""
    table = _read_parquet(uri)
    meta = table.schema.metadata or {}
    json_cols = set(json.loads(meta.get(b"datakit.json_columns", b"[]")))
    rows = table.to_pylist()
    for r in rows:
        for c in json_cols:
            if isinstance(r.get(c), str):
                r[c] = json.loads(r[c])
    return rows


@dataclass
class OutputState:
    """What an output root already holds, read at the start of a run."""

    root: str
    prefix: str
    done_keys: set[str] = field(default_factory=set)
    done_sources: set[str] = field(default_factory=set)
    #: done clip keys of sources that still have work left (the runner skips these)
    resume_skip: set[str] = field(default_factory=set)
    next_shard: int = 0
    next_rejects_part: int = 0
    cleaned: list[str] = field(default_factory=list)

    @property
    def rejects_dir(self) -> str:
        return fsio.join(self.root, "rejects")


def open_output(spec: PipelineSpec) -> OutputState:
    """Prepare the output root for a (re)run and read what is already complete."""
    root = fsio.normalize(spec.output)
    config_hash = spec.config_hash()
    fsio.makedirs(root)
    fsio.makedirs(fsio.join(root, "rejects"))
    cfg_uri = fsio.join(root, "config.json")
    if fsio.exists(cfg_uri):
        old = json.loads(fsio.read_text(cfg_uri))
        if old.get("config_hash") != config_hash:
            raise OutputError(
                f"{root} was made with a different config (hash {old.get('config_hash')}, now {config_hash}); "
                "write to a new --output, or rerun with the original spec and --set values")
    else:
        fsio.write_atomic(cfg_uri, json.dumps(
            {"config_hash": config_hash, "format_version": FORMAT_VERSION,
             "spec": spec.model_dump(mode="json")}, indent=2).encode())

    state = OutputState(root=root, prefix=spec.shard.prefix)
    pat = shard_pattern(spec.shard.prefix)
    files = fsio.list_files(root, recursive=False)
    names = {f.rsplit("/", 1)[-1] for f in files}
    for f in files:
        name = f.rsplit("/", 1)[-1]
        m = pat.match(name)
        if fsio.is_tmp(f) or (m and m.group(2) == "tar" and name[:-4] + ".parquet" not in names):
            fsio.delete(f)           # a crash left it: its samples are in no manifest and get redone
            state.cleaned.append(name)
    for f in fsio.list_files(state.rejects_dir, recursive=False):
        if fsio.is_tmp(f):
            fsio.delete(f)
            state.cleaned.append("rejects/" + f.rsplit("/", 1)[-1])

    clips_done: dict[str, int] = defaultdict(int)
    key_source: list[tuple[str, str]] = []
    clips_expected: dict[str, int] = {}
    for uri in manifest_uris(root, spec.shard.prefix):
        state.next_shard = max(state.next_shard, int(pat.match(uri.rsplit("/", 1)[-1]).group(1)) + 1)
        t = _read_parquet(uri, ["key", "source_id", "source_clips"])
        for key, sid, n in zip(*(t.column(c).to_pylist() for c in ("key", "source_id", "source_clips"))):
            state.done_keys.add(key)
            key_source.append((key, sid))
            clips_done[sid] += 1
            clips_expected[sid] = n
    for uri in reject_part_uris(root):
        state.next_rejects_part = max(state.next_rejects_part, int(re.search(r"(\d+)", uri.rsplit("/", 1)[-1]).group(1)) + 1)
        t = _read_parquet(uri, ["key", "source_id", "source_clips"])
        for key, sid, n in zip(*(t.column(c).to_pylist() for c in ("key", "source_id", "source_clips"))):
            state.done_keys.add(key)
            if key == sid:           # the whole source was rejected before it was split
                state.done_sources.add(sid)
            else:
                key_source.append((key, sid))
                clips_done[sid] += 1
                clips_expected[sid] = n
    state.done_sources |= {sid for sid, n in clips_done.items() if clips_expected.get(sid) == n}
    state.resume_skip = {k for k, sid in key_source if sid not in state.done_sources}
    return state


def _read_parquet(uri: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = fsio.resolve(uri)
    return pq.read_table(path, filesystem=fs, columns=columns)


def manifest_uris(root: str, prefix: str | None = None) -> list[str]:
    """Complete shards' manifests, sorted. With no prefix, every ``*-NNNNNN.parquet``."""
    pat = shard_pattern(prefix) if prefix else re.compile(r"^.+-(\d{6})\.(parquet)$")
    return [u for u in fsio.list_files(fsio.normalize(root), recursive=False)
            if (m := pat.match(u.rsplit("/", 1)[-1])) and m.group(2) == "parquet"]


def manifest_rows(uri: str) -> int:
    """Samples in a complete shard, from its manifest's footer."""
    fs, path = fsio.resolve(uri)
    with fs.open_input_file(path) as f:
        return pq.ParquetFile(f).metadata.num_rows


def reject_part_uris(root: str) -> list[str]:
    return [u for u in fsio.list_files(fsio.join(fsio.normalize(root), "rejects"), recursive=False)
            if re.fullmatch(r"part-\d{6}\.parquet", u.rsplit("/", 1)[-1])]


class ShardWriter:
    """Collects samples and rejects from the stream and commits them atomically."""

    def __init__(self, spec: PipelineSpec, state: OutputState):
        self.spec = spec
        self.state = state
        self.config_hash = spec.config_hash()
        self.seen: set[str] = set()
        self.sources_seen: set[str] = set()   # sources with at least one record delivered this run
        self.pending: list[tuple[str, dict[str, bytes], dict]] = []
        self.pending_bytes = 0
        self.rejects: list[dict] = []
        self.written_samples = 0
        self.written_rejects = 0
        self.shards_written: list[str] = []

    def add(self, rec: Record) -> None:
        self.sources_seen.add(rec.meta.get("source_id"))
        if rec.key in self.seen or rec.key in self.state.done_keys:
            return                    # a retried task delivered it twice, or an earlier run wrote it
        self.seen.add(rec.key)
        if rec.reject is not None:
            self._add_reject(rec)
            return
        doc = sample_json(rec, self.spec, self.config_hash)
        members = sample_members(rec, doc)
        self.pending.append((rec.key, members, doc))
        self.pending_bytes += sum(len(v) for v in members.values())
        if len(self.pending) >= self.spec.shard.max_samples or self.pending_bytes >= self.spec.shard.max_bytes:
            self.flush_shard()

    def _add_reject(self, rec: Record) -> None:
        m = rec.meta
        # unexpected errors are worth a line even without -v; expected rejects are counted in stats
        log.log(logging.WARNING if rec.reject.reason == "error" else logging.DEBUG,
                "reject at stage %s (%s): %s: %s", rec.reject.stage, rec.reject.reason,
                m.get("source_uri"), rec.reject.detail)
        self.rejects.append({
            "key": rec.key, "source_uri": m.get("source_uri"), "source_id": m.get("source_id"),
            "source_clips": m.get("source_clips"), "start_frame": m.get("start_frame"),
            "end_frame": m.get("end_frame"), **rec.reject.to_dict(),
            "json": json.dumps({k: v for k, v in m.items() if k != "manifest_caption"}, sort_keys=True,
                               default=str),
        })
        if len(self.rejects) >= self.spec.shard.rejects_flush:
            self.flush_rejects()

    def flush_shard(self) -> None:
        if not self.pending:
            return
        name = f"{self.spec.shard.prefix}-{self.state.next_shard:06d}"
        self.state.next_shard += 1
        tar_uri = fsio.join(self.state.root, name + ".tar")
        tmp_uri, stream = fsio.open_output_tmp(tar_uri)
        rows = []
        with stream:
            writer = wds.TarWriter(stream, encoder=False, mtime=0)
            for key, members, doc in self.pending:
                writer.write({"__key__": key, **members})
                row = dict(doc)
                row["caption"] = members["txt"].decode("utf-8")
                row["shard"] = name
                row["members"] = [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                                  for n, b in members.items()]
                rows.append(row)
            writer.close()
        fsio.commit(tmp_uri, tar_uri)
        buf = io.BytesIO()
        pq.write_table(manifest_table(rows), buf)
        # the manifest is the commit point: a tar without one is redone by the next run
        fsio.write_atomic(fsio.join(self.state.root, name + ".parquet"), buf.getvalue())
        self.written_samples += len(self.pending)
        self.shards_written.append(name)
        self.pending, self.pending_bytes = [], 0

    def flush_rejects(self) -> None:
        if not self.rejects:
            return
        name = f"part-{self.state.next_rejects_part:06d}.parquet"
        self.state.next_rejects_part += 1
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(self.rejects, schema=REJECT_SCHEMA), buf)
        fsio.write_atomic(fsio.join(self.state.rejects_dir, name), buf.getvalue())
        self.written_rejects += len(self.rejects)
        self.rejects = []

    def close(self) -> None:
        self.flush_shard()
        self.flush_rejects()
        consolidate_rejects(self.state.root)


def consolidate_rejects(root: str) -> None:
    """Rewrite ``rejects.parquet`` from every committed reject part."""
    parts = [_read_parquet(u) for u in reject_part_uris(root)]
    table = pa.concat_tables(parts) if parts else REJECT_SCHEMA.empty_table()
    buf = io.BytesIO()
    pq.write_table(table, buf)
    fsio.write_atomic(fsio.join(fsio.normalize(root), "rejects.parquet"), buf.getvalue())
