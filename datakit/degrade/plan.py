"""From one clip's drawn parameters to the list of steps that degrade it.

A plan is what every backend (``chain.run_cpu`` with NumPy/OpenCV, ``gpu.run_torch`` on
a torch device) executes: per-frame steps with one parameter entry per frame, and clip
steps (the video codec) that need the whole clip. Sizes are resolved here, from the input
size and the LR target, so both backends make frames of exactly the same sizes.

The order (each step where its parameters say it was drawn):

1. unsharp masking of the input;
2. order 1: blur -> resize (scale of the input size) -> noise -> JPEG -> video codec;
3. order 2: the same, its resize scaling the LR size (Real-ESRGAN) or the size of the
   clip's first frame after order 1 (mmagic);
4. final group, in the drawn order: [resize to the LR size -> sinc filter] and [JPEG -> video codec].

Frames keep their own sizes (a random walk of the resize scale) until a step needs one
size: the video codec (the first frame's size, as the reference's encoder does) or the
final resize.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from . import ops
from .params import VERSION, BlurParams, ChainParams, JpegParams, OrderParams, VideoParams
from .sampling import bits_per_frame

Size = tuple[int, int]


@dataclass(frozen=True)
class UsmStep:
    name: str
    taps: np.ndarray          # 1-D Gaussian, float32
    weight: float
    threshold: float


@dataclass(frozen=True)
class BlurStep:
    name: str
    kernels: np.ndarray       # (T, k, k) float64, one per frame


@dataclass(frozen=True)
class ResizeStep:
    name: str
    sizes: tuple[Size, ...]   # (width, height) per frame
    mode: str


@dataclass(frozen=True)
class NoiseStep:
    name: str
    kind: str                 # gaussian or poisson
    levels: np.ndarray        # sigma or poisson scale per frame
    gray: bool
    seed: int
    sampler: str
    units: str


@dataclass(frozen=True)
class JpegStep:
    name: str
    quality: np.ndarray       # per frame
    codec: str


@dataclass(frozen=True)
class VideoStep:
    """A clip step: the whole clip through one video stream (on the CPU for every backend)."""
    name: str
    codec: str
    bitrate: int              # bits per frame
    preset: str


FrameStep = Union[UsmStep, BlurStep, ResizeStep, NoiseStep, JpegStep]
Step = Union[FrameStep, VideoStep]


def is_clip_step(step: Step) -> bool:
    return isinstance(step, VideoStep)


def _blur(name: str, b: BlurParams) -> list[Step]:
    return [BlurStep(name, b.kernels())] if b.applied else []


def _codecs(prefix: str, jp: JpegParams, vid: VideoParams, target: Size) -> list[Step]:
    steps: list[Step] = []
    if jp.applied:
        steps.append(JpegStep(f"{prefix}.jpeg", np.asarray(jp.quality, dtype=np.float64), jp.codec))
    if vid.applied:
        bits = vid.bitrate or bits_per_frame(vid.bpp, target)
        steps.append(VideoStep(f"{prefix}.video", vid.codec, bits, vid.preset or "medium"))
    return steps


def _order(p: OrderParams, prefix: str, base: tuple[float, float], target: Size) -> list[Step]:
    if not p.applied:
        return []
    steps = _blur(f"{prefix}.blur", p.blur)
    if p.resize.applied:
        sizes = tuple(ops.scaled_size(base, s, p.resize.even) for s in p.resize.scale)
        steps.append(ResizeStep(f"{prefix}.resize", sizes, p.resize.mode))
    nz = p.noise
    if nz.applied:
        levels = nz.sigma if nz.kind == "gaussian" else nz.poisson_scale
        steps.append(NoiseStep(f"{prefix}.noise", nz.kind, np.asarray(levels, dtype=np.float64), nz.gray,
                               nz.seed, nz.sampler, nz.units))
    return steps + _codecs(prefix, p.jpeg, p.video, target)


def _first_frame_size(p: OrderParams, size: Size) -> Size:
    if p.applied and p.resize.applied:
        return ops.scaled_size(size, p.resize.scale[0], p.resize.even)
    return size


def check(params: ChainParams, frames: int, target: Size) -> None:
    if params.version != VERSION:
        raise ValueError(f"these degradation parameters are of version {params.version} (an older datakit); "
                         f"this version re-makes version {VERSION} only: draw them again")
    if frames != params.frames:
        raise ValueError(f"parameters were drawn for {params.frames} frames, the clip has {frames}")
    if params.lr and tuple(params.lr) != tuple(target):
        raise ValueError(f"parameters were drawn for an LR size of {params.lr[0]}x{params.lr[1]} (their bit "
                         f"rates depend on it), asked for {target[0]}x{target[1]}")


def build(params: ChainParams, size: Size, target: Size) -> list[Step]:
    """The steps that degrade frames of ``size`` = (w, h) to the LR ``target`` = (w, h)."""
    steps: list[Step] = []
    u = params.usm
    if u.applied:
        steps.append(UsmStep("usm", ops.gaussian_taps(u.kernel, u.sigma), u.weight, u.threshold))
    steps += _order(params.order1, "order1", size, target)
    base = target if params.order2_scale_from == "lr" else _first_frame_size(params.order1, size)
    steps += _order(params.order2, "order2", base, target)
    f = params.final
    resize = [ResizeStep("final.resize", (tuple(target),) * params.frames, f.mode)] + _blur("final.sinc", f.sinc)
    codecs = _codecs("final", f.jpeg, f.video, target)
    return steps + (resize + codecs if f.resize_first else codecs + resize)
