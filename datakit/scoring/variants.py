"""Variants of real footage for calibrating and testing filter profiles.

Pure functions over ``(T, H, W, 3)`` uint8 clips. Two families:

- *ordinary* footage of other kinds than the bundled samples, which a profile should keep:
  a dim indoor clip (:func:`dim`: low exposure, a darker gamma, low-light sensor noise), a
  static camera (:func:`static_crop`: a fixed window of a locked-off shot), a low frame
  rate (:func:`resample`: a 10-15 fps capture), a slow pan over a still photograph
  (:func:`pan`);
- *defects* a profile should reject: blur, a fade to black, a frozen picture, crushed or
  blown exposure, shake, heavy compression.

:mod:`datakit.scoring.calibrate` runs the demo pipeline's stages over them.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def resample(frames: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
    """The frames a camera at ``new_fps`` would have captured: frame ``floor(k * fps / new_fps)``."""
    n = int(len(frames) * new_fps / fps)
    return frames[np.minimum((np.arange(n) * fps / new_fps).astype(int), len(frames) - 1)]


@dataclass(frozen=True)
class DimParams:
    gain: float = 0.55        # exposure
    gamma: float = 1.5        # > 1 darkens the mid-tones more than the highlights
    noise: float = 3.0        # std of the low-light sensor noise, 8-bit levels
    seed: int = 0


def dim(frames: np.ndarray, p: DimParams = DimParams()) -> np.ndarray:
    """An under-lit indoor look: ``255 * gain * (x / 255) ** gamma`` plus sensor noise."""
    x = (frames.astype(np.float32) / 255.0) ** p.gamma * (255.0 * p.gain)
    x += np.random.default_rng(p.seed).normal(0, p.noise, x.shape).astype(np.float32)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def static_crop(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The fixed window ``(x0, y0, x1, y1)`` of every frame (a locked-off shot stays locked off)."""
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(frames[:, y0:y1, x0:x1])


def pan(image: np.ndarray, frames: int, size: tuple[int, int], step: float) -> np.ndarray:
    """A camera panning across a still ``image``: windows of ``size`` (w, h) moving ``step`` px per frame."""
    w, h = size
    out = []
    for k in range(frames):
        x = k * step
        m = np.float32([[1, 0, -x], [0, 1, 0]])
        out.append(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


# ------------------------------------------------------------------- defects


def blur(frames: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def fade_to_black(frames: np.ndarray, start: float = 0.3) -> np.ndarray:
    """Black from ``start`` (a fraction of the clip) on."""
    out = frames.copy()
    out[int(len(frames) * start):] = (out[int(len(frames) * start):].astype(np.float32) * 0.02).astype(np.uint8)
    return out


def frozen(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames[:1], len(frames), axis=0)


def exposure(frames: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(frames.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def shake(frames: np.ndarray, amplitude: float = 0.08, seed: int = 0) -> np.ndarray:
    """Hand-held shake: each frame shifted by up to ``amplitude`` of the frame height."""
    rng = np.random.default_rng(seed)
    h, w = frames.shape[1:3]
    out = []
    for f in frames:
        dx, dy = rng.uniform(-amplitude, amplitude, 2) * h
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        out.append(cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def blocky(frames: np.ndarray, quality: int = 8, scale: float = 0.5) -> np.ndarray:
    """A low-bit-rate, upscaled source: each frame shrunk by ``scale``, JPEG-compressed at
    ``quality`` and enlarged back, so the blocks survive a later downscale to the HR size."""
    h, w = frames.shape[1:3]
    out = []
    for f in frames:
        small = cv2.resize(f, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        small = cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_UNCHANGED)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    return np.stack(out)
