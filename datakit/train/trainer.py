"""Training: flow matching on the shards, one process or Ray Train workers (DDP).

Objective (paper §3.4, §4.1.1; SPEC §6–7), per item:

* HR latent ``x₀``, noise ``ε``, ``σ`` from the configured sampling (uniform, optionally
  shifted, or logit-normal); ``x_σ = (1 − σ)·x₀ + σ·ε``; the model sees timestep ``1000·σ``
  and regresses ``v = ε − x₀`` — the sign diffusers' flow schedulers step with
  (``x + (σ_next − σ)·v``), so the trained model drops into Wan's scheduler unchanged;
* LR latent noise augmentation: ``t_aug`` uniform in [200, 600], the LR latent noised to
  ``σ_aug = t_aug / 1000`` by the same forward process, ``t_aug`` given as a micro-condition;
* prompt replaced by the null prompt (the encoding of ``""``, padded as the pipeline pads)
  with probability 0.1 (drawn by the sampler);
* MSE over the target tokens (references were cut inside the model).

Every random draw of item ``i`` on rank ``r`` comes from generators seeded by
``(seed, r, i)``, so stopping and resuming from a checkpoint reproduces the run.

Mixed precision: float32 master weights with bf16 autocast (``model.precision``: on GPU by
default, anywhere with ``bf16``) and gradient checkpointing (on GPU by default). With several
workers (Ray Train) the model is replicated (DDP) or sharded (FSDP2), ``distributed.strategy``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import fsio
from . import checkpoint as ckpt_mod
from .config import TrainConfig
from .control import StopRequest, TrainingInterrupted, interrupt_requests_stop, sigint_ignored
from .data import TRAINER_TAG, Encoded, Sampler, TextCache, build_index, encode_item, load_item, make_loader

log = logging.getLogger("datakit.train")

_EVAL_TAG = 0xE7A1


def torch_generator(seed: int, rank: int, index: int, tag: int) -> torch.Generator:
    s = np.random.SeedSequence([int(seed), int(rank), int(index), int(tag)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(s[0]) << 31 ^ int(s[1]))


def sample_sigma(cfg: TrainConfig, g: torch.Generator) -> float:
    ob = cfg.objective
    if ob.timestep_sampling == "logit_normal":
        u = torch.sigmoid(torch.randn((), generator=g)).item()
    else:
        u = torch.rand((), generator=g).item()
    s = ob.timestep_shift
    sigma = s * u / (1 + (s - 1) * u)
    return float(min(max(sigma, 1e-4), 1.0))


@dataclass
class Draw:
    sigma: float
    noise: torch.Tensor
    aug_t: int
    aug_noise: torch.Tensor


def draw(cfg: TrainConfig, enc: Encoded, rank: int, tag: int = TRAINER_TAG) -> Draw:
    g = torch_generator(cfg.seed, rank, enc.index, tag)
    sigma = sample_sigma(cfg, g)
    noise = torch.randn(enc.hr.shape, generator=g)
    lo, hi = cfg.objective.noise_aug
    aug_t = int(torch.randint(lo, hi + 1, (), generator=g).item())
    aug_noise = torch.randn(enc.lr.shape, generator=g)
    return Draw(sigma, noise, aug_t, aug_noise)


def noise_augment(lr: torch.Tensor, aug_t: float, noise: torch.Tensor) -> torch.Tensor:
    """The LR latent noised to ``σ = aug_t / 1000`` by the flow forward process."""
    s = float(aug_t) / 1000.0
    return (1.0 - s) * lr + s * noise.to(lr.device, lr.dtype)


def flow_loss(model, enc: Encoded, d: Draw, autocast: bool = False) -> torch.Tensor:
    x0 = enc.hr
    noise = d.noise.to(x0.device, x0.dtype)
    xt = (1.0 - d.sigma) * x0 + d.sigma * noise
    target = noise - x0
    dev = x0.device
    t = torch.full((x0.shape[0],), d.sigma * 1000.0, device=dev)
    aug = torch.full((x0.shape[0],), float(d.aug_t), device=dev)
    lr = noise_augment(enc.lr, d.aug_t, d.aug_noise)
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=autocast):
        pred = model(xt, t, enc.text, lr=lr, aug_t=aug, refs=enc.refs)
    return F.mse_loss(pred.float(), target.float())


# ---------------------------------------------------------------------------- metrics


class MetricsLog:
    """``OUTPUT/metrics.jsonl``: appended locally; rewritten (this run's records) on object stores,
    where each run writes ``metrics-from-<first step>.jsonl``.

    A run that resumes from the checkpoint at step S first drops the records of steps >= S
    (written by a run that went on past its last checkpoint), so the record holds each step once.
    """

    def __init__(self, output: str, start_step: int):
        self.root = fsio.normalize(output)
        self.uri = fsio.join(self.root, "metrics.jsonl")
        self.remote = fsio.is_remote(self.uri)
        if self.remote:
            self.uri = fsio.join(self.root, f"metrics-from-{start_step:08d}.jsonl")
        self.records: list[dict] = []

    def _files(self) -> list[str]:
        if not self.remote:
            return [self.uri] if fsio.exists(self.uri) else []
        if not fsio.exists(self.root):
            return []
        return sorted(f for f in fsio.list_files(self.root, recursive=False)
                      if f.rsplit("/", 1)[-1].startswith("metrics-from-") and f.endswith(".jsonl"))

    def records_on_disk(self) -> list[dict]:
        """Every record written so far, by step."""
        out = []
        for f in self._files():
            out += [json.loads(x) for x in fsio.read_text(f).splitlines() if x.strip()]
        return sorted(out, key=lambda r: r["step"])

    def drop_from(self, step: int) -> None:
        """Remove the records of steps >= ``step``."""
        for f in self._files():
            lines = [x for x in fsio.read_text(f).splitlines() if x.strip()]
            keep = [x for x in lines if json.loads(x)["step"] < step]
            if len(keep) == len(lines):
                continue
            if keep:
                fsio.write_atomic(f, "".join(x + "\n" for x in keep).encode())
            else:
                fsio.delete(f)
            log.info("%s: dropped %d record(s) of steps >= %d (past the checkpoint resumed from)", f,
                     len(lines) - len(keep), step)

    def add(self, rec: dict) -> None:
        line = json.dumps(rec, sort_keys=True)
        if self.remote:
            self.records.append(rec)
        else:
            with open(self.uri, "a") as f:
                f.write(line + "\n")

    def flush(self) -> None:
        if self.remote and self.records:
            fsio.write_atomic(self.uri, "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records).encode())


# ---------------------------------------------------------------------------- the trainer


def _device(spec) -> torch.device:
    if isinstance(spec, torch.device):
        return spec
    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def load_base(path: str, device) -> "VideoDiffusionModel":  # noqa: F821
    """The T2V base model with its transformer in float32 (master weights for training).

    On CPU everything loads in float32. On GPU the text encoder loads in bf16 (it only encodes
    prompts) and the transformer is read again from disk in float32 rather than up-cast from
    bf16, which would round the released weights.
    """
    from ..sdedit import load_model

    device = _device(device)
    if device.type != "cuda":
        return load_model(path, device=str(device), dtype="float32")
    wan = load_model(path, device=str(device), dtype="auto")
    from diffusers import WanTransformer3DModel

    sub = Path(path) / "transformer"
    wan.transformer = None
    torch.cuda.empty_cache()
    wan.transformer = WanTransformer3DModel.from_pretrained(sub, torch_dtype=torch.float32,
                                                            local_files_only=True).to(device)
    return wan


class Trainer:
    """Model, optimizer, data and state of one training worker (rank).

    With ``world > 1`` the process group must exist (Ray Train starts it); the model is then
    wrapped for ``cfg.distributed.strategy``: DDP, or FSDP2 (``fully_shard`` on every transformer
    block, then on the whole model; parameters, gradients and AdamW state sharded on dim 0).
    """

    def __init__(self, cfg: TrainConfig, rank: int = 0, world: int = 1, device=None, resume: bool = True,
                 loader_workers: int | None = None):
        from .model import build

        self.cfg, self.rank, self.world = cfg, rank, world
        self.device = _device(device)
        cuda = self.device.type == "cuda"
        prec = cfg.model.precision
        self.autocast = prec == "bf16" or (prec == "auto" and cuda)
        self.loader_workers = cfg.data.workers if loader_workers is None else loader_workers
        self.strategy = cfg.distributed.strategy if world > 1 else "single"

        self.wan = load_base(cfg.base_model, self.device)
        self.wan.set_vae_tiling(cfg.model.tiling(self.device.type))      # HR, LR and references
        base = self.wan.transformer
        r = cfg.model.rope
        self.model = build(base, {"target": r.target, "images": r.images, "video": r.video},
                           max_images=cfg.data.max_images, seed=cfg.seed).to(self.device)
        self.model.requires_grad_(True).train()
        gc = cfg.model.gradient_checkpointing
        self.model.gradient_checkpointing = cuda if gc == "auto" else bool(gc)
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            for block in self.model.blocks:
                fully_shard(block)
            fully_shard(self.model)
        o = cfg.optim
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps,
                                     weight_decay=o.weight_decay)
        self.step = 0
        self.saved_step: int | None = None
        self.resumed_from: str | None = None
        if resume:
            self._maybe_resume()
        self.ddp = None
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None)
        self.index = build_index(cfg.data.roots)
        self.cache = None
        if cfg.data.latent_cache.use:
            from .cache import LatentCache

            self.cache = LatentCache(cfg, self.device.type)
        self.text_cache = TextCache(self.wan)
        self.history: list[dict] = []
        self.interrupted = False

    # ------------------------------------------------------------------ state

    def _maybe_resume(self) -> None:
        spec = self.cfg.checkpoint.resume
        if spec == "never":
            return
        if spec == "auto":
            done = [d for _, d, ok in ckpt_mod.list_checkpoints(self.cfg.output) if ok]
            if not done:
                return
            path = done[-1]
        else:
            path = ckpt_mod.resolve(spec)
        self.load(path)

    def load(self, path: str) -> None:
        info = ckpt_mod.read_info(path)
        ckpt_mod.load_model_state(self.model, path)
        ckpt_mod.load_optimizer_state(self.opt, self.model, path)
        self.step = int(info["step"])
        self.saved_step = self.step
        self.resumed_from = path
        if info.get("config_hash") != self.cfg.config_hash():
            log.warning("resuming from %s, written with another config (hash %s, now %s)", path,
                        info.get("config_hash"), self.cfg.config_hash())
        if info.get("world_size") not in (None, self.world) or \
                info.get("loader_workers") not in (None, self.loader_workers):
            log.warning("resuming with %d workers x %d loader processes (was %s x %s): the data order differs "
                        "from an uninterrupted run", self.world, self.loader_workers, info.get("world_size"),
                        info.get("loader_workers"))
        log.info("resumed from %s at step %d", path, self.step)

    def checkpoint_info(self) -> dict:
        _, stage = self.cfg.stage_at(max(self.step - 1, 0))
        return {"items": self.step * self.cfg.optim.grad_accum, "stage": stage.name,
                "config_hash": self.cfg.config_hash(), "config": self.cfg.model_dump(mode="json"),
                "base_model": os.path.abspath(self.cfg.base_model), "model": self.model.describe(),
                "inference": self.cfg.inference.model_dump(mode="json"), "world_size": self.world,
                "strategy": self.strategy, "loader_workers": self.loader_workers, "time": time.time()}

    def save(self) -> str | None:
        """Checkpoint the current step: worker 0 alone, or (FSDP) every worker its shard. Returns the
        directory on worker 0. Every worker must call it (FSDP synchronises)."""
        cfg = self.cfg
        if self.strategy == "fsdp":
            groups = ckpt_mod.save_shard(cfg.output, self.step, self.model, self.opt, self.rank, self.world)
            torch.distributed.barrier()
            d = None
            if self.rank == 0:
                d = ckpt_mod.finish_sharded(cfg.output, self.step, self.opt, groups, self.checkpoint_info(),
                                            keep=cfg.checkpoint.keep, count=self.world)
        elif self.rank == 0:
            d = ckpt_mod.save(cfg.output, self.step, self.model, self.opt, self.checkpoint_info(),
                              keep=cfg.checkpoint.keep)
        else:
            d = None
        self.saved_step = self.step
        if d:
            log.info("checkpoint %s", d)
        return d

    # ------------------------------------------------------------------ steps

    def _lr(self, step: int) -> float:
        o = self.cfg.optim
        if o.warmup_steps and step < o.warmup_steps:
            return o.lr * (step + 1) / o.warmup_steps
        return o.lr

    def encode(self, item: dict) -> Encoded:
        return encode_item(self.wan, item, self.device, self.text_cache)

    def loss_of(self, enc: Encoded, tag: int = TRAINER_TAG, module=None) -> torch.Tensor:
        return flow_loss(module or self.model, enc, draw(self.cfg, enc, self.rank, tag), self.autocast)

    def _sync_context(self, sync: bool):
        """Gradient synchronisation only on the last micro-batch of a step."""
        import contextlib

        if self.ddp is not None and not sync:
            return self.ddp.no_sync()
        if self.strategy == "fsdp":
            self.model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()

    def train_step(self, items: list[dict]) -> dict:
        """One optimizer step over ``grad_accum`` items; returns the step's record."""
        model = self.ddp or self.model
        for g in self.opt.param_groups:
            g["lr"] = self._lr(self.step)
        t_enc = time.perf_counter()
        losses, tasks = [], []
        for j, item in enumerate(items):
            enc = self.encode(item)
            with self._sync_context(j == len(items) - 1):
                loss = self.loss_of(enc, module=model)
                (loss / len(items)).backward()
            losses.append(float(loss.detach()))
            tasks.append(enc.task)
        clip = self.cfg.optim.grad_clip
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip else float("inf"))
        if hasattr(gnorm, "full_tensor"):          # FSDP: a DTensor, the same on every worker
            gnorm = gnorm.full_tensor()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        loss = sum(losses) / len(losses)
        if self.world > 1:
            t = torch.tensor([loss], device=self.device)
            torch.distributed.all_reduce(t)
            loss = float(t.item()) / self.world
        rec = {"step": self.step, "stage": self.cfg.stage_at(self.step)[1].name, "loss": loss,
               "rank0_losses": losses, "tasks": tasks, "lr": self._lr(self.step), "grad_norm": float(gnorm),
               "compute_s": time.perf_counter() - t_enc}
        self.step += 1
        return rec

    @torch.no_grad()
    def eval_loss(self, items: list[dict], draws: int = 4) -> float:
        """Mean loss over ``items`` with fixed noise and timesteps (``draws`` per item): comparable across steps."""
        was = self.model.training
        self.model.eval()
        total, n = 0.0, 0
        for item in items:
            enc = self.encode(item)
            for k in range(draws):
                total += float(self.loss_of(enc, tag=_EVAL_TAG + k))
                n += 1
        self.model.train(was)
        return total / max(n, 1)

    def fixed_items(self, count: int, start: int = 10 ** 9) -> list[dict]:
        """``count`` items far from the training range, for :meth:`eval_loss`."""
        s = Sampler(self.cfg, self.index, self.rank, self.world, 1)
        return [self.load_item(s.plan(start + i)) for i in range(count)]

    def load_item(self, plan) -> dict:
        """A planned item as the loader prepares it (from the latent cache when configured)."""
        return self.cache.load_item(plan) if self.cache is not None else load_item(plan, self.cfg)

    # ------------------------------------------------------------------ loop

    def _stop_agreed(self, stop: StopRequest | None) -> bool:
        """Whether to stop after this step: worker 0 looks (flag, then request file), all agree."""
        if stop is None:
            return False
        want = stop.requested() if self.rank == 0 else False
        if self.world > 1:
            t = torch.tensor([1.0 if want else 0.0], device=self.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            want = bool(t.item())
        return want

    def fit(self, until: int | None = None, stop: StopRequest | None = None) -> list[dict]:
        """Train from the current step to ``until`` (default: the end of the schedule); checkpoints as configured.

        ``stop``: checked after every step; when requested, every worker checkpoints the step it
        finished and returns (``self.interrupted`` is then True). A KeyboardInterrupt inside a
        step raises :class:`TrainingInterrupted` saying how many steps were lost.
        """
        cfg = self.cfg
        end = min(until or cfg.total_steps, cfg.total_steps)
        if self.step >= end:
            return []
        accum = cfg.optim.grad_accum
        loader = make_loader(cfg, self.index, self.rank, self.world, start=self.step * accum, stop=end * accum,
                             workers=self.loader_workers, pin_memory=self.device.type == "cuda", source=self.cache)
        metrics = MetricsLog(cfg.output, self.step) if self.rank == 0 else None
        if self.rank == 0:
            fsio.makedirs(fsio.normalize(cfg.output))
            metrics.drop_from(self.step)          # steps of an earlier run past its last checkpoint
            counts = {t: len(v) for t, v in self.index.items() if v}
            log.info("training %s: steps %d..%d, %d worker(s) x %d item(s)/step (%s), data %s, device %s",
                     cfg.name, self.step, end, self.world, accum, self.strategy, counts, self.device)
        out = []
        with sigint_ignored():                    # loader processes leave Ctrl-C to this one
            it = iter(loader)
        window_t, window_items = time.perf_counter(), 0
        try:
            while self.step < end:
                t0 = time.perf_counter()
                items = [next(it) for _ in range(accum)]
                t_data = time.perf_counter() - t0
                rec = self.train_step(items)
                rec["data_s"] = t_data
                rec["step_s"] = time.perf_counter() - t0
                rec["items_per_s"] = self.world * accum / rec["step_s"]
                out.append(rec)
                self.history.append(rec)
                window_items += self.world * accum
                if metrics is not None:
                    metrics.add({k: v for k, v in rec.items() if k != "rank0_losses"} | {"time": time.time()})
                if self.step % cfg.log_every == 0 or self.step == end:    # the same steps on every rank
                    if self.rank == 0:
                        el = time.perf_counter() - window_t
                        log.info("step %d/%d [%s] loss %.4f lr %.2e | %.2f items/s (data wait %.0f%%)",
                                 self.step, cfg.total_steps, rec["stage"], rec["loss"], rec["lr"],
                                 window_items / el if el else 0.0, 100 * t_data / max(rec["step_s"], 1e-9))
                        window_t, window_items = time.perf_counter(), 0
                        metrics.flush()
                    if self.world > 1:
                        _ray_report(rec)
                if self.step % cfg.checkpoint.every == 0 or self.step == end:
                    self.save()
                if self.step < end and self._stop_agreed(stop):
                    if self.saved_step != self.step:
                        self.save()
                    self.interrupted = True
                    break
        except KeyboardInterrupt:
            last = self.saved_step
            raise TrainingInterrupted(self.step, None, self.step - (last or 0)) from None
        finally:
            if metrics is not None:
                metrics.flush()
            del it
        return out


def _ray_report(rec: dict) -> None:
    """Metrics to Ray Train when running under it (every rank calls this at the same steps)."""
    try:
        import ray.train

        ctx = ray.train.get_context()
        if ctx is None or ctx.get_world_size() <= 1:
            return
    except Exception:   # noqa: BLE001 -- a process group started some other way: nothing to report to
        return
    ray.train.report({k: rec[k] for k in ("step", "loss", "lr", "items_per_s", "grad_norm")})


# ---------------------------------------------------------------------------- entry points


def _prepare_output(cfg: TrainConfig) -> None:
    out = fsio.normalize(cfg.output)
    fsio.makedirs(out)
    fsio.write_atomic(fsio.join(out, "config.json"), json.dumps(
        {"config_hash": cfg.config_hash(), "config": cfg.model_dump(mode="json")}, indent=2).encode())


def check_sampler(cfg: TrainConfig) -> None:
    """Refuse a run whose inference sampler ``upscale`` could not build (SamplerError)."""
    from .sampler import scheduler_config

    path = Path(cfg.base_model) / "scheduler" / "scheduler_config.json"
    base = json.loads(path.read_text()) if path.is_file() else {}
    scheduler_config(cfg.inference.sampler, base, cfg.inference.shift)


def train(cfg: TrainConfig, stop: StopRequest | None = None) -> dict:
    """Run the whole schedule (resuming as configured); returns a summary.

    Ctrl-C (in the main thread) or ``stop.request()`` (from any thread, or the file
    ``OUTPUT/STOP``) stops every worker after its current step with a checkpoint; the summary
    then has ``interrupted: True``. A second Ctrl-C raises :class:`TrainingInterrupted` at once.
    """
    check_sampler(cfg)
    _prepare_output(cfg)
    stop = stop or StopRequest(cfg.output)
    stop.clear()
    t0 = time.time()
    with interrupt_requests_stop(stop):
        if cfg.distributed.workers > 1:
            try:
                res = _fit_ray(cfg)
            except KeyboardInterrupt:
                step, lost = _lost_steps(cfg)
                raise TrainingInterrupted(step, None, lost) from None
        else:
            t = Trainer(cfg)
            start = t.step
            hist = t.fit(stop=stop)
            res = {"workers": 1, "start_step": start, "end_step": t.step,
                   "last_loss": hist[-1]["loss"] if hist else None, "resumed_from": t.resumed_from}
    res["interrupted"] = stop.requested()
    stop.clear()
    res["wall_s"] = round(time.time() - t0, 2)
    done = [(s, d) for s, d, ok in ckpt_mod.list_checkpoints(cfg.output) if ok]
    res["checkpoint"] = done[-1][1] if done else None
    res["end_step"] = done[-1][0] if done else res.get("end_step")
    if res.get("last_loss") is None:
        recs = MetricsLog(cfg.output, 0).records_on_disk()
        res["last_loss"] = recs[-1]["loss"] if recs else None
    return res


def _lost_steps(cfg: TrainConfig) -> tuple[int, int]:
    """(steps recorded, steps past the last complete checkpoint) of an output, after an abort."""
    recs = MetricsLog(cfg.output, 0).records_on_disk()
    step = recs[-1]["step"] + 1 if recs else 0
    done = [s for s, _, ok in ckpt_mod.list_checkpoints(cfg.output) if ok]
    return step, max(0, step - (done[-1] if done else 0))


def run_worker(config: dict) -> None:
    """Ray Train worker loop: one :class:`Trainer` per worker, stopping on the run's stop requests."""
    import ray.train
    import ray.train.torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = TrainConfig.model_validate(config["config"])
    ctx = ray.train.get_context()
    device = ray.train.torch.get_device()
    t = Trainer(cfg, rank=ctx.get_world_rank(), world=ctx.get_world_size(), device=device)
    t.fit(stop=StopRequest(cfg.output))
    torch.distributed.barrier()


def ray_trainer(cfg: TrainConfig, loop=run_worker, loop_config: dict | None = None):
    """The Ray Train ``TorchTrainer`` of a config (workers, GPUs, backend, storage), not yet started.

    ``loop`` runs on every worker with ``loop_config`` (default: :func:`run_worker` with the config).
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ..rayinit import init_ray

    d = cfg.distributed
    init_ray(d.address, d.num_cpus)
    use_gpu = torch.cuda.is_available() if d.use_gpu == "auto" else bool(d.use_gpu)
    if not use_gpu and d.use_gpu == "auto":
        import ray

        use_gpu = ray.cluster_resources().get("GPU", 0) >= d.workers
    backend = d.backend if d.backend != "auto" else ("nccl" if use_gpu else "gloo")
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config if loop_config is not None else {"config": cfg.model_dump(mode="json")},
        scaling_config=ScalingConfig(num_workers=d.workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": d.cpus_per_worker}),
        torch_config=TorchConfig(backend=backend),
        run_config=RunConfig(name=f"train-{cfg.name}", storage_path=fsio.join(fsio.normalize(cfg.output), "ray")),
    )
    return trainer, {"workers": d.workers, "backend": backend, "use_gpu": use_gpu, "strategy": d.strategy}


def _fit_ray(cfg: TrainConfig) -> dict:
    """Run the Ray Train job. ``fit`` runs in a helper thread so that Ray Train does not install its
    own SIGINT handler (which aborts the workers mid-step): Ctrl-C stays ours, a stop request."""
    import threading

    trainer, res = ray_trainer(cfg)
    box: dict = {}

    def run():
        try:
            box["result"] = trainer.fit()
        except BaseException as e:   # noqa: BLE001 -- handed to the main thread
            box["error"] = e

    th = threading.Thread(target=run, name="ray-train-fit", daemon=True)
    th.start()
    while th.is_alive():
        th.join(0.5)                 # short waits: the main thread keeps handling signals
    if "error" in box:
        raise box["error"]
    result = box["result"]
    if result.error:
        raise RuntimeError(f"training failed: {result.error}")
    return res | {"last_loss": (result.metrics or {}).get("loss")}
