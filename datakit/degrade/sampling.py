"""Drawing one clip's degradation parameters from a chain configuration.

For one clip every choice is drawn once: kernel family and size, resize direction and
interpolation, noise kind and colour, codec; and a start value for every continuous
parameter, which a per-frame random walk then moves (frame ``t + 1`` = frame ``t`` +
uniform(-step, step), clipped to the range, as RealBasicVSR does). Steps of 0 keep the
value of frame 0 on every frame (Real-ESRGAN's single draw). Noise fields are new on each
frame, from a recorded seed. Values are rounded to 6 decimals so that the json holds
exactly what is applied.
"""
from __future__ import annotations

import numpy as np

from .config import BlurConfig, FinalConfig, JpegConfig, NoiseConfig, OrderConfig, ResizeConfig, VideoConfig
from .params import BlurParams, FinalParams, Floats, JpegParams, NoiseParams, OrderParams, ResizeParams, VideoParams


def walk_from(start: float, increments, bounds) -> Floats:
    """``start``, then each previous value plus its increment, clipped to ``bounds`` (rounded to 6 decimals)."""
    lo, hi = bounds
    v = np.empty(len(increments) + 1)
    v[0] = start
    for i, d in enumerate(increments, 1):
        v[i] = min(max(v[i - 1] + d, lo), hi)
    v = np.clip(np.round(v, 6), lo, hi)
    return tuple(float(x) for x in v)


def walk(rng: np.random.Generator, start: float, step: float, bounds, n: int) -> Floats:
    """``n`` values: ``start``, then each previous value plus uniform(-step, step), clipped to ``bounds``."""
    d = rng.uniform(-step, step, n - 1) if step > 0 and n > 1 else np.zeros(max(n - 1, 0))
    return walk_from(start, d, bounds)


def quality_walk(start: float, increments, bounds) -> Floats:
    """Integer JPEG qualities as mmagic walks them: round the start; each frame adds its
    increment to the previous (integer) quality, clips to ``bounds`` and rounds."""
    lo, hi = bounds
    q = [int(round(start))]
    for d in increments:
        q.append(int(round(min(max(q[-1] + d, lo), hi))))
    return tuple(float(v) for v in q)


def pick(rng: np.random.Generator, options, probs):
    return options[int(rng.choice(len(options), p=np.asarray(probs, dtype=np.float64) / sum(probs)))]


def _split_beta(rng: np.random.Generator, bounds) -> float:
    """Real-ESRGAN's shape draw: below 1 or above 1 with equal odds (when the range straddles 1)."""
    lo, hi = bounds
    if lo <= 1.0 <= hi:
        return float(rng.uniform(lo, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, hi))
    return float(rng.uniform(lo, hi))


def draw_beta(rng: np.random.Generator, cfg: BlurConfig, bounds, step: float, n: int) -> tuple[Floats, Floats]:
    """A kernel shape per frame: ``(walked, applied)``. The start is drawn as ``cfg.beta_start``
    says, then walked; with ``cfg.beta_redraw`` each frame applies a value drawn uniformly
    between its walked value and 1 (mmagic's ``random_mixed_kernels`` on a one-point range),
    else the walked value itself."""
    start = _split_beta(rng, bounds) if cfg.beta_start == "split" else float(rng.uniform(*bounds))
    walked = walk(rng, start, step, bounds, n)
    if not cfg.beta_redraw:
        return walked, walked
    w = np.asarray(walked)
    applied = np.round(w + rng.random(n) * (1.0 - w), 6)
    return walked, tuple(float(x) for x in applied)


def sample_blur(rng: np.random.Generator, cfg: BlurConfig, n: int) -> BlurParams:
    if not rng.random() < cfg.prob:
        return BlurParams()
    size = int(cfg.sizes[int(rng.integers(len(cfg.sizes)))])
    if rng.random() < cfg.sinc_prob:
        om = cfg.omega_range(size)
        return BlurParams(True, "sinc", size, omega=walk(rng, rng.uniform(*om), cfg.omega_step, om, n))
    family = pick(rng, cfg.families, cfg.family_probs)
    iso = family in ("iso", "generalized_iso", "plateau_iso")
    sx = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
    sy = theta = beta = ()
    if not iso:
        sy = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
        theta = walk(rng, rng.uniform(*cfg.rotation), cfg.rotation_step, cfg.rotation, n)
    if family.startswith("generalized"):
        beta = draw_beta(rng, cfg, cfg.betag, cfg.betag_step, n)[1]
    elif family.startswith("plateau"):
        beta = draw_beta(rng, cfg, cfg.betap, cfg.betap_step, n)[1]
    return BlurParams(True, family, size, sx, sy, theta, beta)


