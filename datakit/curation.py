"""Curate once, build many: a scored clip index, and builds per filter profile without re-scoring.

``curate(spec)`` runs the stages of a pipeline that come before its ``filter`` (probe,
caption, split, extract, captioner, score: ``index_cut``) and the filter itself in ``tag``
mode (the verdict of the spec's own profile is recorded, nothing is rejected), and writes
a **clip index** only: ``ROOT/index/NAME.parquet``, one row per scored clip with its
span, sizes, caption, every score, the verdict and the record's meta (``json``). Rejects
of those stages go to ``rejects/`` as in a run; no shard is written. It resumes like
``run`` (the same output code: a batch is committed by its manifest, here empty).

``build(spec, index, profile)`` reads the index as its plan (no listing, no scorer:
``score`` is not among its stages), applies a profile (``--profile`` or the spec's
``filter``) to the stored scores on the driver, and runs, for the clips it keeps only,
``extract`` again (the HR is decoded from the source span once more) and the stages the
spec places after ``filter`` (refs, SDEdit, synthetic); the writer commits ordinary
samples whose ``filter`` field names the profile that kept them.

A build's config hash leaves the filter out (``PipelineSpec.config_hash(without_filter=True)``)
and covers everything else that shapes a sample's bytes, so building into an existing
build output with a looser profile adds only the newly kept clips (keys already there are
skipped); a profile that would drop samples already written is refused. A ``run`` of a
spec with a score stage writes the same index beside its samples, so every run can be
rebuilt with another profile too.
"""
from __future__ import annotations

import dataclasses
import json
import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import fsio, ingest, runner
from .output import writer
from .output.reader import Output, open_output
from .records import Record
from .runner import Job, RunResult, index_cut, output_settings
from .spec import PipelineSpec
from .stages.filter import Filter, FilterConfig

log = logging.getLogger("datakit")

#: stages a curate may run (they make metadata; ``extract``'s HR is made again by a build)
CURATE_STAGES = ("probe", "caption", "split", "extract", "captioner", "score")
#: stages before the filter whose media a build makes again from the source span
REMADE = ("extract",)
#: index rows read at a time while planning a build
PLAN_ROWS = 4096

#: meta written by the stages a build runs after the filter: dropped from an index row's meta
#: (a ``run``'s index holds finished records) so that every build starts from the curated record
BUILT_META = ("lr", "ref", "mask", "refs", "sdedit", "degradations", "synthetic_models")

PLAN_SCHEMA = pa.schema([("key", pa.string()), ("json", pa.string()), ("filter", pa.string())])


class CurationError(ValueError):
    """A curate or build cannot start; the message is one line naming the file and the fix."""


# ---------------------------------------------------------------- splitting a spec

def cut_of(spec: PipelineSpec) -> int:
    """The number of leading stages a clip index row depends on (see ``runner.index_cut``)."""
    cut = index_cut(spec)
    if cut is None:
        raise CurationError(f"pipeline {spec.name!r} has no score stage, so there is nothing to curate; "
                            "add a `score` stage (and a `filter`) before the stages that make the LR")
    bad = [s.stage for s in spec.stages[:cut] if s.stage not in CURATE_STAGES]
    if bad:
        raise CurationError(f"pipeline {spec.name!r}: stage {bad[0]!r} comes before the filter, but an index keeps "
                            f"no media; move it after `filter` (stages before it may be {', '.join(CURATE_STAGES)})")
    return cut


def curate_spec(spec: PipelineSpec) -> PipelineSpec:
    """The stages a curate runs: those before the filter, then the filter recording verdicts only."""
    cut = cut_of(spec)
    stages = list(spec.stages[:cut])
    stages += [s.model_copy(update={"action": "tag"}) for s in spec.stages if s.stage == "filter"]
    return spec.model_copy(update={"stages": stages})


def profile_filter(profile: str) -> FilterConfig:
    """The filter stage of profile ``profile`` (filters/NAME.yaml or a path); ProfileError names the file."""
    from .scoring import profiles

    prof = profiles.load(profile)
    return FilterConfig(profile=profile, rules=[r.model_dump() for r in prof.rules], profile_name=prof.name)


def own_filter(index: Output) -> FilterConfig:
    """The filter an index was made with: its spec's filter stage, with the rules it recorded."""
    st = next((s for s in index.spec.get("stages") or [] if isinstance(s, dict) and s.get("stage") == "filter"), None)
    if st is None:
        raise CurationError(f"{index.root} was made by a pipeline without a filter stage; "
                            "name the clips to keep with --profile NAME (filters/NAME.yaml)")
    return FilterConfig.model_validate({**st, "action": "reject"})


