"""Runs a pipeline spec on Ray Data.

The driver opens the output (``output.resume``: config check, repairs, what is done),
lists the inputs into plan files (``ingest.plan``: streamed, done sources left out) and
builds one Ray Data map per stage in the order the spec declares them (tasks for plain
stages, an actor pool for stages that hold a model), then a last map that commits each
batch of finished records where it was made (``output.writer``). The driver receives
only the writer's status rows (key, source, verdict, bytes, shard: well under 1 kB per
record), for the live view, the counts and the sources whose task kept failing.

Records travel between stages as pickled bytes in a single ``record`` column; they carry
URIs, spans and encoded media, never decoded clips. Operator boundaries are placed on
purpose (``_one_per_block``): each source is a block of its own before the source-level
stages (a source that crashes its worker takes down only itself), each clip is a block of
its own after ``split`` (the clips of one long source spread over the workers), and around
actor pools (task stages are not fused into the pool's actors).
"""
from __future__ import annotations

import copy
import logging
import os
import pickle
import socket
import time
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa

from . import faults, fsio, ingest, media, rayinit, summary
from .console import ctrl_c_guard
from .output import resume, writer
from .output.settings import OutputSettings
from .progress import LiveView, report_progress, start_board
from .records import Record
from .spec import PipelineSpec, RayConfig
from .stages import STAGES, Stage, StageConfig

log = logging.getLogger("datakit")

_HOST = socket.gethostname()
#: CPUs a writer task reserves (it hashes and writes; it never decodes)
WRITER_CPUS = 0.5


# ---------------------------------------------------------------- per-batch work

def run_stage(stage: Stage, records: list[Record], skip: frozenset[str] = frozenset(), board=None) -> list[Record]:
    """Apply one stage to a batch: rejected records pass through, errors reject one record.

    If the batch raises, each record is retried alone so that one bad clip becomes a
    reject with its error instead of failing its neighbours (or the job).
    """
    passthrough = [r for r in records if not r.ok]
    live = [r for r in records if r.ok and r.key not in skip]
    if not live:
        return passthrough
    faults.maybe_crash(stage.name, lambda text: any(text in r.meta.get("source_uri", "") for r in live))
    faults.log_processed(stage.name, [r.key for r in live])
    faults.maybe_stall(stage.name, [r.meta.get("source_uri", "") for r in live])
    backup = [copy.deepcopy(r) for r in live] if len(live) > 1 else None
    t0 = time.perf_counter()
    try:
        out = stage.process_batch(live)
    except Exception:
        out = []
        for r in backup or live:
            try:
                out += stage.process_batch([r])
            except Exception as e:  # noqa: BLE001 - any failure of one record is that record's reject
                reason = e.reason if isinstance(e, media.MediaError) else "error"
                detail = e.detail if isinstance(e, media.MediaError) else f"{type(e).__name__}: {e}"
                out.append(r.rejected(stage.name, reason, detail[:1000]))
    # seconds of this stage attributable to each output, so totals add up across fan-out
    per_record = (time.perf_counter() - t0) / max(1, len(out))
    worker = f"{_HOST}:{os.getpid()}"
    for r in out:
        r.meta.setdefault("timings", {})[stage.name] = round(per_record, 4)
        r.meta.setdefault("workers", {})[stage.name] = worker     # which process made it (provenance)
    report_progress(board, stage.name, len(live), sum(r.ok for r in out), sum(not r.ok for r in out))
    return passthrough + [r for r in out if r.key not in skip]


def decode_records(table: pa.Table) -> list[Record]:
    return [pickle.loads(b) for b in table.column("record").to_pylist()]


def encode_records(records: list[Record]) -> pa.Table:
    return pa.table({"record": pa.array([pickle.dumps(r, protocol=5) for r in records], type=pa.large_binary())})


def build_stage(config: StageConfig) -> Stage:
    """The stage, checked where it runs (a node may lack a model the driver has) and set up."""
    cls = STAGES[config.stage]
    problems = cls.preflight(config)
    if problems:
        raise RuntimeError(f"{config.stage}: " + "; ".join(problems))
    stage = cls(config)
    stage.setup()
    return stage


class StageActor:
    """An actor-pool member: builds its stage and calls ``setup()`` once (model loaded once)."""

    def __init__(self, config: StageConfig, skip: frozenset[str], board=None):
        self.stage = build_stage(config)
        self.skip = skip
        self.board = board

    def __call__(self, batch: pa.Table) -> pa.Table:
        return encode_records(run_stage(self.stage, decode_records(batch), self.skip, self.board))


_WORKER_STAGES: dict[str, Stage] = {}


