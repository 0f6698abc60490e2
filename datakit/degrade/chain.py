"""Second-order degradation chain (Real-ESRGAN), clip-consistent (RealBasicVSR).

``SecondOrder.sample`` draws one clip's parameters (``sampling.py``) from the profile's
configuration (``config.py``); ``degrade`` turns them into a plan of steps (``plan.py``)
and runs it on the CPU (NumPy/OpenCV, ``ops.py``) or on a torch device (``gpu.py``).
``apply`` is a pure function of the frames and the parameters; the parameters (a frozen
dataclass) go into the sample json whole and ``params_from_dict`` rebuilds them, so any
LR can be re-made from its json.

Values are on the 8-bit scale; they are clamped after noise and rounded to 8 bits where
a codec needs it (libjpeg, video) and at the end.
"""
from __future__ import annotations

import time

import numpy as np

from . import ops
from . import plan as P
from .config import ChainConfig, build, override
from .params import VERSION, ChainParams, UsmParams
from .sampling import sample_final, sample_order, walk

__all__ = ["SecondOrder", "ChainParams", "degrade", "run_cpu", "walk"]


def _apply_cpu(step: P.FrameStep, x: np.ndarray, t: int) -> np.ndarray:
    if isinstance(step, P.UsmStep):
        return ops.usm(x, step.taps, step.weight, step.threshold)
    if isinstance(step, P.BlurStep):
        return ops.blur(x, step.kernels[t])
    if isinstance(step, P.ResizeStep):
        return ops.resize(x, step.sizes[t], step.mode)
    if isinstance(step, P.NoiseStep):
        rng = ops.frame_rng(step.seed, t)
        if step.kind == "gaussian":
            return ops.gaussian_noise(x, step.levels[t], step.gray, rng, step.sampler)
        return ops.poisson_noise(x, step.levels[t], step.gray, rng, step.sampler, step.units)
    if isinstance(step, P.JpegStep):
        return ops.jpeg_codec(x, step.quality[t], step.codec)
    raise TypeError(f"not a per-frame step: {step!r}")


def run_cpu(frames: np.ndarray, steps: list[P.Step], timings: dict | None = None,
            clock=time.perf_counter) -> np.ndarray:
    """Run a plan over a ``uint8`` clip on the CPU, frame by frame between clip steps.

    ``timings``: seconds per step name are added here, measured with ``clock``.
    """
    clip = list(frames)

    def add(name: str, t0: float) -> None:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + clock() - t0

    i = 0
    while i < len(steps):
        if P.is_clip_step(steps[i]):
            st = steps[i]
            t0 = clock()
            clip = list(ops.video_compress(clip, st.codec, st.bitrate, st.preset))
            add(st.name, t0)
            i += 1
            continue
        j = i
        while j < len(steps) and not P.is_clip_step(steps[j]):
            j += 1
        out = []
        for t, x in enumerate(clip):
            for st in steps[i:j]:
                t0 = clock()
                x = _apply_cpu(st, x, t)
                add(st.name, t0)
            t0 = clock()
            out.append(ops.quantize(x))
            add("quantize", t0)
        clip = out
        i = j
    if len({f.shape for f in clip}) != 1:
        raise RuntimeError("the chain ended with frames of different sizes")
    return np.stack(clip)


def lr_target(frames_shape: tuple[int, ...], scale: int, size: tuple[int, int] | None) -> tuple[int, int]:
    _, h, w, _ = frames_shape
    return tuple(size) if size is not None else (max(1, w // scale), max(1, h // scale))  # type: ignore[return-value]


def degrade(frames: np.ndarray, params: ChainParams, size: tuple[int, int] | None = None,
            timings: dict | None = None, device=None, clock=time.perf_counter) -> np.ndarray:
    """Degrade ``(T, H, W, 3)`` uint8 frames to the LR ``size`` (w, h; default: input / scale).

    ``device``: None or "cpu" for the NumPy/OpenCV path, else a torch device (``gpu.py``).
    ``timings``: seconds per step are added to it, measured with ``clock``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    target = lr_target(frames.shape, params.scale, size)
    P.check(params, t, target)
    steps = P.build(params, (w, h), target)
    if device is None or str(device) == "cpu":
        return run_cpu(frames, steps, timings, clock)
    from .gpu import run_torch

    return run_torch(frames, steps, device, timings, clock=clock)


class SecondOrder:
    """A degradation profile built on the second-order chain; subclasses set ``name`` and ``defaults``."""

    name = "realesrgan"
    defaults = ChainConfig()

    def __init__(self, scale: int = 4, overrides: dict | None = None):
        if int(scale) < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = int(scale)
        self.config: ChainConfig = override(self.defaults, overrides, path="overrides")

    def sample(self, rng: np.random.Generator, num_frames: int, size: tuple[int, int] | None = None) -> ChainParams:
        """Draw one clip's parameters; ``size`` = the LR (width, height), which fixes the video bit rates."""
        if num_frames < 1:
            raise ValueError("a clip needs at least one frame")
        c = self.config
        lr = (int(size[0]), int(size[1])) if size is not None else None
        u = c.usm
        usm = UsmParams(True, u.kernel, u.sigma, u.weight, u.threshold) if u.enabled else UsmParams()
        return ChainParams(self.name, self.scale, int(num_frames), sample_order(rng, c.order1, num_frames, lr),
                           sample_order(rng, c.order2, num_frames, lr), sample_final(rng, c.final, num_frames, lr),
                           usm=usm, order2_scale_from=c.order2_scale_from, lr=lr or (), version=VERSION)

    def apply(self, frames: np.ndarray, params: ChainParams, size: tuple[int, int] | None = None,
              timings: dict | None = None, device=None) -> np.ndarray:
        """Degrade ``(T, H, W, 3)`` uint8 frames to the LR ``size`` (width, height; default: input / scale)."""
        return degrade(frames, params, size, timings, device)

    @staticmethod
    def params_from_dict(data: dict) -> ChainParams:
        return build(ChainParams, data)
