"""Weight-free quality signals: they need no model files and run anywhere (numpy + OpenCV).

Each signal is a pure function of a clip's frames (``(T, H, W, 3)`` uint8 RGB) and a
small frozen dataclass of parameters; each returns plain floats. Higher is better for
``sharpness`` and ``motion``; the others measure a defect (see each docstring).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .frames import luma, resize_height, sample_indices


@dataclass(frozen=True)
class SharpnessParams:
    frames: int = 8           # frames sampled evenly over the clip


def sharpness(frames: np.ndarray, p: SharpnessParams = SharpnessParams()) -> float:
    """Variance of the Laplacian of luma at the clip's own resolution, mean over sampled frames.

    Blur, upscaled low-resolution sources and soft focus lower it; it is not normalised
    across resolutions, so compare clips of one corpus (one HR size). Higher is sharper.
    """
    vals = [float(cv2.Laplacian(luma(frames[i]), cv2.CV_32F).var())
            for i in sample_indices(len(frames), p.frames)]
    return float(np.mean(vals))


@dataclass(frozen=True)
class ExposureParams:
    frames: int = 8           # frames sampled evenly over the clip
    dark_level: float = 16.0  # luma (0..255) at or below which a pixel counts as crushed black
    bright_level: float = 239.0  # luma at or above which a pixel counts as blown out


def exposure(frames: np.ndarray, p: ExposureParams = ExposureParams()) -> dict[str, float]:
    """``brightness`` (mean luma, 0..1), ``dark_fraction`` and ``bright_fraction`` (share of
    pixels crushed to black or blown to white), each a mean over sampled frames."""
    y = luma(frames[sample_indices(len(frames), p.frames)])
    return {
        "brightness": float(y.mean() / 255.0),
        "dark_fraction": float((y <= p.dark_level).mean()),
        "bright_fraction": float((y >= p.bright_level).mean()),
    }


def _small_luma(frames: np.ndarray, height: int) -> np.ndarray:
    """Luma of every frame, area-downscaled to ``height`` rows (OpenCV's 8-bit BT.601 gray: fast)."""
    return np.stack([resize_height(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32),
                                   height) for f in frames])


@dataclass(frozen=True)
class BlackParams:
    pixel_level: float = 25.5  # luma (0..255) below which a pixel is black (10 %, as ffmpeg blackdetect)
    ratio: float = 0.98        # a frame is black when at least this share of its pixels is
    height: int = 64           # analysis height (area downscale) for speed


def black_frames(frames: np.ndarray, p: BlackParams = BlackParams()) -> float:
    """Share of the clip's frames (every frame) that are black: fades, slates, dead air. Lower is better."""
    y = _small_luma(frames, p.height)
    black = (y < p.pixel_level).mean(axis=(1, 2)) >= p.ratio
    return float(black.mean())


@dataclass(frozen=True)
class FrozenParams:
    # mean absolute luma difference (0..255, at `height`) under which two frames count as the same:
    # re-encoded copies of one frame differ by < 0.03, real footage (even darkened 4x) by > 0.3
    threshold: float = 0.1
    height: int = 64          # analysis height (area downscale averages away codec noise)


def frozen_frames(frames: np.ndarray, p: FrozenParams = FrozenParams()) -> float:
    """Share of consecutive frame pairs that are (nearly) identical: stills, freezes, duplicated
    frames from frame-rate conversion. Lower is better; 1 means a still image."""
    if len(frames) < 2:
        return 1.0
    y = _small_luma(frames, p.height)
    diff = np.abs(np.diff(y, axis=0)).mean(axis=(1, 2))
    return float((diff < p.threshold).mean())


@dataclass(frozen=True)
class MotionParams:
    pairs: int = 8            # consecutive frame pairs sampled evenly over the clip
    height: int = 128         # analysis height for the optical flow
    peak: float = 99.0        # percentile of the per-pixel flow reported as motion_peak


def motion(frames: np.ndarray, p: MotionParams = MotionParams(), gaps=None) -> dict[str, float]:
    """Optical flow (OpenCV Farneback) between consecutive frames, in percent of the frame
    height per clip frame: ``motion`` is the mean over the frame (camera motion: near 0 for
    stills and locked-off shots, very high for shake, whip pans or cuts), ``motion_peak`` a
    high percentile (a person walking through a static shot moves a small part of the frame
    a lot). ``gaps[i]`` is how many clip frames separate ``frames[i]`` and ``frames[i + 1]``
    (default 1; more when repeated source frames were left out), and the flow is divided by it."""
    if len(frames) < 2:
        return {"motion": 0.0, "motion_peak": 0.0}
    means, peaks = [], []
    for i in sample_indices(len(frames) - 1, p.pairs):
        a = resize_height(luma(frames[i]), p.height).astype(np.uint8)
        b = resize_height(luma(frames[i + 1]), p.height).astype(np.uint8)
        flow = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
        mag = np.sqrt((flow ** 2).sum(-1)) / a.shape[0] * 100.0 / (1.0 if gaps is None else float(gaps[i]))
        means.append(float(mag.mean()))
        peaks.append(float(np.percentile(mag, p.peak)))
    return {"motion": float(np.mean(means)), "motion_peak": float(np.mean(peaks))}