def stage_task(batch: pa.Table, config: StageConfig, skip: frozenset[str], board=None) -> pa.Table:
    """A Ray task: the stage is built and set up once per worker process, then reused."""
    key = config.model_dump_json()
    stage = _WORKER_STAGES.get(key)
    if stage is None:
        stage = _WORKER_STAGES[key] = build_stage(config)
    return encode_records(run_stage(stage, decode_records(batch), skip, board))


def _named_task(stage: str):
    """``stage_task`` under the stage's name, so Ray's progress shows ``MapBatches(split)``."""
    def fn(batch: pa.Table, config: StageConfig, skip: frozenset[str], board=None) -> pa.Table:
        return stage_task(batch, config, skip, board)
    fn.__name__ = fn.__qualname__ = stage
    return fn


def load_plan(batch: pa.Table) -> pa.Table:
    """A Ray task: the source records of the plan files named in ``batch``."""
    return encode_records([rec for uri in batch.column("plan").to_pylist() for rec in ingest.read_plan(uri)])


#: the status rows the writer stage returns to the driver
STATUS_SCHEMA = pa.schema([("key", pa.string()), ("source_id", pa.string()), ("source_clips", pa.int64()),
                           ("verdict", pa.string()), ("reason", pa.string()), ("bytes", pa.int64()),
                           ("shard", pa.string())])


def write_task(batch: pa.Table, settings: OutputSettings) -> pa.Table:
    """A Ray task: commit a batch of finished records; only their status rows go on."""
    return pa.Table.from_pylist(writer.write_batch(decode_records(batch), settings), schema=STATUS_SCHEMA)


def output_settings(spec: PipelineSpec) -> OutputSettings:
    """What the writer needs from the spec; ``metrics`` are the score names the score stage writes."""
    from .scoring import METRICS

    metrics: list[str] = []
    for cfg in spec.stages:
        if cfg.stage == "score":
            metrics += [k for m in cfg.metrics for k in METRICS[m].scores if k not in metrics]
    # a run with a score stage also writes the clip index (datakit.curation), so it can be rebuilt
    cut = index_cut(spec)
    return OutputSettings(root=fsio.normalize(spec.output), prefix=spec.shard.prefix,
                          config_hash=spec.config_hash(), pipeline=spec.name, task=spec.task,
                          max_samples=spec.shard.max_samples, max_bytes=spec.shard.max_bytes,
                          metrics=tuple(metrics), index=cut is not None,
                          index_hash=spec.index_hash(cut) if cut is not None else "")


def index_cut(spec: PipelineSpec) -> int | None:
    """How many leading stages make a clip index row: those before ``filter`` (or up to and
    including ``score`` when there is no filter); None when the spec scores nothing."""
    names = spec.stage_names()
    if "score" not in names:
        return None
    return names.index("filter") if "filter" in names else names.index("score") + 1


def _one_per_block(ds):
    """An operator boundary after which every record is a block (and a task) of its own."""
    return ds.repartition(target_num_rows_per_block=1)


def build_dataset(spec: PipelineSpec, settings: OutputSettings, plan_files: list[str],
                  skip: frozenset[str] = frozenset(), board=None, loader=load_plan):
    """The Ray Data pipeline of a run: plan files -> stages -> writer -> status rows.

    ``loader`` turns a batch of plan file URIs into records (``build`` reads clip plans)."""
    import ray.data

    ds = ray.data.from_items([{"plan": f} for f in plan_files])
    ds = ds.map_batches(loader, batch_size=1, batch_format="pyarrow", max_retries=spec.ray.max_retries)
    ds = _one_per_block(ds)                                     # a source per task
    boundary = True
    for cfg in spec.stages:
        model = STAGES[cfg.stage].uses_model
        common = dict(batch_size=cfg.batch_size, batch_format="pyarrow", num_cpus=cfg.num_cpus,
                      zero_copy_batch=True)
        if cfg.num_gpus:
            common["num_gpus"] = cfg.num_gpus
        if model:
            if not boundary:
                ds = _one_per_block(ds)                         # task stages are not fused into the actors
            actor = type(cfg.stage, (StageActor,), {})   # named for Ray's progress display
            ds = ds.map_batches(actor, fn_constructor_kwargs={"config": cfg, "skip": skip, "board": board},
                                compute=ray.data.ActorPoolStrategy(size=cfg.concurrency or 1), **common)
        else:
            common["max_retries"] = spec.ray.max_retries        # Ray Data's default retries forever
            if cfg.concurrency:
                common["concurrency"] = cfg.concurrency
            ds = ds.map_batches(_named_task(cfg.stage), fn_kwargs={"config": cfg, "skip": skip, "board": board},
                                **common)
        boundary = False
        if model or cfg.stage == "split":
            ds = _one_per_block(ds)       # clips of one source (after split, or out of a pool) spread over workers
            boundary = True
    if not boundary:
        ds = _one_per_block(ds)           # the writer is a stage of its own, fed max_samples records at a time
    return ds.map_batches(write_task, fn_kwargs={"settings": settings}, batch_size=settings.max_samples,
                          batch_format="pyarrow", num_cpus=WRITER_CPUS, max_retries=spec.ray.max_retries)


