"""URIs and files through ``pyarrow.fs``: local paths, s3://, gs://, hdfs://.

Everything that touches a file system goes through here, so the rest of datakit
speaks in URIs and never cares where the bytes live.
"""
from __future__ import annotations

import fnmatch
import os
import uuid
from typing import BinaryIO, Iterator

import pyarrow.fs as pafs

_GLOB_CHARS = set("*?[")


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def normalize(uri: str) -> str:
    """Canonical form of a URI: absolute local paths, remote URIs unchanged."""
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    if is_remote(uri):
        return uri
    return os.path.abspath(os.path.expanduser(uri))


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a URI or local path."""
    uri = normalize(uri)
    if not is_remote(uri):
        return pafs.LocalFileSystem(), uri
    return pafs.FileSystem.from_uri(uri)


def join(base: str, *parts: str) -> str:
    base = base.rstrip("/")
    return "/".join([base, *[p.strip("/") for p in parts]])


def _rebuild(uri: str, path: str) -> str:
    """Turn a path inside the file system of ``uri`` back into a URI."""
    if not is_remote(uri):
        return path
    scheme = uri.split("://", 1)[0]
    return f"{scheme}://{path}"


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def size(uri: str) -> int:
    fs, path = resolve(uri)
    return fs.get_file_info(path).size or 0


def list_files(uri: str, recursive: bool = True) -> list[str]:
    """Files under a directory URI, sorted."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    return sorted(_rebuild(normalize(uri), i.path) for i in infos if i.type == pafs.FileType.File)


def glob(pattern: str) -> list[str]:
    """Expand a glob over any file system: list the fixed prefix, match the rest."""
    pattern = normalize(pattern)
    prefix_end = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=len(pattern))
    base = pattern[: pattern.rfind("/", 0, prefix_end) + 1] or "."
    recursive = "**" in pattern or "/" in pattern[len(base):]
    candidates = list_files(base, recursive=recursive) if is_dir(base) else []
    fs_pattern = pattern.replace("**/", "*")
    return [c for c in candidates if fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, fs_pattern)]


def has_glob(uri: str) -> bool:
    return any(c in uri for c in _GLOB_CHARS)


def open_input(uri: str) -> BinaryIO | str:
    """Something PyAV and PySceneDetect can open: a path when local, else a seekable file."""
    if not is_remote(uri):
        return normalize(uri)
    fs, path = resolve(uri)
    return fs.open_input_file(path)


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def makedirs(uri: str) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path, recursive=True)


def delete(uri: str) -> None:
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        fs.delete_file(path)


def delete_tree(uri: str) -> None:
    """Delete a directory and everything under it (nothing if it does not exist)."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


def tmp_name(uri: str) -> str:
    """A unique temporary sibling of ``uri``; every such name contains ``.tmp-``."""
    return f"{uri}.tmp-{uuid.uuid4().hex[:12]}"


def is_tmp(uri: str) -> bool:
    return ".tmp-" in uri.rsplit("/", 1)[-1]


def write_atomic(uri: str, data: bytes) -> None:
    """Write to a temporary name, then rename: readers never see a partial file."""
    fs, path = resolve(uri)
    tmp = tmp_name(path)
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)


def open_output_tmp(uri: str) -> tuple[str, BinaryIO]:
    """Open a temporary sibling of ``uri`` for writing; ``commit`` renames it into place."""
    fs, path = resolve(uri)
    tmp = tmp_name(path)
    return _rebuild(normalize(uri), tmp), fs.open_output_stream(tmp)


def commit(tmp_uri: str, final_uri: str) -> None:
    fs, tmp = resolve(tmp_uri)
    _, final = resolve(final_uri)
    fs.move(tmp, final)


def iter_lines(uri: str, chunk: int = 1 << 20) -> Iterator[str]:
    """Non-empty, non-comment lines of a text file, stripped; read a chunk at a time."""
    fs, path = resolve(uri)
    rest = b""
    with fs.open_input_stream(path) as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8").strip()
                if line and not line.startswith("#"):
                    yield line
    line = rest.decode("utf-8").strip()
    if line and not line.startswith("#"):
        yield line
