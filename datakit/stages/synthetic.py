"""synthetic: make (or further degrade) the LR clip with a degradation profile.

Reads the current ``lr.mp4`` if an earlier LR stage made one, else ``hr.mp4``;
writes ``lr.mp4`` losslessly and appends the drawn parameters to ``degradations``.
Each clip's random stream is seeded by (``seed``, clip id): reruns are identical.
"""
from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import Field

from .. import degrade, media
from ..records import Record
from .base import Stage, StageConfig


class SyntheticConfig(StageConfig):
    stage: Literal["synthetic"] = "synthetic"
    profile: Literal[tuple(degrade.PROFILES)] = Field("bicubic", description="degradation profile")  # type: ignore[valid-type]
    scale: int = Field(4, ge=1, le=16, description="HR size / LR size")
    seed: int = Field(0, description="base seed; each clip's seed is derived from it and the clip id")


def clip_seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


class Synthetic(Stage):
    name = "synthetic"
    requires = ("extract",)
    Config = SyntheticConfig

    def setup(self) -> None:
        self.degradation = degrade.make(self.config.profile, self.config.scale)

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: SyntheticConfig = self.config
        for r in records:
            frames = media.decode(r.media.get("lr.mp4") or r.media["hr.mp4"])
            seed = clip_seed(cfg.seed, r.key)
            params = self.degradation.sample(np.random.default_rng(seed), frames.shape[0])
            lr = self.degradation.apply(frames, params)
            r.media["lr.mp4"] = media.encode(lr, r.meta["fps"], lossless=True)
            r.meta.setdefault("degradations", []).append(
                {"stage": self.name, "profile": cfg.profile, "seed": seed, "params": degrade.params_dict(params)})
            r.meta["lr"] = {"width": int(lr.shape[2]), "height": int(lr.shape[1]), "frames": int(lr.shape[0]),
                            "codec": "libx264rgb", "lossless": True}
        return records
