"""Listing a job's inputs: folders, globs, list files and Parquet/CSV manifests.

Each input becomes one source record (key = source id) carrying its URI and, from a
manifest, its caption. Anything with a video extension is listed; whether it really
is a video is for ``probe`` to find out (a broken file becomes a reject, not a crash).

Listing streams: list files and manifests are read a batch at a time, entries are sorted
and made distinct in bounded runs (spilled to a temporary folder and merged when there
are many), and a run's sources are written as Parquet *plan files* that the workers
read (:func:`plan`), so the driver never holds the whole list.
"""
from __future__ import annotations

import heapq
import itertools
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import fsio
from .records import Record, source_id

#: rows read from a manifest at a time
BATCH_ROWS = 8192
#: entries sorted in memory before a sorted run is spilled to disk
RUN_ROWS = 200_000
#: sources per plan file
PLAN_ROWS = 4096

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv",
                    ".wmv", ".3gp", ".y4m", ".mts", ".m2ts", ".ogv"}
LIST_EXTENSIONS = {".txt", ".lst"}
MANIFEST_EXTENSIONS = {".parquet", ".csv"}
URI_COLUMNS = ("uri", "path", "video", "url", "file")
CAPTION_COLUMNS = ("caption", "text", "prompt")


class InputError(ValueError):
    """An input could not be listed (missing path, manifest without a URI column, ...)."""


def _ext(uri: str) -> str:
    name = uri.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def _relative_to(base_uri: str, entry: str) -> str:
    if fsio.is_remote(entry) or entry.startswith("/"):
        return fsio.normalize(entry)
    return fsio.normalize(base_uri.rsplit("/", 1)[0] + "/" + entry)


def _read_manifest(uri: str) -> Iterator[tuple[str, str | None]]:
    """(URI, caption) rows of a Parquet or CSV manifest, read a batch at a time."""
    fs, path = fsio.resolve(uri)
    base = fsio.normalize(uri)
    with fs.open_input_file(path) as f:
        if _ext(uri) == ".parquet":
            pf = pq.ParquetFile(f)
            names_in = pf.schema_arrow.names
            batches = lambda cols: pf.iter_batches(batch_size=BATCH_ROWS, columns=cols)  # noqa: E731
        else:
            reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=1 << 22))
            names_in = reader.schema.names
            batches = lambda cols: (b.select(cols) for b in reader)  # noqa: E731
        names = {n.lower(): n for n in names_in}
        ucol = next((names[c] for c in URI_COLUMNS if c in names), None)
        if ucol is None:
            raise InputError(f"manifest {uri} has no URI column (one of {', '.join(URI_COLUMNS)}); "
                             f"it has {', '.join(names_in)}")
        ccol = next((names[c] for c in CAPTION_COLUMNS if c in names), None)
        for batch in batches([ucol] + ([ccol] if ccol else [])):
            uris = batch.column(0).to_pylist()
            caps = batch.column(1).to_pylist() if ccol else [None] * len(uris)
            for u, c in zip(uris, caps):
                if u:
                    yield _relative_to(base, str(u)), (str(c) if c is not None else None)


def expand(entry: str) -> Iterator[tuple[str, str | None]]:
    """(source URI, manifest caption or None) for one input entry, streamed."""
    if fsio.has_glob(entry):
        found = [u for u in fsio.glob(entry) if _ext(u) in VIDEO_EXTENSIONS]
        if not found:
            raise InputError(f"input {entry!r} matches no video files")
        yield from ((u, None) for u in found)
        return
    uri = fsio.normalize(entry)
    if not fsio.exists(uri):
        raise InputError(f"input {entry!r} does not exist")
    if fsio.is_dir(uri):
        yield from ((u, None) for u in fsio.list_files(uri) if _ext(u) in VIDEO_EXTENSIONS and not fsio.is_tmp(u))
        return
    ext = _ext(uri)
    if ext in MANIFEST_EXTENSIONS:
        yield from _read_manifest(uri)
    elif ext in LIST_EXTENSIONS:
        yield from ((_relative_to(uri, line), None) for line in fsio.iter_lines(uri))
    else:
        yield uri, None


def iter_entries(inputs: list[str]) -> Iterator[tuple[str, str | None]]:
    for entry in inputs:
        yield from expand(entry)


# ---------------------------------------------------------------- sorted, distinct, bounded memory

def _sorted_run(chunk: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """A chunk sorted by URI with one entry per URI (a caption wins over none)."""
    chunk.sort(key=lambda e: (e[0], e[1] is None))
    out: list[tuple[str, str | None]] = []
    for e in chunk:
        if not out or out[-1][0] != e[0]:
            out.append(e)
    return out


def _write_run(run: list[tuple[str, str | None]], path: str) -> None:
    table = pa.table({"uri": [e[0] for e in run], "caption": [e[1] for e in run]},
                     schema=pa.schema([("uri", pa.string()), ("caption", pa.string())]))
    with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table, max_chunksize=BATCH_ROWS)


