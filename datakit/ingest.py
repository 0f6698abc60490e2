"""Listing a job's inputs: folders, globs, list files and Parquet/CSV manifests.

Each input becomes one source record (key = source id) carrying its URI and, from a
manifest, its caption. Anything with a video extension is listed; whether it really
is a video is for ``probe`` to find out (a broken file becomes a reject, not a crash).
"""
from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import fsio
from .records import Record, source_id

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


def _read_manifest(uri: str) -> list[tuple[str, str | None]]:
    fs, path = fsio.resolve(uri)
    if _ext(uri) == ".parquet":
        table = pq.read_table(path, filesystem=fs)
    else:
        with fs.open_input_stream(path) as f:
            table = pacsv.read_csv(f)
    names = {n.lower(): n for n in table.column_names}
    ucol = next((names[c] for c in URI_COLUMNS if c in names), None)
    if ucol is None:
        raise InputError(f"manifest {uri} has no URI column (one of {', '.join(URI_COLUMNS)}); "
                         f"it has {', '.join(table.column_names)}")
    ccol = next((names[c] for c in CAPTION_COLUMNS if c in names), None)
    uris = table.column(ucol).to_pylist()
    caps = table.column(ccol).to_pylist() if ccol else [None] * len(uris)
    return [(_relative_to(fsio.normalize(uri), str(u)), c) for u, c in zip(uris, caps) if u]


def expand(entry: str) -> list[tuple[str, str | None]]:
    """(source URI, manifest caption or None) for one input entry."""
    if fsio.has_glob(entry):
        found = [u for u in fsio.glob(entry) if _ext(u) in VIDEO_EXTENSIONS]
        if not found:
            raise InputError(f"input {entry!r} matches no video files")
        return [(u, None) for u in found]
    uri = fsio.normalize(entry)
    if not fsio.exists(uri):
        raise InputError(f"input {entry!r} does not exist")
    if fsio.is_dir(uri):
        return [(u, None) for u in fsio.list_files(uri) if _ext(u) in VIDEO_EXTENSIONS and not fsio.is_tmp(u)]
    ext = _ext(uri)
    if ext in MANIFEST_EXTENSIONS:
        return _read_manifest(uri)
    if ext in LIST_EXTENSIONS:
        return [(_relative_to(uri, line), None) for line in fsio.iter_lines(uri)]
    return [(uri, None)]


def list_sources(inputs: list[str], limit: int | None = None) -> list[Record]:
    """One record per distinct source URI, in a stable order."""
    seen: dict[str, str | None] = {}
    for entry in inputs:
        for uri, caption in expand(entry):
            if uri not in seen or (caption and not seen[uri]):
                seen[uri] = caption
    uris = sorted(seen)
    if limit is not None:
        uris = uris[:limit]
    records = []
    for uri in uris:
        meta = {"source_uri": uri, "source_id": source_id(uri)}
        if seen[uri]:
            meta["manifest_caption"] = seen[uri]
        records.append(Record(key=meta["source_id"], meta=meta))
    return records
