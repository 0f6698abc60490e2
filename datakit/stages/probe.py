"""ingest/probe: read each source's properties; unreadable or unsuitable sources become rejects.

Reject reasons: the media errors (``unreadable``, ``no_video_stream``, ...), ``too_small``,
``too_large``, ``too_short`` and ``low_fps``: a source below ``min_fps`` frames per second
(slideshows, time-lapses, 5 fps captures). Sources between ``min_fps`` and the clip rate are
kept; split resamples them to the clip rate (repeating frames) and the score stage measures
frozen frames and motion on their own frames, not on the repeats.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import media
from ..records import Record
from .base import Stage, StageConfig


class ProbeConfig(StageConfig):
    stage: Literal["probe"] = "probe"
    min_width: int = Field(64, ge=1, description="reject sources narrower than this (displayed)")
    min_height: int = Field(64, ge=1, description="reject sources lower than this (displayed)")
    max_side: int = Field(8192, ge=1, description="reject sources wider or taller than this")
    max_pixels: int = Field(4096 * 4096, ge=1, description="reject sources with more pixels per frame")
    min_duration_s: float = Field(0.0, ge=0, description="reject sources shorter than this")
    min_fps: float = Field(8.0, ge=0, description="reject sources below this frame rate (low_fps); 0 keeps all. "
                           "Below 8 fps a 16-24 fps clip shows each source frame three times or more")


class Probe(Stage):
    name = "probe"
    Config = ProbeConfig

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: ProbeConfig = self.config
        for r in records:
            try:
                info = media.probe(r.meta["source_uri"])
            except media.MediaError as e:
                r.rejected(self.name, e.reason, e.detail)
                continue
            r.meta["source"] = info.to_dict()
            if info.width < cfg.min_width or info.height < cfg.min_height:
                r.rejected(self.name, "too_small",
                           f"{info.width}x{info.height} is below {cfg.min_width}x{cfg.min_height}")
            elif max(info.width, info.height) > cfg.max_side or info.width * info.height > cfg.max_pixels:
                r.rejected(self.name, "too_large",
                           f"{info.width}x{info.height} exceeds {cfg.max_side} per side or {cfg.max_pixels} pixels")
            elif info.duration_s < cfg.min_duration_s:
                r.rejected(self.name, "too_short", f"{info.duration_s:.2f}s is below {cfg.min_duration_s}s")
            elif info.fps < cfg.min_fps * (1 - 1e-3):
                r.rejected(self.name, "low_fps", f"{info.fps:.3g} fps is below min_fps {cfg.min_fps:g} "
                           f"(lower probe.min_fps to keep such sources)")
        return records
