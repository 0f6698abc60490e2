"""Second-order degradation chain (Real-ESRGAN), clip-consistent (RealBasicVSR).

For one clip, ``sample`` draws every choice once: kernel family and size, resize
direction and interpolation, noise kind and colour, codec; and a start value for every
continuous parameter, which a per-frame random walk then moves (frame ``t + 1`` =
frame ``t`` + uniform(-step, step), clipped to the range). Steps of 0 keep the value
of frame 0 on every frame. Noise fields are new on each frame (from a recorded seed);
nothing else jumps between frames. ``apply`` is a pure function of the frames and
these parameters; the parameters (a frozen dataclass) go into the sample json whole,
and ``params_from_dict`` rebuilds them, so any LR can be re-made from its json.

The chain (each step runs with its probability):

1. order 1 on the input: blur -> resize (scale of the input size) -> noise -> JPEG -> video codec;
2. order 2 (with ``order2.prob``): the same steps, the resize relative to the LR size;
3. final group, in random order: [resize to the LR size -> sinc filter] and [JPEG -> video codec].

Values are on the 8-bit scale; they are clamped after noise and rounded to 8 bits
where a codec needs it (JPEG, video) and at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import kernels as K
from . import ops
from .config import (BlurConfig, ChainConfig, FinalConfig, JpegConfig, NoiseConfig, OrderConfig,
                     ResizeConfig, VideoConfig, build, override)

Floats = tuple[float, ...]


# ---- drawn parameters -------------------------------------------------------------------------

@dataclass(frozen=True)
class BlurParams:
    applied: bool = False
    family: str = ""          # one of kernels.ALL_FAMILIES
    size: int = 0
    sigma_x: Floats = ()      # per frame; () where the family does not use it
    sigma_y: Floats = ()
    theta: Floats = ()        # rotation, radians
    beta: Floats = ()         # betag (generalized) or betap (plateau)
    omega: Floats = ()        # sinc cut-off, radians per sample

    def kernels(self, idx) -> np.ndarray:
        """The kernels of frames ``idx``, shape ``(len(idx), size, size)``."""
        def pick(v):
            return np.asarray(v, dtype=np.float64)[idx] if v else None
        return K.make(self.family, self.size, pick(self.sigma_x), pick(self.sigma_y), pick(self.theta),
                      pick(self.beta), pick(self.omega))


@dataclass(frozen=True)
class ResizeParams:
    applied: bool = False
    direction: str = ""       # up, down, keep
    mode: str = ""            # area, bilinear, bicubic
    scale: Floats = ()        # per frame


@dataclass(frozen=True)
class NoiseParams:
    applied: bool = False
    kind: str = ""            # gaussian or poisson
    gray: bool = False        # same noise in R, G and B
    sigma: Floats = ()        # gaussian: per-frame sigma, 8-bit units
    poisson_scale: Floats = ()  # poisson: per-frame scale
    seed: int = 0             # noise fields: frame t uses the generator seeded with (seed, t)


@dataclass(frozen=True)
class JpegParams:
    applied: bool = False
    quality: tuple[int, ...] = ()   # per frame


@dataclass(frozen=True)
class VideoParams:
    applied: bool = False
    codec: str = ""
    bitrate: int = 0          # bits per frame at the LR size (scaled by area elsewhere)
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


# ---- sampling -----------------------------------------------------------------------------------

def walk(rng: np.random.Generator, start: float, step: float, bounds, n: int) -> Floats:
    """``n`` values: ``start``, then each previous value plus uniform(-step, step), clipped to ``bounds``.

    Values are rounded to 6 decimals (compact json) and clipped again, so the recorded
    values are exactly the ones applied.
    """
    lo, hi = bounds
    v = np.full(n, float(start))
    if step > 0 and n > 1:
        d = rng.uniform(-step, step, n - 1)
        for i in range(1, n):
            v[i] = min(max(v[i - 1] + d[i - 1], lo), hi)
    v = np.clip(np.round(v, 6), lo, hi)
    return tuple(float(x) for x in v)


def _pick(rng: np.random.Generator, options, probs):
    return options[int(rng.choice(len(options), p=np.asarray(probs, dtype=np.float64) / sum(probs)))]


def _split_beta(rng: np.random.Generator, bounds) -> float:
    """Real-ESRGAN's shape draw: below 1 or above 1 with equal odds (when the range straddles 1)."""
    lo, hi = bounds
    if lo <= 1.0 <= hi:
        return float(rng.uniform(lo, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, hi))
    return float(rng.uniform(lo, hi))


