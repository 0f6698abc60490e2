"""The classic VSR "BI" degradation: bicubic downscaling by an integer factor.

Uses PIL's antialiased bicubic filter, which matches MATLAB's ``imresize`` (the
filter the BI benchmarks were made with) far better than an unfiltered cubic
interpolation such as OpenCV's ``INTER_CUBIC``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class BicubicParams:
    scale: int


def bicubic_downscale(frames: np.ndarray, scale: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Downscale every frame by ``scale`` (sizes floored) or to ``size`` = (width, height)."""
    t, h, w, _ = frames.shape
    size = tuple(size) if size is not None else (max(1, w // scale), max(1, h // scale))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in frames])


class Bicubic:
    name = "bicubic"

    def __init__(self, scale: int = 4, overrides: dict | None = None):
        if overrides:
            raise ValueError("overrides: the bicubic profile has no parameters to override")
        self.scale = scale

    def sample(self, rng: np.random.Generator, num_frames: int, size: tuple[int, int] | None = None) -> BicubicParams:
        return BicubicParams(scale=self.scale)

    def apply(self, frames: np.ndarray, params: BicubicParams, size: tuple[int, int] | None = None,
              timings: dict | None = None, device=None) -> np.ndarray:
        """The CPU downscale whatever the device (it costs less than a transfer)."""
        return bicubic_downscale(frames, params.scale, size)

    @staticmethod
    def params_from_dict(data: dict) -> BicubicParams:
        return BicubicParams(**data)
