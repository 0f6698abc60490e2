"""The drawn parameters of one clip's degradation chain: small frozen dataclasses.

They go into the sample's json whole (``dataclasses.asdict``) and ``config.build``
rebuilds them, so any LR can be re-made from its json. Per-frame values are tuples with
one entry per frame; ``()`` where a family or kind does not use the value.

``VERSION`` changes when the meaning of the parameters (what ``apply`` does with them)
changes; parameters recorded under another version are refused rather than silently
re-made differently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as K

#: 2: unsharp masking, bits per pixel, DiffJPEG, torch "area", mmagic's walk, frame sizes
#: kept until a step needs one size. Parameters without a version are from version 1.
VERSION = 2

Floats = tuple[float, ...]


@dataclass(frozen=True)
class UsmParams:
    applied: bool = False
    kernel: int = 0           # taps of the Gaussian
    sigma: float = 0.0        # 0: OpenCV's rule from the kernel size
    weight: float = 0.0
    threshold: float = 0.0    # 8-bit units


@dataclass(frozen=True)
class BlurParams:
    applied: bool = False
    family: str = ""          # one of kernels.ALL_FAMILIES
    size: int = 0
    sigma_x: Floats = ()      # per frame; () where the family does not use it
    sigma_y: Floats = ()
    theta: Floats = ()        # rotation, radians
    beta: Floats = ()         # betag (generalized) or betap (plateau), as applied to each frame
    omega: Floats = ()        # sinc cut-off, radians per sample

    def kernels(self, idx=None) -> np.ndarray:
        """The float64 kernels of frames ``idx`` (default: all), shape ``(len(idx), size, size)``."""
        def pick(v):
            if not v:
                return None
            a = np.asarray(v, dtype=np.float64)
            return a if idx is None else a[idx]
        return K.make(self.family, self.size, pick(self.sigma_x), pick(self.sigma_y), pick(self.theta),
                      pick(self.beta), pick(self.omega))


@dataclass(frozen=True)
class ResizeParams:
    applied: bool = False
    direction: str = ""       # up, down, keep
    mode: str = ""            # area, bilinear, bicubic, torch_area
    scale: Floats = ()        # per frame
    even: bool = False        # sizes floored to even numbers


@dataclass(frozen=True)
class NoiseParams:
    applied: bool = False
    kind: str = ""            # gaussian or poisson
    gray: bool = False        # same noise in R, G and B
    sigma: Floats = ()        # gaussian: per-frame sigma, 8-bit units
    poisson_scale: Floats = ()  # poisson: per-frame scale
    seed: int = 0             # noise fields: frame t uses the generator seeded with (seed, t)
    sampler: str = "exact"    # exact or fast (ops.standard_normal, ops.poisson_counts)
    units: str = "unit"       # poisson: counts on the [0, 1] (unit) or [0, 255] (byte) image


@dataclass(frozen=True)
class JpegParams:
    applied: bool = False
    quality: Floats = ()      # per frame (integers for libjpeg)
    codec: str = "libjpeg"    # libjpeg or diffjpeg


@dataclass(frozen=True)
class VideoParams:
    applied: bool = False
    codec: str = ""
    bpp: float = 0.0          # drawn budget, bits per pixel of the LR target frame
    bitrate: int = 0          # bits per frame used (= bit/s at 1 frame/s): bpp * LR width * height
    preset: str = ""          # x264 preset (configured, not drawn)


@dataclass(frozen=True)
class OrderParams:
    applied: bool = False
    blur: BlurParams = BlurParams()
    resize: ResizeParams = ResizeParams()
    noise: NoiseParams = NoiseParams()
    jpeg: JpegParams = JpegParams()
    video: VideoParams = VideoParams()


@dataclass(frozen=True)
class FinalParams:
    mode: str = "bicubic"
    resize_first: bool = True
    sinc: BlurParams = BlurParams()
    jpeg: JpegParams = JpegParams()
    video: VideoParams = VideoParams()


@dataclass(frozen=True)
class ChainParams:
    profile: str
    scale: int
    frames: int
    order1: OrderParams
    order2: OrderParams
    final: FinalParams
    usm: UsmParams = UsmParams()
    order2_scale_from: str = "lr"   # order 2's resize scales the LR size ("lr") or the current size
    lr: tuple[int, ...] = ()        # (width, height) the bit rates were computed for; () if unknown
    version: int = 1                # VERSION when drawn (absent in json: 1)