class Verdicts:
    """A profile applied to stored scores on the driver: what ``build`` plans with and ``inspect`` counts.

    Calling it with keys and their ``scores`` (dicts, None values meaning "not scored") gives
    each clip's ``{"profile", "passed", "failed": [rule names]}``, from the filter stage's own code.
    """

    def __init__(self, filt: FilterConfig):
        self.stage = Filter(filt.model_copy(update={"action": "tag"}))
        self.stage.setup()
        self.rules = self.stage.rules
        self.profile = filt.profile_name or filt.profile

    def __call__(self, keys: list[str], scores: list[dict | None]) -> list[dict]:
        recs = [Record(key=k, meta={"scores": {n: v for n, v in (s or {}).items() if v is not None}})
                for k, s in zip(keys, scores)]
        return [r.meta["filter"] for r in self.stage.process_batch(recs)]


def with_profile(spec: PipelineSpec, profile: str | None) -> tuple[PipelineSpec, FilterConfig]:
    """``spec`` with its filter replaced by ``profile`` (when given), and that filter."""
    if profile is not None:
        filt = profile_filter(profile)          # ProfileError: the file and what is wrong
        stages = [filt if s.stage == "filter" else s for s in spec.stages]
        if "filter" not in spec.stage_names():
            stages.insert(cut_of(spec), filt)
        return spec.model_copy(update={"stages": stages}), filt
    filt = next((s for s in spec.stages if s.stage == "filter"), None)
    if filt is None:
        raise CurationError(f"pipeline {spec.name!r} has no filter stage; say which clips to keep with --profile NAME "
                            "(filters/NAME.yaml)")
    return spec, filt.model_copy(update={"action": "reject"})


def build_stages(spec: PipelineSpec) -> list:
    """The stages a build runs: ``extract`` again, then everything after the filter."""
    cut = cut_of(spec)
    return [s for s in spec.stages[:cut] if s.stage in REMADE] + [s for s in spec.stages[cut:] if s.stage != "filter"]


def index_doc(spec: PipelineSpec) -> dict:
    cut = cut_of(spec)
    return {"hash": spec.index_hash(cut), "stages": spec.stage_names()[:cut]}


# ---------------------------------------------------------------- curate

def curate(spec: PipelineSpec, limit: int | None = None, progress: bool = True, verbose: bool = False) -> RunResult:
    """Write the clip index of ``spec``'s inputs to ``spec.output`` (resumable)."""
    cspec = curate_spec(spec)
    settings = dataclasses.replace(output_settings(spec), mode="curate", index=True,
                                   config_hash=cspec.config_hash())

    def listing(state, plan_dir: str) -> ingest.Plan:
        return ingest.plan(spec.input, plan_dir, limit, is_done=state.is_done if len(state.done_sources) else None)

    return runner.run_job(Job(spec=cspec, settings=settings, config=spec.model_dump(mode="json"), plan=listing,
                              extra={"kind": "curate", "index": index_doc(spec)}), progress, verbose)


# ---------------------------------------------------------------- build

def open_index(uri: str, spec: PipelineSpec) -> Output:
    """The output at ``uri`` if it holds a clip index made by the stages ``spec`` has before its filter."""
    idx = open_output(uri)
    doc = idx.config.get("index")
    if not isinstance(doc, dict) or not doc.get("hash"):
        raise CurationError(f"{idx.root} holds no clip index (made without a score stage, or by an older datakit); "
                            "make one with `datakit curate SPEC --output DIR`")
    want = spec.index_hash(cut_of(spec))
    if doc["hash"] != want:
        raise CurationError(
            f"{idx.root} was curated with other settings for the stages before the filter "
            f"({', '.join(doc.get('stages') or [])}: index {doc['hash']}, this spec {want}); build with the spec "
            "(and --set values) that made it, or curate again")
    return idx