def _read_run(path: str) -> Iterator[tuple[str, str | None]]:
    with pa.memory_map(path) as f:
        reader = pa.ipc.open_file(f)
        for i in range(reader.num_record_batches):
            b = reader.get_batch(i)
            yield from zip(b.column(0).to_pylist(), b.column(1).to_pylist())


def iter_sources(inputs: list[str], run_rows: int = RUN_ROWS) -> Iterator[tuple[str, str | None]]:
    """Every distinct source URI of ``inputs`` in sorted order, with its manifest caption.

    Entries are sorted ``run_rows`` at a time; more than that are spilled as sorted runs to
    a temporary folder on this machine and merged, so memory stays bounded by ``run_rows``
    however long the list is."""
    runs: list[str] = []
    tmp = None
    chunk: list[tuple[str, str | None]] = []
    try:
        for e in iter_entries(inputs):
            chunk.append(e)
            if len(chunk) >= run_rows:
                if tmp is None:
                    tmp = tempfile.mkdtemp(prefix="datakit-listing-")
                runs.append(os.path.join(tmp, f"run-{len(runs):06d}.arrow"))
                _write_run(_sorted_run(chunk), runs[-1])
                chunk = []
        last = _sorted_run(chunk)
        merged = heapq.merge(*[_read_run(p) for p in runs], iter(last),
                             key=lambda e: (e[0], e[1] is None)) if runs else iter(last)
        prev = None
        for uri, caption in merged:
            if uri != prev:
                prev = uri
                yield uri, caption
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def source_record(uri: str, caption: str | None = None) -> Record:
    meta = {"source_uri": uri, "source_id": source_id(uri)}
    if caption:
        meta["manifest_caption"] = caption
    return Record(key=meta["source_id"], meta=meta)


def list_sources(inputs: list[str], limit: int | None = None) -> list[Record]:
    """One record per distinct source URI, in a stable order (small inputs: held in memory)."""
    return [source_record(u, c) for u, c in itertools.islice(iter_sources(inputs), limit)]


# ---------------------------------------------------------------- the plan of a run

PLAN_SCHEMA = pa.schema([("source_uri", pa.string()), ("source_id", pa.string()), ("manifest_caption", pa.string())])


@dataclass
class Plan:
    """The sources a run works on, as Parquet files that the workers read."""

    files: list[str]        # plan files (PLAN_SCHEMA), in source order
    listed: int             # distinct sources listed (after --limit)
    skipped: int            # of those, complete in the output already

    @property
    def todo(self) -> int:
        return self.listed - self.skipped


def plan(inputs: list[str], dest: str, limit: int | None = None, is_done: Callable[[pa.Array], pa.Array] | None = None,
         rows_per_file: int = PLAN_ROWS, on_listed: Callable[[int], None] | None = None,
         run_rows: int = RUN_ROWS) -> Plan:
    """List ``inputs`` into plan files under ``dest`` (a folder any worker can read), leaving out
    sources ``is_done`` marks; memory stays bounded however many inputs there are."""
    fsio.makedirs(dest)
    files: list[str] = []
    listed = skipped = 0
    buf: list[tuple[str, str | None]] = []

    def flush() -> None:
        nonlocal skipped
        if not buf:
            return
        uris = [u for u, _ in buf]
        table = pa.table({"source_uri": uris, "source_id": [source_id(u) for u in uris],
                          "manifest_caption": [c for _, c in buf]}, schema=PLAN_SCHEMA)
        if is_done is not None:
            done = is_done(table.column("source_id").combine_chunks())
            skipped += pc.sum(done).as_py() or 0
            table = table.filter(pc.invert(done))
        if table.num_rows:
            uri = fsio.join(dest, f"part-{len(files):06d}.parquet")
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            fsio.write_atomic(uri, sink.getvalue().to_pybytes())
            files.append(uri)
        if on_listed is not None:
            on_listed(len(buf))
        buf.clear()

    for entry in itertools.islice(iter_sources(inputs, run_rows), limit):
        buf.append(entry)
        listed += 1
        if len(buf) >= rows_per_file:
            flush()
    flush()
    return Plan(files=files, listed=listed, skipped=skipped)


def read_plan(uri: str) -> list[Record]:
    """The source records of one plan file."""
    fs, path = fsio.resolve(uri)
    t = pq.read_table(path, filesystem=fs)
    return [Record(key=sid, meta={"source_uri": u, "source_id": sid, **({"manifest_caption": c} if c else {})})
            for u, sid, c in zip(*(t.column(n).to_pylist() for n in PLAN_SCHEMA.names))]
