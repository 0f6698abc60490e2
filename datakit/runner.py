"""Runs a pipeline spec on Ray Data.

The driver lists the inputs, skips what an earlier run finished, builds one Ray Data
map per stage in the order the spec declares them (tasks for plain stages, an actor
pool for stages that hold a model) and streams the results into the shard writer.
Records travel as pickled bytes in a single ``record`` column; they carry URIs, spans
and encoded media, never decoded clips, so memory stays bounded.
"""
from __future__ import annotations

import copy
import logging
import os
import pickle
import time
from dataclasses import dataclass

import pyarrow as pa

from . import ingest, media, rayinit, shards, summary
from .progress import LiveView, report_progress, start_board
from .records import Record
from .spec import PipelineSpec, RayConfig
from .stages import STAGES, Stage, StageConfig

log = logging.getLogger("datakit")


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
    _maybe_inject_fault(stage.name, live)
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
    for r in out:
        r.meta.setdefault("timings", {})[stage.name] = round(per_record, 4)
    report_progress(board, stage.name, len(live), sum(r.ok for r in out), sum(not r.ok for r in out))
    return passthrough + [r for r in out if r.key not in skip]


def _maybe_inject_fault(stage: str, records: list[Record]) -> None:
    """Resilience tests only: ``DATAKIT_FAULT_INJECT=STAGE:TEXT`` kills the worker process
    when STAGE meets a source whose URI contains TEXT (as a segfaulting decoder would)."""
    spec = os.environ.get("DATAKIT_FAULT_INJECT")
    if not spec or ":" not in spec:
        return
    where, text = spec.split(":", 1)
    if where == stage and any(text in r.meta.get("source_uri", "") for r in records):
        os._exit(70)


def _decode(table: pa.Table) -> list[Record]:
    return [pickle.loads(b) for b in table.column("record").to_pylist()]


def _encode(records: list[Record]) -> pa.Table:
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
        return _encode(run_stage(self.stage, _decode(batch), self.skip, self.board))


_WORKER_STAGES: dict[str, Stage] = {}


def stage_task(batch: pa.Table, config: StageConfig, skip: frozenset[str], board=None) -> pa.Table:
    """A Ray task: the stage is built and set up once per worker process, then reused."""
    key = config.model_dump_json()
    stage = _WORKER_STAGES.get(key)
    if stage is None:
        stage = _WORKER_STAGES[key] = build_stage(config)
    return _encode(run_stage(stage, _decode(batch), skip, board))


def _named_task(stage: str):
    """``stage_task`` under the stage's name, so Ray's progress shows ``MapBatches(split)``."""
    def fn(batch: pa.Table, config: StageConfig, skip: frozenset[str], board=None) -> pa.Table:
        return stage_task(batch, config, skip, board)
    fn.__name__ = fn.__qualname__ = stage
    return fn


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


def run(spec: PipelineSpec, limit: int | None = None, progress: bool = True, verbose: bool = False) -> RunResult:
    import ray.data

    t0 = time.time()
    preflight(spec)
    state = shards.open_output(spec)
    if state.cleaned:
        log.warning("removed %d leftovers of an interrupted run: %s", len(state.cleaned),
                    ", ".join(state.cleaned[:5]) + (" ..." if len(state.cleaned) > 5 else ""))
    sources = ingest.list_sources(spec.input, limit)
    todo = [r for r in sources if r.key not in state.done_sources]
    log.info("%d sources, %d already complete; output %s", len(sources), len(sources) - len(todo), state.root)
    writer = shards.ShardWriter(spec, state)
    if todo:
        init_ray(spec.ray, progress, verbose)
        res = ray.cluster_resources()
        problems = check_resources(spec, res.get("CPU", 0.0), res.get("GPU", 0.0))
        if problems and not spec.ray.address:
            raise PreflightError("the pipeline cannot start:\n  " + "\n  ".join(problems))
        for p in problems:  # an autoscaling cluster may still grow: warn only
            log.warning("%s", p)
        board = start_board() if progress else None
        view = LiveView(spec.name, spec.stage_names(), enabled=progress, board=board)
        view.listed(len(sources))
        view.listing_done(skipped=len(sources) - len(todo))
        # keys finished by an interrupted run, for sources that still have work left
        skip = frozenset(state.resume_skip)
        ds = ray.data.from_arrow(_encode(todo)).repartition(min(len(todo), 1024))
        for cfg in spec.stages:
            common = dict(batch_size=cfg.batch_size, batch_format="pyarrow", num_cpus=cfg.num_cpus,
                          zero_copy_batch=True)
            if not STAGES[cfg.stage].uses_model:
                common["max_retries"] = spec.ray.max_retries   # Ray Data's default retries forever
            if cfg.num_gpus:
                common["num_gpus"] = cfg.num_gpus
            if STAGES[cfg.stage].uses_model:
                size = cfg.concurrency or 1
                actor = type(cfg.stage, (StageActor,), {})   # named for Ray's progress display
                ds = ds.map_batches(actor, fn_constructor_kwargs={"config": cfg, "skip": skip, "board": board},
                                    compute=ray.data.ActorPoolStrategy(size=size), **common)
            else:
                if cfg.concurrency:
                    common["concurrency"] = cfg.concurrency
                ds = ds.map_batches(_named_task(cfg.stage), fn_kwargs={"config": cfg, "skip": skip, "board": board},
                                    **common)
        def deliver(rec: Record) -> None:
            if rec.key not in writer.seen and rec.key not in state.done_keys:
                view.finished(rec.meta.get("source_id"), rec.meta.get("source_clips"), rec.key,
                              rec.reject.reason if rec.reject else None)
            writer.add(rec)

        view.start()
        try:
            for batch in ds.iter_batches(batch_size=1, batch_format="pyarrow", prefetch_batches=2):
                for rec in _decode(batch):
                    deliver(rec)
            for rec in todo:
                if rec.key not in writer.sources_seen:
                    log.warning("lost %s: its task kept failing (Ray's logs: %s)", rec.meta["source_uri"],
                                rayinit.logs_dir())
                    deliver(rec.rejected("ray", "task_failed",
                                         f"the task processing this source failed {spec.ray.max_retries + 1} "
                                         "times (worker crash, out of memory or lost node); see the Ray logs"))
        finally:
            view.stop()
    writer.close()
    wall = time.time() - t0
    summ = summary.write(state.root, run={
        "wall_s": round(wall, 2), "sources_listed": len(sources), "sources_skipped": len(sources) - len(todo),
        "samples_written": writer.written_samples, "rejects_written": writer.written_rejects,
        "shards_written": len(writer.shards_written)})
    return RunResult(output=state.root, sources=len(sources), skipped_sources=len(sources) - len(todo),
                     samples_written=writer.written_samples, rejects_written=writer.written_rejects,
                     shards_written=writer.shards_written, summary=summ, wall_s=wall)
