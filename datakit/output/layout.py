"""Where each file of an output root lives (format version 2).

::

    ROOT/meta/config.json             the resolved spec, its hash and the format version
    ROOT/meta/summary.json            counts, rejects by reason, timings (rewritten by each run)
    ROOT/shards/NAME.tar              WebDataset samples of one committed batch
    ROOT/rejects/NAME.parquet         reject rows of the same batch
    ROOT/index/NAME.parquet           clip index rows of the same batch: every clip that was
                                      scored, kept or not (``datakit curate``, and ``run`` with
                                      a score stage; see docs/FORMAT.md)
    ROOT/manifests/NAME.parquet       one row per sample of the batch; written last: its
                                      presence is what commits the batch (tar, rejects, index)

``NAME`` is ``PREFIX-ID``: ``ID`` is derived from the batch's keys, so two attempts at the
same batch claim the same name (and write the same bytes), and no two different batches
share one. Each folder holds one kind of file, so a plain glob of it reads one kind of row.
"""
from __future__ import annotations

import hashlib
import re

from .. import fsio

FORMAT_VERSION = 2

META, SHARDS, MANIFESTS, REJECTS = "meta", "shards", "manifests", "rejects"
INDEX = "index"
CONFIG, SUMMARY = "config.json", "summary.json"

#: PREFIX-ID, where ID is 16 hex digits
NAME_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9_-]+?)-(?P<id>[0-9a-f]{16})$")


def batch_name(prefix: str, keys: list[str]) -> str:
    """The name of the batch holding ``keys`` (order does not matter)."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


def config_uri(root: str) -> str:
    return fsio.join(root, META, CONFIG)


def summary_uri(root: str) -> str:
    return fsio.join(root, META, SUMMARY)


def tar_uri(root: str, name: str) -> str:
    return fsio.join(root, SHARDS, name + ".tar")


def manifest_uri(root: str, name: str) -> str:
    return fsio.join(root, MANIFESTS, name + ".parquet")


def rejects_uri(root: str, name: str) -> str:
    return fsio.join(root, REJECTS, name + ".parquet")


def index_uri(root: str, name: str) -> str:
    return fsio.join(root, INDEX, name + ".parquet")


def name_of(uri: str) -> str | None:
    """``NAME`` of a shard, manifest or rejects file; None for anything else."""
    base = uri.rsplit("/", 1)[-1]
    stem, _, ext = base.rpartition(".")
    return stem if ext in ("tar", "parquet") and NAME_RE.match(stem) else None
