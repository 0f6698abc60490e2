"""The declared Arrow schema of manifests and rejects (format version 2).

The schema depends only on the format version and the pipeline's score names
(``OutputSettings.metrics``), never on the rows: every manifest of an output has the
same columns and types, whichever samples it holds. A row is converted field by field
into the declared type; a value that is missing or does not fit becomes null (the
sample's ``json`` member, kept whole in the ``json`` column, still holds it exactly).

Manifest columns (one row per sample):

- identity: ``key``, ``task``, ``pipeline``, ``config_hash``, ``format_version``,
  ``datakit_version``
- source and span: ``source_uri``, ``source_id``, ``source_clips``, ``scene``,
  ``start_frame``, ``end_frame``, ``num_frames``, ``fps``, ``start_time``, ``source``
  (the probed source video, a struct)
- media: ``hr``, ``lr``, ``ref``, ``mask`` (struct: width, height, frames, fps, codec,
  crf, preset, lossless)
- ``scores``: struct of float64, one field per score name of the pipeline (absent when the
  pipeline scores nothing: Parquet cannot hold a struct without fields)
- ``filter``: struct{profile, passed, failed}
- ``sdedit``: struct (backend, model_id, steps, k, sigma_start, guidance, seed, ...)
- ``degradations``: list of struct{stage, profile, seed, backend, device} (a summary:
  the drawn per-frame parameters are in the json)
- ``refs``: struct{task, backend, num_ids, found, frame_index, method}
- ``caption``, ``caption_source``, ``synthetic_models``
- shard fields: ``shard`` (batch name) and ``members``: list of struct{name, offset,
  size, sha256}, where ``offset`` and ``size`` locate the member's data in the tar
- ``json``: the sample's json member, as text

Clip index rows (``index/NAME.parquet``, one per clip that was scored, kept or not):
``key``, ``pipeline``, ``index_hash``, ``format_version``, ``datakit_version``, the source
and span fields of the manifests, ``hr``, ``scores``, ``filter`` (the verdict of the
spec's own profile), ``caption``, ``caption_source``, ``stage`` and ``reason`` (set when
the record was rejected, by the filter or a later stage) and ``json`` (the record's meta,
from which ``datakit build`` rebuilds the record exactly).

Reject rows: ``key``, ``source_uri``, ``source_id``, ``source_clips``, ``start_frame``,
``end_frame``, ``stage``, ``reason``, ``detail``, ``scores`` (same struct as the
manifests, so statistics can include rejected clips) and ``json`` (the record's meta).
"""
from __future__ import annotations

import json

import pyarrow as pa

from .layout import FORMAT_VERSION, INDEX, REJECTS
from .settings import OutputSettings

# -------------------------------------------------------------- declared types

MEMBER = pa.struct([("name", pa.string()), ("offset", pa.int64()), ("size", pa.int64()),
                    ("sha256", pa.string())])

MEDIA = pa.struct([("width", pa.int64()), ("height", pa.int64()), ("frames", pa.int64()),
                   ("fps", pa.float64()), ("codec", pa.string()), ("crf", pa.int64()),
                   ("preset", pa.string()), ("lossless", pa.bool_())])

SOURCE = pa.struct([
    ("width", pa.int64()), ("height", pa.int64()), ("coded_width", pa.int64()), ("coded_height", pa.int64()),
    ("rotation", pa.int64()), ("codec", pa.string()), ("pix_fmt", pa.string()), ("bit_depth", pa.int64()),
    ("fps", pa.float64()), ("vfr", pa.bool_()), ("num_frames", pa.int64()), ("duration_s", pa.float64()),
    ("start_time", pa.float64()), ("container", pa.string()), ("has_audio", pa.bool_())])

FILTER = pa.struct([("profile", pa.string()), ("passed", pa.bool_()), ("failed", pa.list_(pa.string()))])

SDEDIT = pa.struct([
    ("backend", pa.string()), ("model_id", pa.string()), ("synthetic_model", pa.bool_()),
    ("steps", pa.int64()), ("k", pa.int64()), ("k_range", pa.list_(pa.int64())), ("preset", pa.string()),
    ("sigma_start", pa.float64()), ("timestep_start", pa.float64()), ("guidance", pa.float64()),
    ("shift", pa.float64()), ("scheduler", pa.string()), ("seed", pa.int64()),
    ("base", pa.struct([("width", pa.int64()), ("height", pa.int64()), ("frames", pa.int64())])),
    ("padded_frames", pa.int64()), ("dtype", pa.string())])

