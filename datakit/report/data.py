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
from ..curation import PLAN_ROWS, CurationError, Verdicts, own_filter, profile_filter
from ..output.reader import Output, RangeReader, reject_meta
from ..output.reader import open_output as open_root
from ..scoring.profiles import Rule
from .fmt import rule_label

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


# ---------------------------------------------------------------- a clip index seen through a profile

#: index columns the profile view reads (``scores`` is absent when the pipeline scores nothing)
INDEX_COLUMNS = ["key", "source_uri", "start_frame", "end_frame", "start_time", "fps", "num_frames", "caption",
                 "scores", "source", "hr"]


@dataclass
class RuleCount:
    """One rule of a profile over a clip index (a row of the report's rule table)."""

    name: str
    metric: str
    threshold: str                    # e.g. "sharpness ≥ 90"
    failing: int = 0                  # clips failing this rule (and maybe others)
    only: int = 0                     # clips failing this rule alone
    kept_so_far: int = 0              # clips passing this rule and every rule above it


@dataclass
class IndexView:
    """A clip index with the verdicts of one profile (the code ``datakit build`` plans with)."""

    output: Output
    verdicts: Verdicts
    task: str

    @property
    def root(self) -> str:
        return self.output.root

    @property
    def rules(self) -> list[Rule]:
        return self.verdicts.rules

    @property
    def profile(self) -> str:
        return self.verdicts.profile


def open_index_view(root: str, profile: str | None = None) -> IndexView:
    """The clip index at ``root`` judged by ``profile`` (default: the profile it was curated with).

    Raises ``CurationError`` (no index, no filter) or ``ProfileError`` (the profile file), one line each.
    """
    out = open_root(root)
    if not isinstance(out.config.get("index"), dict) or not out.index_uris():
        raise CurationError(f"{out.root} holds no clip index (made without a score stage, or nothing was scored "
                            "yet); make one with `datakit curate SPEC --output DIR`")
    filt = profile_filter(profile) if profile is not None else own_filter(out)
    return IndexView(output=out, verdicts=Verdicts(filt), task=out.spec.get("task") or "")


def iter_indexed(view: IndexView) -> Iterator[tuple[ClipRow, list[str]]]:
    """``(clip, names of the rules it fails)`` of every index row, the verdict being the profile's."""
    for _, table in view.output.index_tables(INDEX_COLUMNS):
        for batch in table.to_batches(PLAN_ROWS):
            rows = batch.to_pylist()
            verdicts = view.verdicts([r["key"] for r in rows], [r.get("scores") for r in rows])
            for r, v in zip(rows, verdicts):
                failed = list(v["failed"])
                doc = {"source": r.get("source") or {}, "hr": r.get("hr") or {}, "fps": r.get("fps"),
                       "start_time": r.get("start_time"), "num_frames": r.get("num_frames"),
                       "scores": _numeric(r.get("scores")), "filter": v}
                yield ClipRow(key=r["key"], verdict=KEPT if v["passed"] else REJECTED,
                              stage="" if v["passed"] else "filter", reason=failed[0] if failed else "",
                              detail=", ".join(failed), task=view.task, source_uri=r.get("source_uri") or "",
                              start_frame=r.get("start_frame"), end_frame=r.get("end_frame"),
                              caption=r.get("caption") or "", scores=doc["scores"], doc=doc), failed


class RuleTally:
    """Per-rule counts of a profile's verdicts, added clip by clip."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.clips = self.kept = 0
        self.failing = [0] * len(rules)
        self.only = [0] * len(rules)
        self.first = [0] * len(rules)            # clips whose first failing rule is rule i

    def add(self, failed: list[str]) -> None:
        self.clips += 1
        self.kept += not failed
        at = [i for i, r in enumerate(self.rules) if r.name in failed]
        for i in at:
            self.failing[i] += 1
        if len(at) == 1:
            self.only[at[0]] += 1
        if at:
            self.first[at[0]] += 1

    def counts(self) -> list[RuleCount]:
        out, gone = [], 0
        for i, r in enumerate(self.rules):
            gone += self.first[i]
            out.append(RuleCount(r.name, r.metric, rule_label(r.metric, r.min, r.max), self.failing[i], self.only[i],
                                 self.clips - gone))
        return out
