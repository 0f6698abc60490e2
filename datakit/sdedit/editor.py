"""SDEdit of whole clips: settings, seeding, grouping by shape, and what gets recorded.

:class:`SDEditor` is what the ``sdedit`` stage and the ``datakit sdedit`` verb share: give it
uint8 HR frames, a caption and a seed per clip; it returns x' at the base resolution with
the input's frame count, and a JSON-safe record of every setting that made it.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np

from . import core
from .base import VideoDiffusionModel


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
    out: np.ndarray | None = None
    record: dict = field(default_factory=dict)


class SDEditor:
    def __init__(self, model: VideoDiffusionModel, params: SDEditParams):
        self.model = model
        self.params = params
        self.k1, self.k2 = params.resolved_range()
        self._neg: dict = {}

    def plan(self, frames_shape: tuple[int, ...]) -> tuple[tuple[int, int], int]:
        """((w, h), frames) the model runs at for HR frames of ``frames_shape`` (T, H, W, 3)."""
        p, m = self.params, self.model
        t, h, w = frames_shape[:3]
        size = core.base_size(w, h, m.spatial_multiple, p.base_width, p.base_height, p.base_area)
        return size, core.valid_frames(t, m.temporal_stride)

    def run(self, items: list[Item], max_batch: int | None = None) -> list[Item]:
        """SDEdit every item; clips with equal base shapes share transformer calls."""
        p, m = self.params, self.model
        groups: dict[tuple, list[Item]] = {}
        for it in items:
            size, nf = self.plan(it.frames.shape)
            groups.setdefault((size, nf), []).append(it)
        for (size, nf), group in groups.items():
            step = max_batch or len(group)
            for s in range(0, len(group), step):
                chunk = group[s:s + step]
                clips = [core.Clip(video=core.to_model_video(it.frames, size, nf, m.device), prompt=it.prompt,
                                   k=core.draw_k(self.k1, self.k2, it.seed), seed=it.seed) for it in chunk]
                outs = core.run(m, clips, p.steps, p.guidance, p.shift, p.negative_prompt, self._neg)
                sched = m.scheduler_info(m.make_scheduler(p.steps, p.shift))
                for it, c, o in zip(chunk, clips, outs):
                    t = it.frames.shape[0]
                    it.out = core.to_uint8(o[0])[:t]
                    it.record = {
                        "backend": m.backend, "model_id": m.model_id, "synthetic_model": m.synthetic,
                        "steps": p.steps, "k": c.k, "k_range": [self.k1, self.k2],
                        "preset": None if (p.k is not None or p.k_range is not None) else p.preset,
                        "sigma_start": c.info["sigma_start"], "timestep_start": c.info["timestep_start"],
                        "guidance": p.guidance, "shift": sched["shift"], "scheduler": sched["class"],
                        "negative_prompt": p.negative_prompt, "seed": it.seed,
                        "base": {"width": size[0], "height": size[1], "frames": t},
                        "padded_frames": nf - t, "dtype": str(m.dtype).replace("torch.", ""),
                    }
        return items

    def describe(self) -> dict:
        return {**asdict(self.params), "k_range": [self.k1, self.k2], **self.model.describe()}
