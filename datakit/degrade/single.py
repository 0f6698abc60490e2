"""One clip in, its degraded LR out: what ``datakit degrade`` runs, for inspection and debugging."""
from __future__ import annotations

import numpy as np

from .. import media
from . import LOSSLESS_PRESET, device_record, make, params_dict


def degrade_clip(uri: str, profile: str = "realbasicvsr", seed: int = 0, scale: int = 4,
                 overrides: dict | None = None, start: float = 0.0, frames: int | None = None,
                 device: str | None = None) -> tuple[bytes, dict]:
    """Degrade ``frames`` frames (default: all) of a video from ``start`` seconds.

    Returns the LR clip as a lossless mp4 and a json-ready document with every drawn
    parameter. ``device``: None/"cpu", or a torch device for the per-frame maths.
    Raises ``ValueError`` for bad arguments and ``media.MediaError`` for unreadable input.
    """
    if scale < 1:
        raise ValueError(f"--scale must be at least 1, got {scale}")
    if start < 0 or (frames is not None and frames < 1):
        raise ValueError("--start must not be negative and --frames must be at least 1")
    deg = make(profile, scale, overrides)
    info = media.probe(uri)
    avail = max(1, int(round((info.duration_s - start) * info.fps)))
    if start >= info.duration_s:
        raise ValueError(f"--start {start:g}s is past the end of the clip ({info.duration_s:.3g}s)")
    n = min(frames or avail, avail)
    hr = media.read_span(uri, info.start_time + start, n, info.fps)
    size = (max(1, hr.shape[2] // scale), max(1, hr.shape[1] // scale))
    params = deg.sample(np.random.default_rng(seed), n, size)
    lr = deg.apply(hr, params, size, device=device)
    data = media.encode(lr, info.fps, lossless=True, preset=LOSSLESS_PRESET)
    doc = {"input": uri, "profile": profile, "seed": seed, "scale": scale, "overrides": overrides or {},
           "start": start, "fps": info.fps, "frames": n, "hr": [int(hr.shape[2]), int(hr.shape[1])],
           "lr": [int(lr.shape[2]), int(lr.shape[1])], "device": device_record(device),
           "params": params_dict(params)}
    return data, doc


def _blur(b) -> str:
    if b.family == "sinc":
        return f"sinc {b.size}x{b.size} omega {b.omega[0]:.2f}"
    return f"{b.family} {b.size}x{b.size} sigma {b.sigma_x[0]:.2f}"


def _codecs(jpeg, video) -> list[str]:
    out = []
    if jpeg.applied:
        out.append(f"{'DiffJPEG' if jpeg.codec == 'diffjpeg' else 'JPEG'} q{jpeg.quality[0]:g}")
    if video.applied:
        out.append(f"{video.codec} {video.bpp:.2f} bit/px ({video.bitrate} bit/frame)")
    return out


def summary(params) -> str:
    """One line per order: what was drawn (first-frame values), for people reading a terminal."""
    if not hasattr(params, "order1"):
        return f"bicubic x{params.scale}"
    lines = [f"unsharp masking: {params.usm.kernel} taps, weight {params.usm.weight:g}, "
             f"threshold {params.usm.threshold:g}"] if params.usm.applied else []
    for name, o in (("order 1", params.order1), ("order 2", params.order2)):
        if not o.applied:
            lines.append(f"{name}: skipped")
            continue
        steps = []
        if o.blur.applied:
            steps.append(_blur(o.blur))
        if o.resize.applied:
            steps.append(f"resize {o.resize.direction} x{o.resize.scale[0]:.2f} {o.resize.mode}")
        if o.noise.applied:
            level = o.noise.sigma[0] if o.noise.kind == "gaussian" else o.noise.poisson_scale[0]
            steps.append(f"{'gray ' if o.noise.gray else ''}{o.noise.kind} noise {level:.2f}")
        lines.append(f"{name}: " + ", ".join(steps + _codecs(o.jpeg, o.video)))
    f = params.final
    resize = [f"resize {f.mode}"] + ([_blur(f.sinc)] if f.sinc.applied else [])
    codecs = _codecs(f.jpeg, f.video)
    lines.append("final: " + ", ".join(resize + codecs if f.resize_first else codecs + resize))
    return "\n".join(lines)
