"""Cutting sources into clips: scene detection (PySceneDetect) and clip planning.

``plan_clips`` is pure: scenes in seconds in, clip spans on the target timeline out
(frame ``i`` is the source at ``start_time + i / fps``). Clip lengths are 4k+1 frames,
the shape Wan-style VAEs need.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import fsio


def is_4k1(n: int) -> bool:
    return n >= 1 and (n - 1) % 4 == 0


def floor_4k1(n: int) -> int:
    """Largest 4k+1 not above ``n`` (0 if ``n`` < 1)."""
    return 0 if n < 1 else n - (n - 1) % 4


@dataclass(frozen=True)
class ClipSpan:
    start_frame: int   # inclusive, on the target timeline
    end_frame: int     # exclusive
    scene: int         # index of the scene it came from

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame


def plan_clips(
    scenes: list[tuple[float, float]],
    fps: float,
    frames: int,
    min_frames: int | None = None,
    cut_margin: int = 0,
    stride: int | None = None,
    max_clips: int | None = None,
) -> list[ClipSpan]:
    """Lay clips of ``frames`` frames inside each scene, never across a cut.

    ``scenes`` are ``(start_s, end_s)`` relative to the first frame. ``cut_margin``
    target frames are left out at both ends of every scene (cuts found by a detector
    are approximate). A scene shorter than ``frames`` but at least ``min_frames``
    yields one clip of the largest 4k+1 length that fits. ``stride`` is the distance
    between clip starts (default: ``frames``, i.e. back to back).
    """
    min_frames = frames if min_frames is None else min_frames
    stride = stride or frames
    spans: list[ClipSpan] = []
    for si, (s0, s1) in enumerate(scenes):
        first = math.ceil(s0 * fps - 1e-6) + cut_margin
        last = math.floor(s1 * fps + 1e-6) - cut_margin  # exclusive
        n = last - first
        if n >= frames:
            start = first
            while start + frames <= last:
                spans.append(ClipSpan(start, start + frames, si))
                start += stride
        elif n >= min_frames:
            length = floor_4k1(n)
            if length >= min_frames:
                spans.append(ClipSpan(first, first + length, si))
        if max_clips is not None and len(spans) >= max_clips:
            return spans[:max_clips]
    return spans


def detect_scenes(
    uri: str, detector: str = "content", threshold: float | None = None, min_scene_s: float = 0.5
) -> list[tuple[float, float]]:
    """Scene spans in seconds from the first frame, found by PySceneDetect on PyAV.

    ``detector`` is ``content`` (HSV content change) or ``adaptive`` (rolling average).
    Returns one span covering the whole video if no cut is found.
    """
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager
    from scenedetect.backends.pyav import VideoStreamAv

    src = fsio.open_input(uri)
    video = VideoStreamAv(src, name=uri.rsplit("/", 1)[-1], suppress_output=True)
    fps = float(video.frame_rate)
    min_len = max(1, int(round(min_scene_s * fps)))
    if detector == "adaptive":
        det = AdaptiveDetector(min_scene_len=min_len, **({"adaptive_threshold": threshold} if threshold else {}))
    else:
        det = ContentDetector(min_scene_len=min_len, **({"threshold": threshold} if threshold else {}))
    manager = SceneManager()
    manager.auto_downscale = True
    manager.add_detector(det)
    manager.detect_scenes(video=video, show_progress=False)
    scenes = manager.get_scene_list(start_in_scene=True)
    if not scenes:
        return []
    return [(a.seconds, b.seconds) for a, b in scenes]


def source_frame_numbers(num_frames: int, start_time: float, fps: float, source_start: float,
                         source_fps: float) -> np.ndarray:
    """Which source frame each clip frame shows (constant-rate source).

    Clip frame ``i`` is the source frame on screen at ``start_time + i / fps`` (with the
    quarter-frame tolerance :func:`datakit.media.read_span` allows), i.e. source frame
    ``floor((t - source_start) * source_fps)``. Below the clip rate, consecutive clip
    frames repeat a source frame; :func:`distinct_frames` picks each one once.
    """
    t = start_time + np.arange(num_frames) / fps + 0.25 / fps
    return np.floor((t - source_start) * source_fps + 1e-9).astype(np.int64)


def distinct_frames(numbers: np.ndarray) -> np.ndarray:
    """Indices of the clip frames that show a source frame for the first time."""
    numbers = np.asarray(numbers)
    if numbers.size == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