# ---------------------------------------------------------------- the job

def init_ray(cfg: RayConfig, progress: bool = True, verbose: bool = False) -> None:
    """Ray (see ``rayinit``) plus the Ray Data settings of a corpus job."""
    rayinit.init_ray(cfg.address, cfg.num_cpus, verbose=verbose)
    rayinit.quiet_ray_data(verbose)
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress and verbose     # datakit's own view otherwise (progress.py)
    ctx.execution_options.preserve_order = False
    ctx.print_on_execution_start = False
    ctx.enable_progress_bar_name_truncation = False
    # records carry encoded clips (up to a few MB each): small blocks let a long source's
    # clips stream to the sink one by one instead of piling up in its task until it ends
    ctx.target_max_block_size = 8 * 1024 * 1024
    # a task that keeps dying drops its block instead of failing the job; the driver
    # turns the sources it lost into `task_failed` rejects (see `run`)
    ctx.max_errored_blocks = -1
    # per-operator reservations keep a share of the budget for each stage; with 2 CPUs that
    # share can be one task, so the clips of one long source wait for each other
    ctx.op_resource_reservation_enabled = cfg.stage_reservations


@dataclass
class RunResult:
    output: str
    sources: int
    skipped_sources: int
    samples_written: int
    rejects_written: int
    shards_written: list[str]
    summary: dict
    wall_s: float
    driver_bytes: int = 0          # status rows the driver received from the writers (Arrow bytes)
    indexed: int = 0               # clips written to the index only (``curate``)


class PreflightError(RuntimeError):
    """A stage cannot work at all (missing weights, ...): nothing was started."""


def preflight(spec: PipelineSpec) -> None:
    problems = [f"{cfg.stage}: {p}" for cfg in spec.stages for p in STAGES[cfg.stage].preflight(cfg)]
    if problems:
        raise PreflightError("the pipeline cannot start:\n  " + "\n  ".join(problems))


def check_resources(spec: PipelineSpec, cpus: float, gpus: float) -> list[str]:
    """Actor pools hold their CPUs/GPUs for the whole job: if they leave no room for the task
    stages feeding them, Ray waits forever. Returns what does not fit."""
    pools = [c for c in spec.stages if STAGES[c.stage].uses_model]
    tasks = [c for c in spec.stages if not STAGES[c.stage].uses_model]
    held_cpu = sum(c.num_cpus * (c.concurrency or 1) for c in pools)
    held_gpu = sum(c.num_gpus * (c.concurrency or 1) for c in pools)
    need_cpu = max((c.num_cpus for c in tasks), default=0.0)
    problems = []
    if held_cpu + need_cpu > cpus + 1e-9:
        problems.append(
            f"actor pools ({', '.join(f'{c.stage}: {c.concurrency or 1} x {c.num_cpus} CPU' for c in pools)}) "
            f"hold {held_cpu:g} CPUs and task stages need {need_cpu:g} more, but Ray has {cpus:g}: "
            "lower `concurrency` or `num_cpus` of those stages (they would wait for each other forever)")
    if held_gpu > gpus + 1e-9:
        problems.append(f"actor pools need {held_gpu:g} GPUs but Ray has {gpus:g}: lower `num_gpus` or `concurrency`")
    return problems


class _Tally:
    """What the driver learns from the status rows."""

    def __init__(self, view: LiveView | None):
        self.view = view
        self.samples = self.rejects = self.bytes = self.indexed = 0
        self.shards: set[str] = set()

    def add(self, rows: list[dict]) -> None:
        for r in rows:
            if r["verdict"] == "kept":
                self.samples += 1
                self.shards.add(r["shard"])
            elif r["verdict"] == "indexed":
                self.indexed += 1
            else:
                self.rejects += 1
            if self.view is not None:
                self.view.finished(r["source_id"], r["source_clips"], r["key"], r["reason"])


@dataclass
class Job:
    """What a job runs: ``run`` lists the inputs; ``curate`` and ``build`` (``datakit.curation``)
    change the stages, the writer's settings, the plan and how plan files become records."""

    spec: PipelineSpec                     # the stages to run (and the Ray settings)
    settings: OutputSettings
    config: dict                           # resolved spec written to meta/config.json
    plan: Callable                         # (ResumeState, plan folder) -> ingest.Plan
    extra: dict | None = None              # more meta/config.json entries (kind, index)
    loader: Callable = load_plan           # a Ray task: plan file URIs -> records
    reject_lost: Callable | None = None    # (spec, settings, plan, tally) after the run; default by source
    summary: dict | None = None            # more entries for this run's line in summary.json