class Planner:
    """Turns the index rows into build plan files: the clips ``profile`` keeps that are not done."""

    def __init__(self, index: Output, filt: FilterConfig, out_root: str):
        self.index, self.out_root = index, out_root
        self.verdicts = Verdicts(filt)
        self.profile = self.verdicts.profile
        self.rows = self.kept = 0

    def __call__(self, state, dest: str) -> ingest.Plan:
        out = open_output(self.out_root)
        samples = pa.chunked_array([t.column("key") for _, t in out.manifest_tables(["key"])] or [pa.array([], pa.string())])
        samples = samples.combine_chunks().cast(pa.string())
        done = state.done_keys.combine_chunks().cast(pa.string()) if len(state.done_keys) else pa.array([], pa.string())
        fsio.makedirs(dest)
        files: list[str] = []
        listed = skipped = 0
        for _, table in self.index.index_tables(["key", "scores", "json"]):
            for batch in table.to_batches(PLAN_ROWS):
                keys = batch.column("key")
                scores = batch.column("scores").to_pylist() if "scores" in batch.schema.names else [None] * len(keys)
                verdicts = self.verdicts(keys.to_pylist(), scores)
                self.rows += len(verdicts)
                passed = pa.array([v["passed"] for v in verdicts], pa.bool_())
                dropped = pc.indices_nonzero(pc.and_(pc.invert(passed), pc.is_in(keys, value_set=samples)))
                if len(dropped):
                    i = dropped[0].as_py()
                    raise CurationError(
                        f"{out.root} holds {self._count_dropped(samples)} samples that profile {self.profile!r} "
                        f"does not keep (e.g. {keys[i].as_py()}: {', '.join(verdicts[i]['failed'])}); "
                        "a build only adds samples: give a new --output")
                self.kept += pc.sum(passed).as_py() or 0
                todo = pc.and_(passed, pc.invert(pc.is_in(keys, value_set=done)))
                listed += pc.sum(passed).as_py() or 0
                skipped += (pc.sum(passed).as_py() or 0) - (pc.sum(todo).as_py() or 0)
                pick = pc.indices_nonzero(todo).to_pylist()
                if not pick:
                    continue
                t = pa.table({"key": batch.column("key").take(pick), "json": batch.column("json").take(pick),
                              "filter": [json.dumps(verdicts[i], sort_keys=True) for i in pick]}, schema=PLAN_SCHEMA)
                uri = fsio.join(dest, f"part-{len(files):06d}.parquet")
                sink = pa.BufferOutputStream()
                pq.write_table(t, sink)
                fsio.write_atomic(uri, sink.getvalue().to_pybytes())
                files.append(uri)
        log.info("profile %s keeps %d of %d indexed clips; %d already built", self.profile, self.kept, self.rows,
                 skipped)
        return ingest.Plan(files=files, listed=listed, skipped=skipped)

    def _count_dropped(self, samples: pa.Array) -> int:
        n = 0
        for _, table in self.index.index_tables(["key", "scores"]):
            keys = table.column("key").combine_chunks()
            scores = table.column("scores").to_pylist() if "scores" in table.schema.names else [None] * len(keys)
            passed = pa.array([v["passed"] for v in self.verdicts(keys.to_pylist(), scores)], pa.bool_())
            n += pc.sum(pc.and_(pc.invert(passed), pc.is_in(keys, value_set=samples))).as_py() or 0
        return n


def read_clip_plan(uri: str) -> list[Record]:
    """The clip records of one build plan file: the index row's meta with the build's verdict."""
    fs, path = fsio.resolve(uri)
    t = pq.read_table(path, filesystem=fs)
    out = []
    for key, text, verdict in zip(*(t.column(n).to_pylist() for n in PLAN_SCHEMA.names)):
        meta = {k: v for k, v in json.loads(text).items() if k not in BUILT_META}
        meta["filter"] = json.loads(verdict)
        out.append(Record(key=key, meta=meta))
    return out


def load_clip_plan(batch: pa.Table) -> pa.Table:
    """A Ray task: the clip records of the build plan files named in ``batch``."""
    return runner.encode_records([rec for uri in batch.column("plan").to_pylist() for rec in read_clip_plan(uri)])


def reject_lost_clips(spec: PipelineSpec, settings, plan: ingest.Plan, tally) -> None:
    """Planned clips still not committed after the run lost their task: ``task_failed`` rejects."""
    from .output import resume

    after = resume.read_done(settings.root)
    done = after.done_keys.combine_chunks().cast(pa.string()) if len(after.done_keys) else pa.array([], pa.string())
    detail = (f"the task processing this clip failed {spec.ray.max_retries + 1} times "
              "(worker crash, out of memory or lost node); see the Ray logs")
    for uri in plan.files:
        recs = read_clip_plan(uri)
        have = pc.is_in(pa.array([r.key for r in recs], pa.string()), value_set=done).to_pylist()
        lost = [r.rejected("ray", "task_failed", detail) for r, d in zip(recs, have) if not d]
        for i in range(0, len(lost), settings.max_samples):
            tally.add(writer.write_batch(lost[i:i + settings.max_samples], settings))


def build(spec: PipelineSpec, index: str, profile: str | None = None, progress: bool = True,
          verbose: bool = False) -> RunResult:
    """Build ``spec.output`` from the clip index at ``index`` with ``profile`` (default: the spec's filter)."""
    spec, filt = with_profile(spec, profile)
    idx = open_index(index, spec)
    if fsio.normalize(idx.root) == fsio.normalize(spec.output):
        raise CurationError(f"--output {spec.output} is the index itself; give a new folder for the build")
    bspec = spec.model_copy(update={"stages": build_stages(spec)})
    settings = dataclasses.replace(output_settings(spec), config_hash=spec.config_hash(without_filter=True),
                                   index=False)
    planner = Planner(idx, filt, settings.root)
    res = runner.run_job(Job(
        spec=bspec, settings=settings, config=spec.model_dump(mode="json"), plan=planner,
        extra={"kind": "build", "built_from": {**index_doc(spec), "index": idx.root}},
        loader=load_clip_plan, reject_lost=reject_lost_clips,
        summary={"profile": planner.profile, "index": idx.root}), progress, verbose)
    return res
