"""Opening an output root for a (re)run: the config check, repairs, and what is already done.

``open_for_run(settings, spec)``:

1. refuses a root that is a file, an output of another format, or one made with another
   config (``meta/config.json``: the hash covers everything that shapes a sample and
   nothing else: not the inputs, the output, Ray, resources or the shard settings);
2. deletes what an interrupted run left (temporary files; tars and reject files whose
   manifest was never written) and every batch the reader's check finds damaged (each
   said in one log line naming the file), so that their work is done again;
3. reads the keys of **every** committed batch, whatever its name prefix (a rerun with
   ``--set shard.prefix=other`` therefore skips what the first prefix wrote), and returns
   the sources that are complete and the clip keys of sources that are not.

At-least-once work upstream, idempotent sinks here: a key is never committed twice.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .. import fsio
from . import check, layout
from .errors import OutputError
from .reader import open_output
from .settings import OutputSettings

log = logging.getLogger("datakit")

#: run-scoped working files (the planned inputs) live here and are removed at the end of a run
PLAN = "plan"

_KEY_COLUMNS = ["key", "source_id", "source_clips"]


@dataclass
class ResumeState:
    """What an output root already holds, read at the start of a run."""

    root: str
    #: every committed key (samples and rejects)
    done_keys: pa.ChunkedArray = field(default_factory=lambda: pa.chunked_array([], pa.string()))
    #: sources with nothing left to do (all their clips committed, or rejected as a whole)
    done_sources: pa.ChunkedArray = field(default_factory=lambda: pa.chunked_array([], pa.string()))
    #: committed clip keys of sources that still have work left (the stages skip these)
    skip_keys: frozenset[str] = frozenset()
    samples: int = 0
    rejects: int = 0
    cleaned: list[str] = field(default_factory=list)     # leftovers removed
    remade: list[str] = field(default_factory=list)      # damaged batches removed (to be made again)

    def is_done(self, source_ids: pa.Array) -> pa.Array:
        """Boolean mask: which of ``source_ids`` are complete."""
        return pc.is_in(source_ids, value_set=self.done_sources.combine_chunks())


def plan_dir(root: str) -> str:
    return fsio.join(root, layout.META, PLAN)


def config_doc(settings: OutputSettings, spec: dict, extra: dict | None = None) -> dict:
    """meta/config.json; ``extra``: what ``curate`` and ``build`` add (``kind``, ``index``)."""
    return {"config_hash": settings.config_hash, "format_version": layout.FORMAT_VERSION, "spec": spec,
            **(extra or {})}


def open_for_run(settings: OutputSettings, spec: dict, extra: dict | None = None) -> ResumeState:
    """Prepare ``settings.root`` for a run of ``spec`` (the resolved spec, as JSON) and read it."""
    root = fsio.normalize(settings.root)
    if fsio.exists(root) and not fsio.is_dir(root):
        raise OutputError(f"--output {root} is a file; give a folder (new, or the output of an earlier run)")
    if not fsio.exists(layout.config_uri(root)) and fsio.exists(fsio.join(root, layout.CONFIG)):
        raise OutputError(f"{root} was written by an older datakit (format 1, config.json at the top); "
                          "write to a new --output")
    fsio.makedirs(fsio.join(root, layout.META))
    if fsio.exists(layout.config_uri(root)):
        old = open_output(root).config        # one-line errors for a damaged or foreign config
        if old.get("config_hash") != settings.config_hash:
            raise OutputError(
                f"{root} was made with a different config (hash {old.get('config_hash')}, now "
                f"{settings.config_hash}); write to a new --output, or rerun with the original spec and --set values")
    else:
        fsio.write_atomic(layout.config_uri(root), json.dumps(config_doc(settings, spec, extra), indent=2).encode())
    for folder in (layout.SHARDS, layout.MANIFESTS, layout.REJECTS) + ((layout.INDEX,) if settings.index else ()):
        fsio.makedirs(fsio.join(root, folder))

    state = ResumeState(root=root)
    _remove_plan(root)
    for p in check.check(root):
        if not p.damaged:
            fsio.delete(p.file)
            state.cleaned.append(p.file.rsplit("/", 1)[-1])
        elif p.batch not in state.remade:
            remove_batch(root, p.batch)
            state.remade.append(p.batch)
            log.warning("%s: %s; its batch %s is removed and made again by this run", p.file, p.reason, p.batch)
        else:
            log.warning("%s: %s", p.file, p.reason)
    if state.cleaned:
        log.warning("removed %d leftovers of an interrupted run: %s", len(state.cleaned),
                    ", ".join(state.cleaned[:5]) + (" ..." if len(state.cleaned) > 5 else ""))
    _read_done(state)
    return state


def read_done(root: str) -> ResumeState:
    """What ``root`` holds now (no checks, nothing removed): e.g. after a run, what is still missing."""
    state = ResumeState(root=fsio.normalize(root))
    _read_done(state)
    return state


def remove_batch(root: str, name: str) -> None:
    """Un-commit a batch (its manifest first), then delete its tar, rejects and index."""
    for uri in (layout.manifest_uri(root, name), layout.tar_uri(root, name), layout.rejects_uri(root, name),
                layout.index_uri(root, name)):
        fsio.delete(uri)


def _remove_plan(root: str) -> None:
    fsio.delete_tree(plan_dir(root))        # a killed run's plan


def _read_done(state: ResumeState) -> None:
    out = open_output(state.root)
    man = [t for _, t in out.manifest_tables(_KEY_COLUMNS)]
    rej = [t for _, t in out.reject_tables(_KEY_COLUMNS)]
    idx = []
    if out.kind == "curate":               # a clip index: its indexed clips are done too
        idx = [t.filter(pc.is_null(t.column("stage"))).select(_KEY_COLUMNS)
                for _, t in out.index_tables(_KEY_COLUMNS + ["stage"])]
    state.samples = sum(t.num_rows for t in man)
    state.rejects = sum(t.num_rows for t in rej)
    tables = [t.select(_KEY_COLUMNS).cast(pa.schema([("key", pa.string()), ("source_id", pa.string()),
                                                     ("source_clips", pa.int64())]))
              for t in man + rej + idx]
    if not tables:
        return
    t = pa.concat_tables(tables)
    state.done_keys = t.column("key")
    whole = pc.equal(t.column("key"), t.column("source_id"))       # a source rejected before split
    sources_whole = t.filter(whole).column("source_id")
    clips = t.filter(pc.invert(whole))
    per = clips.group_by("source_id").aggregate([("key", "count_distinct"), ("source_clips", "max")])
    complete = per.filter(pc.greater_equal(per.column("key_count_distinct"), per.column("source_clips_max")))
    done = pa.concat_arrays([sources_whole.combine_chunks(), complete.column("source_id").combine_chunks()])
    state.done_sources = pa.chunked_array([pc.unique(done)])
    partial = clips.filter(pc.invert(pc.is_in(clips.column("source_id"), value_set=state.done_sources.combine_chunks())))
    state.skip_keys = frozenset(partial.column("key").to_pylist())
