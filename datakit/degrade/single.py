"""One clip in, its degraded LR out: what ``datakit degrade`` runs, for inspection and debugging."""
from __future__ import annotations

import numpy as np

from .. import media
from . import LOSSLESS_PRESET, make, params_dict


def degrade_clip(uri: str, profile: str = "realbasicvsr", seed: int = 0, scale: int = 4,
                 overrides: dict | None = None, start: float = 0.0, frames: int | None = None) -> tuple[bytes, dict]:
    """Degrade ``frames`` frames (default: all) of a video from ``start`` seconds.

    Returns the LR clip as a lossless mp4 and a json-ready document with every drawn
    parameter. Raises ``ValueError`` for bad arguments and ``media.MediaError`` for
    unreadable input.
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
    params = deg.sample(np.random.default_rng(seed), n)
    lr = deg.apply(hr, params)
    data = media.encode(lr, info.fps, lossless=True, preset=LOSSLESS_PRESET)
    doc = {"input": uri, "profile": profile, "seed": seed, "scale": scale, "overrides": overrides or {},
           "start": start, "fps": info.fps, "frames": n, "hr": [int(hr.shape[2]), int(hr.shape[1])],
           "lr": [int(lr.shape[2]), int(lr.shape[1])], "params": params_dict(params)}
    return data, doc
