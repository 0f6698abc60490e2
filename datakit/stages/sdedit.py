"""sdedit: the intermediate LR x' made by the text-to-video base model (SPEC §3.7; paper §3.3, A.4).

Each clip's ``hr.mp4`` (or an earlier ``lr.mp4``) is resized to a base resolution the model
generates directly, VAE-encoded, noised to the start of step N − k of an N-step schedule
(k uniform in ``[K1, K2]``, drawn per clip), denoised for exactly k steps with the clip's
caption and decoded. The result is stored losslessly as ``lr.mp4`` at the base resolution
with the clip's frame count; ``synthetic`` then degrades it further. Every setting (model id,
N, k, σ_start, guidance, shift, seed, base size) goes to ``meta["sdedit"]`` and to the
``degradations`` list. Clips made with a tiny random model are flagged ``synthetic_models``.

Runs as a Ray actor pool; each actor loads the model once. On a GPU cluster give every
actor a whole GPU and size the pool to the GPUs::

    - stage: sdedit
      model: /models/Wan2.1-T2V-1.3B-Diffusers   # local diffusers directory
      preset: light            # k in [3, 7] of 50; heavy: [13, 17]; or k_range: [K1, K2]
      steps: 50
      guidance: 5.0
      num_gpus: 1              # default 0 (CPU); set 1 per actor on GPU machines
      concurrency: 8           # actors = GPUs to use
      batch_size: 4            # clips per call; clips of one base shape share transformer calls

``model`` is a local path read by every actor: on a cluster it must exist on each node (a shared
file system or the same path everywhere); the driver checks it before the job starts.
``device: auto`` picks CUDA when the actor sees a GPU; the transformer and text encoder then
run in bf16 (``dtype``), the VAE in float32 (``vae_dtype``). The CPU path works for small
models (the tiny one of ``datakit models tiny``); a 1.3B model on CPU is impractically slow.

Memory: ``batch_size`` is an upper bound. Each call runs as many clips of one base shape
together as fit the free memory of the actor's device (or ``memory_budget_gb``), from the
backend's estimate; a clip that cannot fit alone is rejected (``does_not_fit``) with what it
needs and what is free, and a batch that still runs out of memory is halved, a lone clip that
does becoming an ``out_of_memory`` reject: the error never reaches Ray, so no task is retried
into the same failure. ``vae_tiling: true`` runs the VAE over overlapping tiles
(``vae_tile`` / ``vae_tile_stride`` pixels) for base resolutions whose whole-frame VAE pass
does not fit; at Wan 2.1's 832x480 it is rarely needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .. import media
from ..records import Record
from .base import Stage, StageConfig


class SDEditConfig(StageConfig):
    stage: Literal["sdedit"] = "sdedit"
    model: str = Field(description="local diffusers directory of the text-to-video base model")
    backend: str = Field("auto", description="SDEdit backend (auto: from model_index.json; known: wan2.1)")
    model_id: str | None = Field(None, description="id recorded in the json (default: the directory name)")
    preset: Literal["light", "heavy"] = Field("light", description="k range preset (per 50 steps, scaled to steps)")
    k_range: tuple[int, int] | None = Field(None, description="[K1, K2]: k is uniform on these integers; wins over preset")
    steps: int = Field(50, ge=1, le=1000, description="N: steps of the full schedule")
    guidance: float = Field(5.0, ge=0, description="classifier-free guidance scale (> 1 doubles the compute)")
    shift: float | None = Field(None, gt=0, description="scheduler shift (default: the model's, Wan 2.1: 3.0)")
    negative_prompt: str = Field("", description="prompt of the unconditional branch")
    seed: int = Field(0, description="base seed; each clip's seed is derived from it and the clip id")
    base_area: int | None = Field(832 * 480, ge=256, description="pixels of the base resolution, aspect kept")
    base_width: int | None = Field(None, ge=16, description="fixed base width (with or without base_height)")
    base_height: int | None = Field(None, ge=16, description="fixed base height (with or without base_width)")
    max_sequence_length: int = Field(512, ge=8, description="text tokens (Wan 2.1: 512)")
    device: str = Field("auto", description="auto (cuda if visible), cpu, cuda[:N]")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="denoiser and text encoder dtype (auto: bf16 on GPU, float32 on CPU)")
    vae_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    memory_budget_gb: float | None = Field(
        None, gt=0, description="GiB a call may use besides the model (default: the device's free memory)")
    vae_tiling: bool = Field(False, description="VAE encode/decode over overlapping tiles (large base sizes)")
    vae_tile: int = Field(256, ge=16, description="VAE tile side in pixels (with vae_tiling)")
    vae_tile_stride: int = Field(192, ge=8, description="pixels between VAE tile origins (overlap = tile - stride)")
    member: Literal["auto", "hr.mp4", "lr.mp4"] = Field(
        "auto", description="input member (auto: lr.mp4 if an earlier LR stage made one, else hr.mp4)")

    @model_validator(mode="after")
    def _valid(self):
        from ..sdedit.core import k_range

        k_range(self.preset, self.k_range, self.steps)   # ValueError names the problem
        if not (self.base_area or self.base_width or self.base_height):
            raise ValueError("give base_area, or base_width and/or base_height")
        self.tiling()                                     # ValueError for bad tile sizes
        return self

    def tiling(self):
        from ..sdedit.vae import VaeTiling

        return VaeTiling(self.vae_tile, self.vae_tile_stride) if self.vae_tiling else None


class SDEdit(Stage):
    name = "sdedit"
    requires = ("extract",)
    uses_model = True
    Config = SDEditConfig
    reproducible = True

    @classmethod
    def preflight(cls, cfg: SDEditConfig) -> list[str]:
        """Problems that would fail every clip (a missing model directory), checked up front."""
        from ..sdedit.base import ModelError, detect_backend

        p = Path(cfg.model)
        if not p.is_dir():
            return [f"model directory {cfg.model} not found "
                    f"(write a tiny test model with `datakit models tiny DIR`)"]
        if cfg.backend == "auto":
            try:
                detect_backend(p)
            except ModelError as e:
                return [str(e)]
        return []

    def setup(self) -> None:
        from ..sdedit import SDEditor, SDEditParams, load_model

        cfg: SDEditConfig = self.config
        model = load_model(cfg.model, cfg.backend, device=cfg.device, dtype=cfg.dtype, vae_dtype=cfg.vae_dtype,
                           model_id=cfg.model_id, max_sequence_length=cfg.max_sequence_length,
                           vae_tiling=cfg.tiling())
        self.editor = SDEditor(model, SDEditParams(
            steps=cfg.steps, preset=cfg.preset, k_range=cfg.k_range, guidance=cfg.guidance, shift=cfg.shift,
            negative_prompt=cfg.negative_prompt, base_area=cfg.base_area, base_width=cfg.base_width,
            base_height=cfg.base_height), memory_budget_gb=cfg.memory_budget_gb)

    def process_batch(self, records: list[Record]) -> list[Record]:
        from ..sdedit import Item, clip_seed

        cfg: SDEditConfig = self.config
        items = [Item(frames=media.decode(r.media[self._member(r)]), prompt=r.meta.get("caption") or "",
                      seed=clip_seed(cfg.seed, r.key)) for r in records]
        self.editor.run(items)
        for r, it in zip(records, items):
            if it.reason:                                  # did not fit: a reject with the reason, not an error
                r.rejected(self.name, it.reason, it.error)
                continue
            self._store(r, it, self.editor)
        return records

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """x' again with the recorded k, seed, steps, guidance, shift, negative prompt and base size.

        The clip was denoised in a batch; transformer calls of another batch size may round
        differently, so the rebuild runs the same batch make-up (``batch_k``, ``batch_index``), with
        copies of the clip standing in for the others: each clip's result depends only on its own
        rows of the batch. On a CPU in float32 that is bit-identical; on a GPU (or if either run
        used one, or another dtype) the kernels do not promise that: the difference is reported."""
        from ..sdedit import Item, SDEditor, SDEditParams

        rec = recorded.get("sdedit")
        if not rec:
            raise ValueError("the sample json has no `sdedit` record")
        editor = SDEditor(self.editor.model, SDEditParams(
            steps=rec["steps"], preset=rec.get("preset"), k_range=None if rec.get("preset") else tuple(rec["k_range"]),
            guidance=rec["guidance"], shift=rec["shift"], negative_prompt=rec.get("negative_prompt", ""),
            base_area=None, base_width=rec["base"]["width"], base_height=rec["base"]["height"]),
            memory_budget_gb=self.config.memory_budget_gb)
        frames = media.decode(record.media[self._member(record)])
        ks, at = rec.get("batch_k") or [rec["k"]], rec.get("batch_index", 0)
        items = [Item(frames=frames, prompt=record.meta.get("caption") or "", seed=rec["seed"], k=k) for k in ks]
        items[at].k = rec["k"]
        editor.run(items, max_batch=len(items))
        it = items[at]
        if it.reason:
            raise RuntimeError(it.error)
        self._store(record, it, editor)
        why = []
        now = str(editor.model.device)
        was = rec.get("device", "cpu" if rec.get("dtype") == "float32" else "a GPU")
        if not now.startswith("cpu") or not str(was).startswith("cpu"):
            why.append(f"denoised on {was}, rebuilt on {now}: GPU kernels are not bit-reproducible")
        if rec.get("dtype") != record.meta["sdedit"].get("dtype"):
            why.append(f"made in {rec.get('dtype')}, rebuilt in {record.meta['sdedit'].get('dtype')}")
        if rec.get("batch", 1) != record.meta["sdedit"].get("batch"):
            why.append(f"made in a batch of {rec.get('batch', 1)} clips, rebuilt in one of "
                       f"{record.meta['sdedit'].get('batch')}")
        return {"lr.mp4": "; ".join(why)} if why else {}

    def _member(self, r: Record) -> str:
        m = self.config.member
        return m if m != "auto" else ("lr.mp4" if "lr.mp4" in r.media else "hr.mp4")

    def _store(self, r: Record, it, editor) -> None:
        from .. import tiny

        rec = it.record
        r.media["lr.mp4"] = media.encode(it.out, r.meta["fps"], lossless=True, preset="veryfast",
                                         threads=media.LOSSLESS_THREADS)
        r.meta["sdedit"] = rec
        r.meta.setdefault("degradations", []).append(
            {"stage": self.name, "profile": rec["preset"] or "custom", "seed": it.seed, "params": rec})
        r.meta["lr"] = {"width": int(it.out.shape[2]), "height": int(it.out.shape[1]),
                        "frames": int(it.out.shape[0]), "codec": "libx264rgb", "lossless": True,
                        "threads": media.LOSSLESS_THREADS}
        if editor.model.synthetic:
            tiny.mark_record(r.meta, "sdedit")
