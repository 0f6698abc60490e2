"""split: cut each probed source into clips of 4k+1 frames, scene-cut aware."""
from __future__ import annotations

import copy
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .. import split
from ..records import Record, clip_id
from .base import Stage, StageConfig


class SplitConfig(StageConfig):
    stage: Literal["split"] = "split"
    fps: float = Field(24.0, gt=0, description="frame rate of the clips (sources are resampled to it)")
    frames: int = Field(77, description="frames per clip; must be 4k+1 (e.g. 17, 21, 77)")
    min_frames: int | None = Field(
        None, description="shortest clip kept from a short scene (4k+1); default: `frames`")
    stride: int | None = Field(None, ge=1, description="frames between clip starts in a scene; default: `frames`")
    max_clips_per_source: int | None = Field(None, ge=1)
    detector: Literal["content", "adaptive", "none"] = Field(
        "content", description="PySceneDetect detector, or none to ignore cuts")
    threshold: float | None = Field(None, gt=0, description="detector threshold (detector default when unset)")
    min_scene_s: float = Field(0.5, ge=0, description="shortest scene the detector reports")
    cut_margin: int = Field(2, ge=0, description="clip frames kept away from each cut")

    @field_validator("frames", "min_frames")
    @classmethod
    def _four_k_plus_one(cls, v):
        if v is not None and not split.is_4k1(v):
            raise ValueError(f"must be 4k+1 (e.g. 17, 21, 77), got {v}")
        return v

    @model_validator(mode="after")
    def _min_le_frames(self):
        if self.min_frames is not None and self.min_frames > self.frames:
            raise ValueError(f"min_frames ({self.min_frames}) must not exceed frames ({self.frames})")
        return self


class Split(Stage):
    name = "split"
    requires = ("probe",)
    Config = SplitConfig

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: SplitConfig = self.config
        out: list[Record] = []
        for r in records:
            info = r.meta["source"]
            if cfg.detector == "none" or info["num_frames"] < 2:
                scenes = [(0.0, info["duration_s"])]
            else:
                scenes = split.detect_scenes(r.meta["source_uri"], cfg.detector, cfg.threshold, cfg.min_scene_s)
                scenes = scenes or [(0.0, info["duration_s"])]
            spans = split.plan_clips(scenes, cfg.fps, cfg.frames, cfg.min_frames, cfg.cut_margin,
                                     cfg.stride, cfg.max_clips_per_source)
            if not spans:
                longest = max(b - a for a, b in scenes)
                out.append(r.rejected(self.name, "too_short",
                                      f"no scene holds {cfg.min_frames or cfg.frames} frames at {cfg.fps} fps "
                                      f"(longest scene {longest:.2f}s, {len(scenes)} scenes)"))
                continue
            for span in spans:
                meta = copy.deepcopy(r.meta)
                meta.update(
                    source_clips=len(spans),
                    scene=span.scene,
                    scene_span_s=[round(scenes[span.scene][0], 4), round(scenes[span.scene][1], 4)],
                    start_frame=span.start_frame,
                    end_frame=span.end_frame,
                    num_frames=span.num_frames,
                    fps=cfg.fps,
                    start_time=info["start_time"] + span.start_frame / cfg.fps,
                )
                out.append(Record(key=clip_id(r.meta["source_uri"], span.start_frame, span.end_frame), meta=meta))
        return out
