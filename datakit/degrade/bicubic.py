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


def bicubic_downscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Downscale every frame by ``scale`` with antialiased bicubic; sizes are floored."""
    t, h, w, _ = frames.shape
    size = (max(1, w // scale), max(1, h // scale))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in frames])


class Bicubic:
    name = "bicubic"

    def __init__(self, scale: int = 4):
        self.scale = scale

    def sample(self, rng: np.random.Generator, num_frames: int) -> BicubicParams:
        return BicubicParams(scale=self.scale)

    def apply(self, frames: np.ndarray, params: BicubicParams) -> np.ndarray:
        return bicubic_downscale(frames, params.scale)