def sample_blur(rng: np.random.Generator, cfg: BlurConfig, n: int) -> BlurParams:
    if not rng.random() < cfg.prob:
        return BlurParams()
    size = int(cfg.sizes[int(rng.integers(len(cfg.sizes)))])
    if rng.random() < cfg.sinc_prob:
        om = cfg.omega_range(size)
        return BlurParams(True, "sinc", size, omega=walk(rng, rng.uniform(*om), cfg.omega_step, om, n))
    family = _pick(rng, cfg.families, cfg.family_probs)
    iso = family in ("iso", "generalized_iso", "plateau_iso")
    sx = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
    sy = theta = beta = ()
    if not iso:
        sy = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
        theta = walk(rng, rng.uniform(*cfg.rotation), cfg.rotation_step, cfg.rotation, n)
    if family.startswith("generalized"):
        beta = walk(rng, _split_beta(rng, cfg.betag), cfg.betag_step, cfg.betag, n)
    elif family.startswith("plateau"):
        beta = walk(rng, _split_beta(rng, cfg.betap), cfg.betap_step, cfg.betap, n)
    return BlurParams(True, family, size, sx, sy, theta, beta)


def sample_resize(rng: np.random.Generator, cfg: ResizeConfig, n: int) -> ResizeParams:
    if not rng.random() < cfg.prob:
        return ResizeParams()
    direction = _pick(rng, ("up", "down", "keep"), cfg.direction_probs)
    lo, hi = cfg.scale
    start = rng.uniform(1.0, hi) if direction == "up" else rng.uniform(lo, 1.0) if direction == "down" else 1.0
    mode = _pick(rng, cfg.modes, cfg.mode_probs)
    return ResizeParams(True, direction, mode, walk(rng, start, cfg.step, cfg.scale, n))


def sample_noise(rng: np.random.Generator, cfg: NoiseConfig, n: int) -> NoiseParams:
    if not rng.random() < cfg.prob:
        return NoiseParams()
    seed = int(rng.integers(0, 2 ** 63 - 1))
    if rng.random() < cfg.gaussian_prob:
        sigma = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
        return NoiseParams(True, "gaussian", bool(rng.random() < cfg.gray_prob), sigma=sigma, seed=seed)
    scale = walk(rng, rng.uniform(*cfg.poisson_scale), cfg.poisson_step, cfg.poisson_scale, n)
    return NoiseParams(True, "poisson", bool(rng.random() < cfg.gray_prob), poisson_scale=scale, seed=seed)


def sample_jpeg(rng: np.random.Generator, cfg: JpegConfig, n: int) -> JpegParams:
    """Quality: an integer per frame; the walk adds uniform(-step, step) and rounds each frame."""
    if not rng.random() < cfg.prob:
        return JpegParams()
    lo, hi = cfg.quality
    q = [int(round(rng.uniform(lo, hi)))]
    steps = rng.uniform(-cfg.step, cfg.step, n - 1) if cfg.step > 0 and n > 1 else np.zeros(max(n - 1, 0))
    for d in steps:
        q.append(int(round(min(max(q[-1] + d, lo), hi))))
    return JpegParams(True, tuple(q))


def sample_video(rng: np.random.Generator, cfg: VideoConfig) -> VideoParams:
    if not rng.random() < cfg.prob:
        return VideoParams()
    codec = _pick(rng, cfg.codecs, cfg.codec_probs)
    lo, hi = cfg.bitrate
    return VideoParams(True, codec, int(rng.integers(int(lo), int(hi) + 1)), cfg.preset)


def sample_order(rng: np.random.Generator, cfg: OrderConfig, n: int) -> OrderParams:
    if not rng.random() < cfg.prob:
        return OrderParams()
    return OrderParams(True, sample_blur(rng, cfg.blur, n), sample_resize(rng, cfg.resize, n),
                       sample_noise(rng, cfg.noise, n), sample_jpeg(rng, cfg.jpeg, n), sample_video(rng, cfg.video))


def sample_final(rng: np.random.Generator, cfg: FinalConfig, n: int) -> FinalParams:
    mode = _pick(rng, cfg.modes, cfg.mode_probs)
    first = bool(rng.random() < cfg.resize_first_prob)
    return FinalParams(mode, first, sample_blur(rng, cfg.sinc, n), sample_jpeg(rng, cfg.jpeg, n),
                       sample_video(rng, cfg.video))


# ---- applying -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Step:
    name: str
    per_frame: bool                  # fn(frames, idx) on chunks, else fn(frames) on the whole clip
    fn: Callable


def _size(base: tuple[int, int], s: float) -> tuple[int, int]:
    return max(1, int(base[0] * s)), max(1, int(base[1] * s))


def _order_steps(p: OrderParams, prefix: str, base: tuple[int, int], target: tuple[int, int]) -> list[_Step]:
    if not p.applied:
        return []
    steps = []
    if p.blur.applied:
        steps.append(_blur_step(f"{prefix}.blur", p.blur))
    if p.resize.applied:
        sizes = [_size(base, s) for s in p.resize.scale]
        steps.append(_Step(f"{prefix}.resize", True, lambda x, idx, r=p.resize, sz=sizes:
                           ops.resize_walk(x, [sz[t] for t in idx], sz[0], r.mode)))
    if p.noise.applied:
        steps.append(_noise_step(f"{prefix}.noise", p.noise))
    steps += _codec_steps(prefix, p.jpeg, p.video, target)
    return steps


