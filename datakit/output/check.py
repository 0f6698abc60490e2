"""What is wrong with an output root, batch by batch, without decoding any media.

``check(root)`` lists :class:`Problem` s: leftovers of an interrupted run (temporary
files, tars or reject files of batches that were never committed) and damaged committed
batches (a manifest or rejects file that does not read back, a missing or truncated tar,
a ``json`` column that does not match the json member's sha256; with ``deep`` every
member's sha256). Resume deletes what it names; ``verify`` prints it.
"""
from __future__ import annotations

import hashlib

from .. import fsio
from . import layout
from .errors import CorruptFile, Problem
from .reader import RangeReader, committed_batches, file_rows

_MANIFEST_COLUMNS = ("key", "shard", "members", "json")


def check(root: str, deep: bool = False) -> list[Problem]:
    root = fsio.normalize(root)
    done = set(committed_batches(root))
    problems = _leftovers(root, done)
    rejects = {layout.name_of(u) for u in fsio.list_files(fsio.join(root, layout.REJECTS), recursive=False)}
    index = {layout.name_of(u) for u in fsio.list_files(fsio.join(root, layout.INDEX), recursive=False)}
    for name in sorted(done):
        problems += check_batch(root, name, name in rejects, deep, name in index)
    return problems


def _leftovers(root: str, done: set[str]) -> list[Problem]:
    out = []
    for folder in (layout.META, layout.SHARDS, layout.MANIFESTS, layout.REJECTS, layout.INDEX):
        for uri in fsio.list_files(fsio.join(root, folder), recursive=False):
            base = uri.rsplit("/", 1)[-1]
            if fsio.is_tmp(uri):
                name = layout.name_of(base.split(".tmp-", 1)[0]) or ""
                out.append(Problem(name, uri, "temporary file left by an interrupted run", damaged=False))
            elif folder in (layout.SHARDS, layout.REJECTS, layout.INDEX) and (name := layout.name_of(uri)) and name not in done:
                out.append(Problem(name, uri, "batch never committed (no manifest): left by an interrupted run",
                                   damaged=False))
    return out


def check_batch(root: str, name: str, has_rejects: bool, deep: bool = False, has_index: bool = False) -> list[Problem]:
    """Problems of one committed batch (empty when it reads back whole)."""
    man = layout.manifest_uri(root, name)
    try:
        rows = _manifest_rows(man)
    except CorruptFile as e:
        return [Problem(name, man, e.reason)]
    out = []
    if has_rejects:
        uri = layout.rejects_uri(root, name)
        try:
            list(file_rows(uri))
        except CorruptFile as e:
            out.append(Problem(name, uri, e.reason))
    if has_index:
        uri = layout.index_uri(root, name)
        try:
            for _ in file_rows(uri, ["key"]):
                pass
        except CorruptFile as e:
            out.append(Problem(name, uri, e.reason))
    if rows:
        out += _check_tar(layout.tar_uri(root, name), name, rows, deep)
    return out


def _manifest_rows(uri: str) -> list[dict]:
    rows = [{c: r[c] for c in _MANIFEST_COLUMNS} for r in file_rows(uri)]
    for r in rows:
        js = {m["name"]: m for m in r["members"] or []}.get("json")
        text = r["json"]
        if js is None or text is None or hashlib.sha256(text.encode("utf-8")).hexdigest() != js["sha256"]:
            raise CorruptFile(uri, f"the json column of sample {r['key']} does not match its json member")
    return rows


def _check_tar(uri: str, name: str, rows: list[dict], deep: bool) -> list[Problem]:
    if not fsio.exists(uri):
        return [Problem(name, uri, "missing (its manifest is committed)")]
    size = fsio.size(uri)
    end = max((m["offset"] or 0) + (m["size"] or 0) for r in rows for m in r["members"] or [])
    if end > size:
        return [Problem(name, uri, f"truncated: {size} bytes, its samples need {end}")]
    if deep:
        with RangeReader(uri) as rr:
            for r in rows:
                for m in r["members"] or []:
                    try:
                        rr.read(r["key"], m)
                    except CorruptFile as e:
                        return [Problem(name, uri, e.reason)]
    return []