def sample_resize(rng: np.random.Generator, cfg: ResizeConfig, n: int) -> ResizeParams:
    if not rng.random() < cfg.prob:
        return ResizeParams()
    direction = pick(rng, ("up", "down", "keep"), cfg.direction_probs)
    lo, hi = cfg.scale
    start = rng.uniform(1.0, hi) if direction == "up" else rng.uniform(lo, 1.0) if direction == "down" else 1.0
    mode = pick(rng, cfg.modes, cfg.mode_probs)
    return ResizeParams(True, direction, mode, walk(rng, start, cfg.step, cfg.scale, n), cfg.even)


def sample_noise(rng: np.random.Generator, cfg: NoiseConfig, n: int) -> NoiseParams:
    if not rng.random() < cfg.prob:
        return NoiseParams()
    seed = int(rng.integers(0, 2 ** 63 - 1))
    common = dict(seed=seed, sampler=cfg.sampler, units=cfg.poisson_units)
    if rng.random() < cfg.gaussian_prob:
        sigma = walk(rng, rng.uniform(*cfg.sigma), cfg.sigma_step, cfg.sigma, n)
        return NoiseParams(True, "gaussian", bool(rng.random() < cfg.gray_prob), sigma=sigma, **common)
    scale = walk(rng, rng.uniform(*cfg.poisson_scale), cfg.poisson_step, cfg.poisson_scale, n)
    return NoiseParams(True, "poisson", bool(rng.random() < cfg.gray_prob), poisson_scale=scale, **common)


def sample_jpeg(rng: np.random.Generator, cfg: JpegConfig, n: int) -> JpegParams:
    """Quality per frame: libjpeg takes integers (each walked frame rounded, as mmagic), DiffJPEG any value."""
    if not rng.random() < cfg.prob:
        return JpegParams()
    lo, hi = cfg.quality
    if cfg.codec == "diffjpeg":
        return JpegParams(True, walk(rng, rng.uniform(lo, hi), cfg.step, cfg.quality, n), cfg.codec)
    start = rng.uniform(lo, hi)
    steps = rng.uniform(-cfg.step, cfg.step, n - 1) if cfg.step > 0 and n > 1 else np.zeros(max(n - 1, 0))
    return JpegParams(True, quality_walk(start, steps, cfg.quality), cfg.codec)


def bits_per_frame(bpp: float, lr: tuple[int, int]) -> int:
    """The bit budget of one frame (bit/s at 1 frame/s) for ``bpp`` bits per LR pixel."""
    return max(1000, int(round(bpp * lr[0] * lr[1])))


def sample_video(rng: np.random.Generator, cfg: VideoConfig, lr: tuple[int, int] | None) -> VideoParams:
    if not rng.random() < cfg.prob:
        return VideoParams()
    codec = pick(rng, cfg.codecs, cfg.codec_probs)
    bpp = float(round(rng.uniform(*cfg.bpp), 6))
    return VideoParams(True, codec, bpp, bits_per_frame(bpp, lr) if lr else 0, cfg.preset)


def sample_order(rng: np.random.Generator, cfg: OrderConfig, n: int, lr: tuple[int, int] | None) -> OrderParams:
    if not rng.random() < cfg.prob:
        return OrderParams()
    return OrderParams(True, sample_blur(rng, cfg.blur, n), sample_resize(rng, cfg.resize, n),
                       sample_noise(rng, cfg.noise, n), sample_jpeg(rng, cfg.jpeg, n),
                       sample_video(rng, cfg.video, lr))


def sample_final(rng: np.random.Generator, cfg: FinalConfig, n: int, lr: tuple[int, int] | None) -> FinalParams:
    mode = pick(rng, cfg.modes, cfg.mode_probs)
    first = bool(rng.random() < cfg.resize_first_prob)
    return FinalParams(mode, first, sample_blur(rng, cfg.sinc, n), sample_jpeg(rng, cfg.jpeg, n),
                       sample_video(rng, cfg.video, lr))
