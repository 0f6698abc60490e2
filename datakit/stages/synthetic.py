"""synthetic: make (or further degrade) the LR clip with a degradation profile.

Reads the current ``lr.mp4`` if an earlier LR stage (``sdedit``) made one, else
``hr.mp4``; writes ``lr.mp4`` losslessly at the HR size / ``scale`` and appends every
drawn parameter to ``degradations`` in the sample json. Each clip's random stream is
seeded by (``seed``, clip id): reruns give byte-identical LR.

``overrides`` changes the profile's ranges and probabilities, nested as the profile's
config (``datakit/degrade/config.py``)::

    - stage: synthetic
      profile: realbasicvsr
      scale: 4
      overrides:
        order1: {noise: {sigma: [1, 15], gray_prob: 0.2}}
        final: {video: {bpp: [5, 24.4], codecs: [libx264], codec_probs: [1]}}   # bits per LR pixel

or from the command line: ``--set synthetic.overrides.order1.noise.sigma=[1,15]``.

With ``num_gpus`` > 0 (or ``device: cuda``) the per-frame maths (sharpening, blur,
resize, noise, DiffJPEG) run batched on the GPU with the same parameter draws; libjpeg
and the video codec stay on the CPU. The json records which backend made the LR.
"""
from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from .. import degrade, media
from ..records import Record
from .base import Stage, StageConfig


class SyntheticConfig(StageConfig):
    stage: Literal["synthetic"] = "synthetic"
    profile: Literal[tuple(degrade.PROFILES)] = Field("bicubic", description="degradation profile")  # type: ignore[valid-type]
    scale: int = Field(4, ge=1, le=16, description="HR size / LR size")
    seed: int = Field(0, description="base seed; each clip's seed is derived from it and the clip id")
    device: str = Field("auto", description="where the per-frame maths run: auto (a CUDA GPU when num_gpus > 0, "
                                            "else the CPU), cpu, or a torch device such as cuda:0")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="profile parameters to change, nested as the profile's config, "
                    "e.g. {order1: {noise: {sigma: [1, 15]}}}")

    @model_validator(mode="after")
    def _valid_overrides(self):
        degrade.make(self.profile, self.scale, self.overrides)  # ValueError("overrides.a.b: why")
        return self


def clip_seed(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") >> 1


def lr_size(meta: dict, frames: np.ndarray, scale: int) -> tuple[int, int]:
    """LR (width, height): the HR size / scale (from the json), else the input's size / scale."""
    hr = meta.get("hr") or {}
    w, h = hr.get("width") or frames.shape[2], hr.get("height") or frames.shape[1]
    return max(1, w // scale), max(1, h // scale)


class Synthetic(Stage):
    name = "synthetic"
    requires = ("extract",)
    after = ("sdedit",)      # synthetic degradations apply to the SDEdit output
    Config = SyntheticConfig
    reproducible = True

    def setup(self) -> None:
        self.degradation = degrade.make(self.config.profile, self.config.scale, self.config.overrides)
        self.device = degrade.resolve_device(self.config.device, self.config.num_gpus)

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: SyntheticConfig = self.config
        for r in records:
            frames = media.decode(r.media.get("lr.mp4") or r.media["hr.mp4"])
            seed = clip_seed(cfg.seed, r.key)
            size = lr_size(r.meta, frames, cfg.scale)
            params = self.degradation.sample(np.random.default_rng(seed), frames.shape[0], size)
            self._make(r, frames, self.degradation, params, size, cfg.profile, seed, cfg.overrides, self.device)
        return records

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """``lr.mp4`` again from the recorded parameters (not re-drawn), on the recorded backend.

        Also re-draws the parameters from the recorded seed: if today's sampler draws others
        (the profile's code changed), the answer says so."""
        entry = next((d for d in reversed(recorded.get("degradations") or []) if d.get("stage") == self.name), None)
        if entry is None:
            raise ValueError("the sample json has no synthetic entry in `degradations`")
        frames = media.decode(record.media.get("lr.mp4") or record.media["hr.mp4"])
        params = degrade.params_from_dict(entry["profile"], entry["params"])
        deg = degrade.make(entry["profile"], params.scale, entry.get("overrides"))
        size = lr_size(record.meta, frames, params.scale)
        why = {}
        dev = entry.get("device") or {"backend": "numpy"}
        device = None
        if dev.get("backend") == "torch":
            try:
                device = degrade.resolve_device(dev.get("device"), 1)
            except ValueError:
                why["lr.mp4"] = f"made with the per-frame maths on {dev.get('device')}, not usable here: rebuilt on the CPU"
            else:
                why["lr.mp4"] = f"made on {dev.get('device')} (torch's noise generator and kernels): compared, not required equal"
        self._make(record, frames, deg, params, size, entry["profile"], entry["seed"], entry.get("overrides") or {},
                   device)
        if "threads" not in (recorded.get("lr") or {}):
            why.setdefault("lr.mp4", "encoded before datakit fixed the lossless encoder's thread count: the same "
                                     "frames, maybe other bytes")
        redrawn = deg.sample(np.random.default_rng(entry["seed"]), frames.shape[0], size)
        if degrade.params_dict(redrawn) != degrade.params_dict(params):
            why["json"] = (f"the {entry['profile']} sampler now draws other parameters from seed {entry['seed']} "
                           "(the stored ones were used)")
        return why

    def _make(self, r: Record, frames: np.ndarray, deg, params, size, profile: str, seed: int, overrides: dict,
              device) -> None:
        lr = deg.apply(frames, params, size=size, device=device)
        r.media["lr.mp4"] = media.encode(lr, r.meta["fps"], lossless=True, preset=degrade.LOSSLESS_PRESET,
                                         threads=media.LOSSLESS_THREADS)
        r.meta.setdefault("degradations", []).append(
            {"stage": self.name, "profile": profile, "seed": seed, "overrides": overrides,
             "device": degrade.device_record(device), "params": degrade.params_dict(params)})
        r.meta["lr"] = {"width": int(lr.shape[2]), "height": int(lr.shape[1]), "frames": int(lr.shape[0]),
                        "codec": "libx264rgb", "lossless": True, "threads": media.LOSSLESS_THREADS}
