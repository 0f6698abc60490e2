"""SDEdit of whole clips: settings, seeding, grouping by shape, batches that fit, and what gets recorded.

:class:`SDEditor` is what the ``sdedit`` stage and the ``datakit sdedit`` verb share: give it
uint8 HR frames, a caption and a seed per clip; it returns x' at the base resolution with
the input's frame count, and a JSON-safe record of every setting that made it.

Memory (:mod:`.memory`): clips of one base shape run in batches as large as the memory
budget allows (free device memory, or ``memory_budget_gb``), from the backend's estimate of
what a call needs. A clip that cannot fit alone is refused before anything runs
(``it.reason = "does_not_fit"``, ``it.error`` says how much it needs, how much is free and what
to change). If a batch still runs out of memory, it is halved (and later batches of that shape
stay at the smaller size); a clip that runs out of memory alone gets ``reason = "out_of_memory"``.
Either way the error stays here: the caller sees a rejected item, never an exception to retry.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from . import core, memory
from .base import ModelError, VideoDiffusionModel


def clip_seed(seed: int, key: str) -> int:
    """A clip's own seed from the run's seed and the clip id (63 bits)."""
    return int.from_bytes(hashlib.sha256(f"sdedit:{seed}:{key}".encode()).digest()[:8], "little") >> 1


@dataclass
class SDEditParams:
    steps: int = 50                       # N: steps of the full schedule
    preset: str | None = "light"          # k range preset (core.PRESETS), scaled to `steps`
    k_range: tuple[int, int] | None = None  # explicit [K1, K2]; wins over the preset
    k: int | None = None                  # a fixed k; wins over both
    guidance: float = 5.0                 # classifier-free guidance; > 1 runs cond + uncond
    shift: float | None = None            # scheduler shift; None keeps the model's (Wan 2.1: 3.0)
    negative_prompt: str = ""
    base_area: int | None = 832 * 480     # pixels of the base resolution (aspect kept)
    base_width: int | None = None
    base_height: int | None = None

    def resolved_range(self) -> tuple[int, int]:
        if self.k is not None:
            return core.k_range(None, (self.k, self.k), self.steps)
        return core.k_range(self.preset, self.k_range, self.steps)


@dataclass
class Item:
    frames: np.ndarray    # uint8 (T, H, W, 3)
    prompt: str
    seed: int             # the clip's own seed (draws k and the noise)
    k: int | None = None  # a fixed k for this clip instead of the draw (a rebuild: the recorded k)
    out: np.ndarray | None = None
    record: dict = field(default_factory=dict)
    reason: str | None = None    # set when the clip was not made: "does_not_fit" or "out_of_memory"
    error: str | None = None     # the one-line explanation


class SDEditor:
    def __init__(self, model: VideoDiffusionModel, params: SDEditParams, memory_budget_gb: float | None = None):
        """``memory_budget_gb``: what a call may use besides the loaded model (default: what the device has free)."""
        self.model = model
        self.params = params
        self.k1, self.k2 = params.resolved_range()
        self.memory_budget_gb = memory_budget_gb
        self._neg: dict = {}
        self._cap: dict[tuple, int] = {}       # base shape -> batch size that ran out of memory, halved

    def plan(self, frames_shape: tuple[int, ...]) -> tuple[tuple[int, int], int]:
        """((w, h), frames) the model runs at for HR frames of ``frames_shape`` (T, H, W, 3)."""
        p, m = self.params, self.model
        t, h, w = frames_shape[:3]
        size = core.base_size(w, h, m.spatial_multiple, p.base_width, p.base_height, p.base_area)
        if m.max_side and max(size) > m.max_side:
            raise ModelError(f"base size {size[0]}x{size[1]} is beyond what {m.model_id} can generate (at most "
                             f"{m.max_side} px a side); lower base_area, base_width or base_height "
                             "(sdedit verb: --base-area / --base WxH)")
        return size, core.valid_frames(t, m.temporal_stride)

    def batch_limit(self, size: tuple[int, int], frames: int, wanted: int) -> tuple[int, str | None]:
        """(clips per call, None), or (0, why) when one clip of this shape cannot fit the budget."""
        m = self.model
        limit = min(wanted, self._cap.get((size, frames), wanted))
        need = m.memory_need(size, frames, self.params.guidance)
        budget = memory.available(m.device, self.memory_budget_gb)
        if need is None:
            return limit, None
        n = memory.plan_batch(need, budget, limit)
        if n == 0:
            return 0, memory.refusal(
                f"SDEdit of one {frames}-frame {size[0]}x{size[1]} clip", need, budget,
                self.memory_budget_gb is not None, m.device,
                "lower the base resolution (base_area / base_width / base_height), tile the VAE (vae_tiling), "
                "use a smaller model or a larger device")
        return n, None

    def run(self, items: list[Item], max_batch: int | None = None) -> list[Item]:
        """SDEdit every item; clips with equal base shapes share transformer calls, in batches that fit."""
        groups: dict[tuple, list[Item]] = {}
        for it in items:
            size, nf = self.plan(it.frames.shape)
            groups.setdefault((size, nf), []).append(it)
        for (size, nf), group in groups.items():
            todo = list(group)
            while todo:
                n, why = self.batch_limit(size, nf, min(max_batch or len(todo), len(todo)))
                if n == 0:
                    for it in todo:
                        it.reason, it.error = "does_not_fit", why
                    break
                self._run_fitting(todo[:n], size, nf)
                todo = todo[n:]
        return items

    def _run_fitting(self, chunk: list[Item], size: tuple[int, int], nf: int) -> None:
        """Run ``chunk``; on an out-of-memory error halve it (and remember), down to one clip."""
        m = self.model
        try:
            self._run_chunk(chunk, size, nf)
            return
        except Exception as e:    # noqa: BLE001 -- only allocation failures are handled, the rest re-raised
            if not memory.is_oom(e):
                raise
            msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        memory.release(m.device)   # outside the except block: the failed call's frames are gone
        if len(chunk) == 1:
            chunk[0].reason = "out_of_memory"
            chunk[0].error = (f"SDEdit of one {nf}-frame {size[0]}x{size[1]} clip ran out of memory on {m.device} "
                              f"({msg}); lower the base resolution, tile the VAE (vae_tiling) or lower "
                              f"memory_budget_gb so that fewer clips share a call")
            return
        half = len(chunk) // 2
        self._cap[(size, nf)] = min(self._cap.get((size, nf), half), half)
        self._run_fitting(chunk[:half], size, nf)
        self._run_fitting(chunk[half:], size, nf)

    def _run_chunk(self, chunk: list[Item], size: tuple[int, int], nf: int) -> None:
        p, m = self.params, self.model
        clips = [core.Clip(video=core.to_model_video(it.frames, size, nf, m.device), prompt=it.prompt,
                           k=core.draw_k(self.k1, self.k2, it.seed) if it.k is None else it.k, seed=it.seed)
                 for it in chunk]
        outs = core.run(m, clips, p.steps, p.guidance, p.shift, p.negative_prompt, self._neg)
        sched = m.scheduler_info(m.make_scheduler(p.steps, p.shift))
        for j, (it, c, o) in enumerate(zip(chunk, clips, outs)):
            t = it.frames.shape[0]
            it.out = core.to_uint8(o[0])[:t]
            it.reason = it.error = None
            it.record = {
                "backend": m.backend, "model_id": m.model_id, "synthetic_model": m.synthetic, "device": str(m.device),
                "steps": p.steps, "k": c.k, "k_range": [self.k1, self.k2],
                "preset": None if (p.k is not None or p.k_range is not None) else p.preset,
                "sigma_start": c.info["sigma_start"], "timestep_start": c.info["timestep_start"],
                "guidance": p.guidance, "shift": sched["shift"], "scheduler": sched["class"],
                "negative_prompt": p.negative_prompt, "seed": it.seed,
                "base": {"width": size[0], "height": size[1], "frames": t},
                "padded_frames": nf - t, "dtype": str(m.dtype).replace("torch.", ""),
                "batch": len(chunk),
                # the batch's make-up: a CPU rebuild with the same shapes at every step is bit-identical
                "batch_k": [x.k for x in clips], "batch_index": j,
            }
            if getattr(m, "vae_tiling", None) is not None:
                it.record["vae_tiling"] = m.vae_tiling.describe()

    def describe(self) -> dict:
        return {**asdict(self.params), "k_range": [self.k1, self.k2], **self.model.describe()}