DEGRADATION = pa.struct([("stage", pa.string()), ("profile", pa.string()), ("seed", pa.int64()),
                         ("backend", pa.string()), ("device", pa.string())])

REFS = pa.struct([("task", pa.string()), ("backend", pa.string()), ("num_ids", pa.int64()),
                  ("found", pa.int64()), ("frame_index", pa.int64()), ("method", pa.string())])

#: row fields written by the writer beside the sample json (not part of the json member)
SHARD_FIELDS = ("caption", "shard", "members")

_META_VERSION = b"datakit.format_version"
_META_SCORES = b"datakit.scores"


def scores_type(metrics) -> pa.StructType:
    return pa.struct([(m, pa.float64()) for m in metrics])


def _scores(settings: OutputSettings) -> list[tuple[str, pa.DataType]]:
    """The ``scores`` column; absent when the pipeline scores nothing (Parquet has no empty structs)."""
    return [("scores", scores_type(settings.metrics))] if settings.metrics else []


def manifest_schema(settings: OutputSettings) -> pa.Schema:
    """The manifest schema of an output whose pipeline writes ``settings.metrics``."""
    i64, f64, s = pa.int64(), pa.float64(), pa.string()
    return pa.schema([
        ("key", s), ("task", s), ("pipeline", s), ("config_hash", s), ("format_version", i64),
        ("datakit_version", s),
        ("source_uri", s), ("source_id", s), ("source_clips", i64), ("scene", i64),
        ("start_frame", i64), ("end_frame", i64), ("num_frames", i64), ("fps", f64), ("start_time", f64),
        ("source", SOURCE),
        ("hr", MEDIA), ("lr", MEDIA), ("ref", MEDIA), ("mask", MEDIA),
        *_scores(settings),
        ("filter", FILTER), ("sdedit", SDEDIT), ("degradations", pa.list_(DEGRADATION)), ("refs", REFS),
        ("caption", s), ("caption_source", s), ("synthetic_models", pa.bool_()),
        ("shard", s), ("members", pa.list_(MEMBER)),
        ("json", s),
    ], metadata=_metadata(settings))


#: the reject columns every output has; ``reject_schema`` adds ``scores`` before ``json``
REJECT_SCHEMA = pa.schema([
    ("key", pa.string()), ("source_uri", pa.string()), ("source_id", pa.string()), ("source_clips", pa.int64()),
    ("start_frame", pa.int64()), ("end_frame", pa.int64()), ("stage", pa.string()), ("reason", pa.string()),
    ("detail", pa.string()), ("json", pa.string())])


def reject_schema(settings: OutputSettings) -> pa.Schema:
    """The rejects schema of an output: scores typed as in its manifests."""
    fields = list(REJECT_SCHEMA)
    return pa.schema(fields[:-1] + [pa.field(n, t) for n, t in _scores(settings)] + fields[-1:],
                     metadata=_metadata(settings))


def _metadata(settings: OutputSettings) -> dict[bytes, bytes]:
    return {_META_VERSION: str(FORMAT_VERSION).encode(), _META_SCORES: json.dumps(list(settings.metrics)).encode()}


def index_schema(settings: OutputSettings) -> pa.Schema:
    """The clip index schema of an output whose pipeline writes ``settings.metrics``."""
    i64, f64, s = pa.int64(), pa.float64(), pa.string()
    return pa.schema([
        ("key", s), ("pipeline", s), ("index_hash", s), ("format_version", i64), ("datakit_version", s),
        ("source_uri", s), ("source_id", s), ("source_clips", i64), ("scene", i64),
        ("start_frame", i64), ("end_frame", i64), ("num_frames", i64), ("fps", f64), ("start_time", f64),
        ("source", SOURCE), ("hr", MEDIA),
        *_scores(settings),
        ("filter", FILTER), ("caption", s), ("caption_source", s), ("stage", s), ("reason", s),
        ("json", s),
    ], metadata=_metadata(settings))


def declared_columns(uri: str) -> pa.Schema:
    """The columns every manifest (or, under ``rejects/`` or ``index/``, every rejects or index
    file) has, whatever the pipeline's score names."""
    if f"/{REJECTS}/" in uri:
        return REJECT_SCHEMA
    if f"/{INDEX}/" in uri:
        return index_schema(OutputSettings(root="", prefix="", config_hash="", pipeline="", task=""))
    return manifest_schema(OutputSettings(root="", prefix="", config_hash="", pipeline="", task=""))