def run(spec: PipelineSpec, limit: int | None = None, progress: bool = True, verbose: bool = False) -> RunResult:
    def listing(state: resume.ResumeState, plan_dir: str) -> ingest.Plan:
        return ingest.plan(spec.input, plan_dir, limit, is_done=state.is_done if len(state.done_sources) else None)

    return run_job(Job(spec=spec, settings=output_settings(spec), config=spec.model_dump(mode="json"), plan=listing,
                       extra={"kind": "run", "index": _index_doc(spec)}), progress, verbose)


def _index_doc(spec: PipelineSpec) -> dict | None:
    cut = index_cut(spec)
    return None if cut is None else {"hash": spec.index_hash(cut), "stages": spec.stage_names()[:cut]}


def run_job(job: Job, progress: bool = True, verbose: bool = False) -> RunResult:
    t0 = time.time()
    spec, settings = job.spec, job.settings
    preflight(spec)
    if not spec.ray.address:
        rayinit.clean_up_killed_runs()       # before the output is read: see there
    state = resume.open_for_run(settings, job.config, job.extra)
    plan_dir = resume.plan_dir(state.root)
    try:
        plan = job.plan(state, plan_dir)
        log.info("%d sources, %d already complete; output %s", plan.listed, plan.skipped, state.root)
        tally = _Tally(None)
        if plan.todo:
            tally = _run_plan(spec, settings, state, plan, progress, verbose, job.loader, job.reject_lost)
    finally:
        fsio.delete_tree(plan_dir)
    wall = time.time() - t0
    summ = summary.write(state.root, run={
        "wall_s": round(wall, 2), "sources_listed": plan.listed, "sources_skipped": plan.skipped,
        "samples_written": tally.samples, "rejects_written": tally.rejects, "shards_written": len(tally.shards),
        "driver_bytes": tally.bytes, **({"indexed": tally.indexed} if tally.indexed else {}), **(job.summary or {})})
    return RunResult(output=state.root, sources=plan.listed, skipped_sources=plan.skipped,
                     samples_written=tally.samples, rejects_written=tally.rejects,
                     shards_written=sorted(tally.shards), summary=summ, wall_s=wall, driver_bytes=tally.bytes,
                     indexed=tally.indexed)


def _run_plan(spec: PipelineSpec, settings: OutputSettings, state: resume.ResumeState, plan: ingest.Plan,
              progress: bool, verbose: bool, loader=load_plan, reject_lost=None) -> _Tally:
    init_ray(spec.ray, progress, verbose)
    import ray

    res = ray.cluster_resources()
    problems = check_resources(spec, res.get("CPU", 0.0), res.get("GPU", 0.0))
    if problems and not spec.ray.address:
        raise PreflightError("the pipeline cannot start:\n  " + "\n  ".join(problems))
    for p in problems:  # an autoscaling cluster may still grow: warn only
        log.warning("%s", p)
    board = start_board() if progress else None
    view = LiveView(spec.name, spec.stage_names(), enabled=progress, board=board)
    view.listed(plan.listed)
    view.listing_done(skipped=plan.skipped)
    tally = _Tally(view)
    # keys finished by an interrupted run, for sources that still have work left
    ds = build_dataset(spec, settings, plan.files, frozenset(state.skip_keys), board, loader)
    view.start()
    try:
        with ctrl_c_guard():
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                tally.bytes += batch.nbytes
                tally.add(batch.to_pylist())
        if reject_lost is not None:
            reject_lost(spec, settings, plan, tally)
        elif view.counts.sources_done < plan.todo:
            _reject_lost(spec, settings, plan, tally)
    finally:
        view.stop()
    return tally


def _reject_lost(spec: PipelineSpec, settings: OutputSettings, plan: ingest.Plan, tally: _Tally) -> None:
    """Sources of the plan that are still not complete after the run lost records to a task that
    kept failing: each becomes a ``task_failed`` reject, committed by the same writer."""
    after = resume.read_done(settings.root)
    detail = (f"the task processing this source failed {spec.ray.max_retries + 1} times "
              "(worker crash, out of memory or lost node); see the Ray logs")
    for uri in plan.files:
        recs = ingest.read_plan(uri)
        done = after.is_done(pa.array([r.key for r in recs], pa.string())).to_pylist()
        lost = [r for r, d in zip(recs, done) if not d]
        for rec in lost:
            log.warning("lost %s: its task kept failing (Ray's logs: %s)", rec.meta["source_uri"], rayinit.logs_dir())
        for i in range(0, len(lost), settings.max_samples):
            chunk = [r.rejected("ray", "task_failed", detail) for r in lost[i:i + settings.max_samples]]
            tally.add(writer.write_batch(chunk, settings))