def _blur_step(name: str, b: BlurParams) -> _Step:
    return _Step(name, True, lambda x, idx: ops.blur(x, b.kernels(idx).astype(np.float32)))


def _noise_step(name: str, nz: NoiseParams) -> _Step:
    if nz.kind == "gaussian":
        level = np.asarray(nz.sigma)
        return _Step(name, True, lambda x, idx: ops.gaussian_noise(x, level[idx], nz.gray, nz.seed, idx))
    level = np.asarray(nz.poisson_scale)
    return _Step(name, True, lambda x, idx: ops.poisson_noise(x, level[idx], nz.gray, nz.seed, idx))


def _codec_steps(prefix: str, jp: JpegParams, vid: VideoParams, target: tuple[int, int]) -> list[_Step]:
    steps = []
    if jp.applied:
        q = np.asarray(jp.quality)
        steps.append(_Step(f"{prefix}.jpeg", True, lambda x, idx: ops.jpeg(x, q[idx])))
    if vid.applied:
        area = target[0] * target[1]
        steps.append(_Step(f"{prefix}.video", False, lambda x: ops.video_compress(
            x, vid.codec, vid.bitrate * x.shape[1] * x.shape[2] / area, vid.preset or "medium")))
    return steps


def _final_steps(p: FinalParams, target: tuple[int, int]) -> list[_Step]:
    rs = [_Step("final.resize", True, lambda x, idx: ops.resize(x, target, p.mode))]
    if p.sinc.applied:
        rs.append(_blur_step("final.sinc", p.sinc))
    codec = _codec_steps("final", p.jpeg, p.video, target)
    return rs + codec if p.resize_first else codec + rs


def run_steps(frames: np.ndarray, steps: list[_Step], timings: dict | None = None,
              chunk_bytes: int = 64 << 20, chunk: int | None = None) -> np.ndarray:
    """Run ``steps`` over a ``uint8`` clip; per-frame steps go chunk by chunk (bounded memory)."""
    x = frames
    i = 0

    def timed(name, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return out

    while i < len(steps):
        if not steps[i].per_frame:
            x = timed(steps[i].name, steps[i].fn, x)
            i += 1
            continue
        j = i
        while j < len(steps) and steps[j].per_frame:
            j += 1
        n, h, w, c = x.shape
        size = chunk or max(1, min(16, chunk_bytes // (h * w * c * 4 * 3)))
        out = []
        for s in range(0, n, size):
            idx = np.arange(s, min(n, s + size))
            y = x[s:s + size]
            for st in steps[i:j]:
                y = timed(st.name, st.fn, y, idx)
            out.append(timed("quantize", ops.quantize, y))
        x = np.concatenate(out)
        i = j
    return ops.quantize(x)


class SecondOrder:
    """A degradation profile built on the second-order chain; subclasses set ``name`` and ``defaults``."""

    name = "realesrgan"
    defaults = ChainConfig()

    def __init__(self, scale: int = 4, overrides: dict | None = None):
        if int(scale) < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = int(scale)
        self.config: ChainConfig = override(self.defaults, overrides, path="overrides")

    def sample(self, rng: np.random.Generator, num_frames: int) -> ChainParams:
        if num_frames < 1:
            raise ValueError("a clip needs at least one frame")
        c = self.config
        return ChainParams(self.name, self.scale, int(num_frames), sample_order(rng, c.order1, num_frames),
                           sample_order(rng, c.order2, num_frames), sample_final(rng, c.final, num_frames))

    def apply(self, frames: np.ndarray, params: ChainParams, size: tuple[int, int] | None = None,
              timings: dict | None = None, chunk: int | None = None) -> np.ndarray:
        """Degrade ``(T, H, W, 3)`` uint8 frames to the LR ``size`` (width, height; default: input / scale)."""
        return degrade(frames, params, size, timings, chunk)

    @staticmethod
    def params_from_dict(data: dict) -> ChainParams:
        return build(ChainParams, data)


def degrade(frames: np.ndarray, params: ChainParams, size: tuple[int, int] | None = None,
            timings: dict | None = None, chunk: int | None = None) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t != params.frames:
        raise ValueError(f"parameters were drawn for {params.frames} frames, the clip has {t}")
    target = tuple(size) if size is not None else (max(1, w // params.scale), max(1, h // params.scale))
    steps = (_order_steps(params.order1, "order1", (w, h), target)
             + _order_steps(params.order2, "order2", target, target)
             + _final_steps(params.final, target))
    return run_steps(frames, steps, timings, chunk=chunk)