def format_version_of(schema: pa.Schema) -> int | None:
    """The format version a manifest or rejects file declares (None: not written by format 2+)."""
    v = (schema.metadata or {}).get(_META_VERSION)
    return int(v) if v is not None and v.isdigit() else None


# -------------------------------------------------------------- rows → tables

def sample_json_bytes(doc: dict) -> bytes:
    """The sample's ``json`` member: the exact bytes the tar holds and the ``json`` column keeps."""
    return json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")


def manifest_table(rows: list[dict], settings: OutputSettings) -> pa.Table:
    """Manifest rows (sample json docs plus ``caption``, ``shard``, ``members``) as a table."""
    schema = manifest_schema(settings)
    cols = {f.name: [] for f in schema}
    for row in rows:
        doc = {k: v for k, v in row.items() if k not in SHARD_FIELDS and k != "json"}
        view = _summaries(doc)
        view.update({k: row.get(k) for k in SHARD_FIELDS})
        text = row.get("json")
        view["json"] = text if isinstance(text, str) else sample_json_bytes(doc).decode("utf-8")
        for f in schema:
            cols[f.name].append(coerce(view.get(f.name), f.type))
    return pa.Table.from_pydict(cols, schema=schema)


def reject_table(rows: list[dict], settings: OutputSettings) -> pa.Table:
    """Reject rows (key, source fields, stage, reason, detail and ``json``: the record's meta,
    as text or a dict; ``scores`` taken from the row, else from that meta) as a table."""
    schema = reject_schema(settings)
    cols = {f.name: [] for f in schema}
    for row in rows:
        row = dict(row)
        meta = row.get("json")
        if isinstance(meta, dict):
            row["json"] = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)
        elif isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                meta = {}
        if row.get("scores") is None and isinstance(meta, dict):
            row["scores"] = meta.get("scores")
        for f in schema:
            cols[f.name].append(coerce(row.get(f.name), f.type))
    return pa.Table.from_pydict(cols, schema=schema)


def index_table(rows: list[dict], settings: OutputSettings) -> pa.Table:
    """Clip index rows (the record's meta, plus ``key``, ``stage``, ``reason`` and the identity
    fields; ``json``: the meta as text) as a table."""
    schema = index_schema(settings)
    cols = {f.name: [] for f in schema}
    for row in rows:
        view = _summaries(row)
        for f in schema:
            cols[f.name].append(coerce(view.get(f.name), f.type))
    return pa.Table.from_pydict(cols, schema=schema)


def _summaries(doc: dict) -> dict:
    """The typed view of a sample json: summaries of nested entries, media with the clip's fps."""
    view = dict(doc)
    for m in ("hr", "lr", "ref", "mask"):
        if isinstance(view.get(m), dict):
            view[m] = {"fps": doc.get("fps"), **view[m]}
    degs = doc.get("degradations")
    if isinstance(degs, list):
        view["degradations"] = [_degradation(d) for d in degs if isinstance(d, dict)]
    refs = doc.get("refs")
    if isinstance(refs, dict):
        seg, frame = refs.get("segmenter"), refs.get("frame")
        view["refs"] = {**refs, "backend": seg.get("backend") if isinstance(seg, dict) else seg,
                        "frame_index": frame.get("index") if isinstance(frame, dict) else None}
    return view


def _degradation(d: dict) -> dict:
    dev = d.get("device")
    return {**d, "backend": dev.get("backend") if isinstance(dev, dict) else None,
            "device": dev.get("device") if isinstance(dev, dict) else dev}


# -------------------------------------------------------------- values → declared types

def coerce(value, typ: pa.DataType):
    """``value`` as a Python value of Arrow type ``typ``; None where it does not fit."""
    if value is None:
        return None
    if pa.types.is_struct(typ):
        if not isinstance(value, dict):
            return None
        return {typ.field(i).name: coerce(value.get(typ.field(i).name), typ.field(i).type)
                for i in range(typ.num_fields)}
    if pa.types.is_list(typ):
        if not isinstance(value, (list, tuple)):
            return None
        return [coerce(v, typ.value_type) for v in value]
    if pa.types.is_boolean(typ):
        return value if isinstance(value, bool) else None
    if pa.types.is_integer(typ):
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if -(1 << 63) <= value < (1 << 63) else None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if pa.types.is_floating(typ):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)   # NaN and inf stay what they are: a score can be NaN
    if pa.types.is_string(typ):
        return value if isinstance(value, str) else None
    raise TypeError(f"no conversion to {typ}")


