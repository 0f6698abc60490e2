"""Everything the report reads from an output root, turned into plain Python rows.

The pages, charts and tables are built from :class:`ClipRow` and :class:`OutputView`
alone, and this module reads them through :mod:`datakit.output.reader`: kept samples from
the committed manifests (their members by range from the shard tars), rejected clips and
sources from the reject files, whose ``json`` column holds the record's metadata at the
time, scores included.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import summary
from ..output.reader import Output, RangeReader, reject_meta
from ..output.reader import open_output as open_root
from ..scoring.profiles import Rule

KEPT, REJECTED = "kept", "rejected"


@dataclass
class ClipRow:
    """One clip (or one source rejected before it was split) as the report shows it."""

    key: str
    verdict: str                      # KEPT or REJECTED
    stage: str                        # the stage that rejected it; "" for kept samples
    reason: str                       # the reject reason; "" for kept samples
    detail: str
    task: str
    source_uri: str
    start_frame: int | None
    end_frame: int | None
    caption: str
    scores: dict[str, float]          # numeric scores only
    doc: dict                         # the sample json (kept) or the reject's metadata json
    shard: str = ""                   # kept samples: the shard holding the media

    @property
    def source_name(self) -> str:
        return (self.source_uri or "").rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_source(self) -> bool:
        """A whole source rejected before it was cut into clips."""
        return self.key == self.doc.get("source_id") or self.start_frame is None


@dataclass
class OutputView:
    output: Output
    summary: dict
    rules: list[Rule] = field(default_factory=list)   # the filter stages' rules, in order

    @property
    def root(self) -> str:
        return self.output.root


def _numeric(scores: dict | None) -> dict[str, float]:
    return {k: float(v) for k, v in (scores or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}


def filter_rules(config: dict | None) -> list[Rule]:
    """The rules of every filter stage in a run's resolved spec (config.json stores them inline)."""
    out: list[Rule] = []
    for st in (config or {}).get("stages", []):
        if st.get("stage") == "filter":
            out += [Rule.model_validate(r) for r in st.get("rules") or []]
    return out


def open_output(root: str) -> OutputView:
    out = open_root(root)
    summ = summary.build(out)
    return OutputView(output=out, summary=summ, rules=filter_rules(summ.get("config")))


def iter_kept(view: OutputView) -> Iterator[ClipRow]:
    """Every sample in the committed batches, in batch order."""
    for doc in view.output.sample_rows():
        yield ClipRow(key=doc["key"], verdict=KEPT, stage="", reason="", detail="",
                      task=doc.get("task") or "", source_uri=doc.get("source_uri") or "",
                      start_frame=doc.get("start_frame"), end_frame=doc.get("end_frame"),
                      caption=doc.get("caption") or "", scores=_numeric(doc.get("scores")), doc=doc,
                      shard=doc["shard"] or "")


def iter_rejected(view: OutputView) -> Iterator[ClipRow]:
    """Every reject row, with the metadata its ``json`` column recorded."""
    task = (view.summary.get("config") or {}).get("task") or ""
    for r in view.output.reject_rows():
        doc = reject_meta(r)
        yield ClipRow(key=r["key"], verdict=REJECTED, stage=r.get("stage") or "", reason=r.get("reason") or "",
                      detail=r.get("detail") or "", task=doc.get("task") or task,
                      source_uri=r.get("source_uri") or "", start_frame=r.get("start_frame"),
                      end_frame=r.get("end_frame"), caption=str(doc.get("caption") or ""),
                      scores=_numeric(doc.get("scores")), doc=doc)


def read_members(view: OutputView, rows: list[ClipRow]) -> Iterator[tuple[ClipRow, dict[str, bytes]]]:
    """``(row, {member name: bytes})`` of kept samples, by range, one open tar per batch."""
    by_shard: dict[str, list[ClipRow]] = {}
    for r in rows:
        by_shard.setdefault(r.shard, []).append(r)
    for shard, items in by_shard.items():
        with RangeReader(view.output.tar_uri(shard)) as rr:
            for r in items:
                yield r, {m["name"]: rr.read(r.key, m) for m in r.doc.get("members") or []}
