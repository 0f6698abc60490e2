"""The one reader of an output root (format version 2).

``open_output(root)`` checks that the folder is a datakit output of this format and
gives an :class:`Output`: its config, the committed batches, their manifests and rejects
(streamed file by file, row group by row group, with column projection) and the samples'
members, read by range from the shard tars and checked against their sha256.

A batch is committed when its manifest exists (the writer writes it last); tars and
reject files of batches without a manifest are leftovers of an interrupted run and are
never read. Every damaged file raises :class:`CorruptFile`, one line naming the file
and what to do.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from .. import fsio
from . import layout, parquet
from .errors import CorruptFile, NotAnOutput
from .schema import declared_columns, format_version_of

#: how to point a command at an output root
_WHAT = "give the --output folder of a `datakit run`"


@dataclass(frozen=True)
class Output:
    root: str
    config: dict          # meta/config.json: config_hash, format_version, spec

    @property
    def spec(self) -> dict:
        return self.config.get("spec") or {}

    # ---------------------------------------------------------------- files

    def batches(self) -> list[str]:
        """Names of the committed batches, sorted."""
        return committed_batches(self.root)

    def manifest_uris(self) -> list[str]:
        return [layout.manifest_uri(self.root, n) for n in self.batches()]

    def rejects_uris(self) -> list[str]:
        """Reject files of committed batches."""
        done = set(self.batches())
        return [u for u in fsio.list_files(fsio.join(self.root, layout.REJECTS), recursive=False)
                if layout.name_of(u) in done and u.endswith(".parquet")]

    def index_uris(self) -> list[str]:
        """Clip index files of committed batches."""
        done = set(self.batches())
        return [u for u in fsio.list_files(fsio.join(self.root, layout.INDEX), recursive=False)
                if layout.name_of(u) in done and u.endswith(".parquet")]

    @property
    def kind(self) -> str:
        """``run``, ``curate`` (a clip index only) or ``build`` (made from an index)."""
        return self.config.get("kind") or "run"

    def summary(self) -> dict | None:
        """meta/summary.json as the last run wrote it (None before a run finished)."""
        uri = layout.summary_uri(self.root)
        if not fsio.exists(uri):
            return None
        try:
            return json.loads(fsio.read_text(uri))
        except ValueError:
            raise CorruptFile(uri, "not valid JSON") from None

    # ---------------------------------------------------------------- rows

    def manifest_tables(self, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
        """(batch name, table) per committed manifest, columns projected."""
        for uri in self.manifest_uris():
            yield layout.name_of(uri), _table(uri, columns)

    def manifest_rows(self, columns: list[str] | None = None) -> Iterator[dict]:
        """Manifest rows, streamed (typed columns; ``sample_doc(row)`` gives the exact json)."""
        for uri in self.manifest_uris():
            yield from file_rows(uri, columns)

    def sample_rows(self) -> Iterator[dict]:
        """Each committed sample's exact json plus its ``caption``, ``shard`` and ``members``."""
        for uri in self.manifest_uris():
            for r in file_rows(uri, ["key", "caption", "shard", "members", "json"]):
                yield {**sample_doc(r, uri), "caption": r["caption"], "shard": r["shard"], "members": r["members"]}

    def reject_tables(self, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
        for uri in self.rejects_uris():
            yield layout.name_of(uri), _table(uri, columns)

    def reject_rows(self, columns: list[str] | None = None) -> Iterator[dict]:
        """Reject rows, streamed (``reject_meta(row)`` gives the record's metadata)."""
        for uri in self.rejects_uris():
            yield from file_rows(uri, columns)

    def index_tables(self, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
        """(batch name, table) per committed clip index file, columns projected."""
        for uri in self.index_uris():
            yield layout.name_of(uri), _table(uri, columns)

    def index_rows(self, columns: list[str] | None = None) -> Iterator[dict]:
        """Clip index rows, streamed (``reject_meta(row)`` gives the record's metadata)."""
        for uri in self.index_uris():
            yield from file_rows(uri, columns)

    def count_samples(self) -> int:
        """Samples in the committed manifests, from their footers."""
        return sum(parquet.open_file(u).metadata.num_rows for u in self.manifest_uris())

    # ---------------------------------------------------------------- members

    def tar_uri(self, shard: str) -> str:
        return layout.tar_uri(self.root, shard)

    def read_members(self, row: dict, names: Iterable[str] | None = None) -> dict[str, bytes]:
        """Members of the sample of manifest ``row`` (all, or ``names``), by range, checked."""
        members = {m["name"]: m for m in row.get("members") or []}
        want = list(members) if names is None else list(names)
        for n in want:
            if n not in members:
                raise KeyError(f"sample {row.get('key')} has no member {n!r} (it has {', '.join(members)})")
        return read_ranges(self.tar_uri(row["shard"]), row["key"], [members[n] for n in want])

    def samples(self, names: Iterable[str] | None = None,
                columns: list[str] | None = None) -> Iterator[tuple[dict, dict[str, bytes]]]:
        """(manifest row, members) of every committed sample, one open tar per batch."""
        names = list(names) if names is not None else None
        cols = None if columns is None else sorted(set(columns) | {"key", "shard", "members"})
        for uri in self.manifest_uris():
            rows = list(file_rows(uri, cols))
            if not rows:
                continue
            tar = self.tar_uri(rows[0]["shard"])
            with RangeReader(tar) as rr:
                for row in rows:
                    ms = {m["name"]: m for m in row["members"]}
                    pick = ms.values() if names is None else [ms[n] for n in names if n in ms]
                    yield row, {m["name"]: rr.read(row["key"], m) for m in pick}


# -------------------------------------------------------------------- opening

def open_output(root: str) -> Output:
    """The output at ``root``; NotAnOutput (one line: the path and the fix) if it is none."""
    root = fsio.normalize(root)
    if not fsio.exists(root):
        raise NotAnOutput(f"{root} is not a datakit output (no such folder); {_WHAT}")
    if not fsio.is_dir(root):
        raise NotAnOutput(f"{root} is not a datakit output (it is a file); {_WHAT}")
    cfg_uri = layout.config_uri(root)
    if not fsio.exists(cfg_uri):
        if fsio.exists(fsio.join(root, layout.CONFIG)):
            raise NotAnOutput(f"{root} was written by an older datakit (format 1, config.json at the top); "
                              "rebuild it with `datakit run` into a new --output")
        raise NotAnOutput(f"{root} is not a datakit output (no {layout.META}/{layout.CONFIG}); {_WHAT}")
    try:
        cfg = json.loads(fsio.read_text(cfg_uri))
    except (ValueError, UnicodeDecodeError):
        raise CorruptFile(cfg_uri, "not valid JSON",
                          "restore it, or rebuild the output with `datakit run` into a new --output") from None
    if not isinstance(cfg, dict):
        raise CorruptFile(cfg_uri, "not a JSON object",
                          "restore it, or rebuild the output with `datakit run` into a new --output")
    version = cfg.get("format_version")
    if version != layout.FORMAT_VERSION:
        raise NotAnOutput(f"{root} has output format {version}, this datakit reads format "
                          f"{layout.FORMAT_VERSION}; rebuild it with `datakit run` into a new --output")
    return Output(root=root, config=cfg)


def committed_batches(root: str) -> list[str]:
    """Names of the batches whose manifest exists (the commit point), sorted."""
    uris = fsio.list_files(fsio.join(fsio.normalize(root), layout.MANIFESTS), recursive=False)
    return sorted(n for u in uris if u.endswith(".parquet") and (n := layout.name_of(u)) is not None)


def batch_keys(root: str) -> Iterator[tuple[str, str, str | None, int | None]]:
    """(batch, key, source_id, source_clips) of every committed sample and reject row, streamed
    with only those columns read (what resume needs to skip finished work)."""
    root = fsio.normalize(root)
    cols = ["key", "source_id", "source_clips"]
    rejects = {layout.name_of(u) for u in fsio.list_files(fsio.join(root, layout.REJECTS), recursive=False)}
    for name in committed_batches(root):
        uris = [layout.manifest_uri(root, name)] + ([layout.rejects_uri(root, name)] if name in rejects else [])
        for uri in uris:
            for batch in parquet.iter_batches(uri, _project(uri, cols)):
                d = batch.to_pydict()
                none = [None] * batch.num_rows
                for key, sid, n in zip(d["key"], d.get("source_id", none), d.get("source_clips", none)):
                    yield name, key, sid, n


# -------------------------------------------------------------------- rows and docs

def sample_doc(row: dict, uri: str = "manifest") -> dict:
    """The sample's json (exact) from a manifest row's ``json`` column."""
    try:
        doc = json.loads(row["json"])
    except (TypeError, ValueError, KeyError):
        raise CorruptFile(uri, f"the json column of sample {row.get('key')} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise CorruptFile(uri, f"the json column of sample {row.get('key')} is not a JSON object")
    return doc


def reject_meta(row: dict) -> dict:
    """The metadata a reject row recorded (``{}`` when it has none)."""
    try:
        doc = json.loads(row.get("json") or "{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _project(uri: str, columns: list[str] | None) -> list[str] | None:
    """``columns`` present in the file (a column of a newer schema may be absent, e.g. ``scores``)."""
    if columns is None:
        return None
    have = set(parquet.open_file(uri).schema_arrow.names)
    return [c for c in columns if c in have]


def _check_version(uri: str, schema: pa.Schema) -> None:
    """The file declares format 2 and has every column of its kind with the declared type."""
    want = declared_columns(uri)
    bad = [f.name for f in want if schema.get_field_index(f.name) < 0
           or not schema.field(f.name).type.equals(f.type)]
    if format_version_of(schema) != layout.FORMAT_VERSION or bad:
        kind = ("rejects file" if f"/{layout.REJECTS}/" in uri else
                "index file" if f"/{layout.INDEX}/" in uri else "manifest")
        raise CorruptFile(uri, f"not a format {layout.FORMAT_VERSION} {kind}"
                               + (f" (column {', '.join(bad[:3])} missing or of another type)" if bad else ""))


def _table(uri: str, columns: list[str] | None) -> pa.Table:
    f = parquet.open_file(uri)
    _check_version(uri, f.schema_arrow)
    return parquet.read(uri, _project(uri, columns))


def file_rows(uri: str, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of one manifest or rejects file, streamed."""
    _check_version(uri, parquet.open_file(uri).schema_arrow)
    for batch in parquet.iter_batches(uri, _project(uri, columns)):
        yield from batch.to_pylist()


# -------------------------------------------------------------------- range reads

class RangeReader:
    """Reads members of one tar by (offset, size), checking size and sha256."""

    def __init__(self, uri: str):
        self.uri = uri
        fs, path = fsio.resolve(uri)
        try:
            self.f = fs.open_input_file(path)
        except FileNotFoundError:
            raise CorruptFile(uri, "missing (its manifest is committed)") from None
        self.size = self.f.size()

    def read(self, key: str, member: dict) -> bytes:
        off, n = member["offset"], member["size"]
        if off is None or n is None or off + n > self.size:
            raise CorruptFile(self.uri, f"truncated: member {key}.{member['name']} ends past the file's "
                                        f"{self.size} bytes")
        data = self.f.read_at(n, off)
        if len(data) != n or hashlib.sha256(data).hexdigest() != member["sha256"]:
            raise CorruptFile(self.uri, f"member {key}.{member['name']} does not match its manifest's sha256")
        return data

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_ranges(tar_uri: str, key: str, members: list[dict]) -> dict[str, bytes]:
    """Members (manifest member rows) of sample ``key`` from ``tar_uri``, checked."""
    with RangeReader(tar_uri) as rr:
        return {m["name"]: rr.read(key, m) for m in members}
