"""extract: decode each clip's span at the clip rate, resize and crop, encode ``hr.mp4``."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import media
from ..records import Record
from .base import Stage, StageConfig


#: x264's macroblock-tree rate control does not give the same bytes from one process to the next
#: (measured: the same YUV input, 1 of 6 processes differing); without it the HR of a span is
#: the same bytes in every job that extracts it (``curate``, then each ``build``)
REPRODUCIBLE = {"libx264": {"x264-params": "mbtree=0"}}


class ExtractConfig(StageConfig):
    stage: Literal["extract"] = "extract"
    height: int = Field(720, ge=16, description="HR height in pixels")
    width: int | None = Field(None, ge=16, description="HR width; default: keep the aspect ratio")
    multiple: int = Field(16, ge=2, description="HR sizes are rounded to a multiple of this (VAE: 16)")
    allow_upscale: bool = Field(False, description="accept sources smaller than the HR size")
    codec: Literal["libx264", "libx265"] = "libx264"
    crf: int = Field(18, ge=0, le=51, description="HR quality (lower is better; 18 is visually lossless)")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                    "veryslow"] = "medium"


def hr_geometry(src_w: int, src_h: int, height: int, width: int | None, multiple: int):
    """(resize_w, resize_h, crop_w, crop_h): resize to cover the HR size, then centre-crop."""
    crop_h = max(multiple, round(height / multiple) * multiple)
    if width is None:
        crop_w = max(multiple, round(src_w * crop_h / src_h / multiple) * multiple)
    else:
        crop_w = max(multiple, round(width / multiple) * multiple)
    scale = max(crop_w / src_w, crop_h / src_h)
    rw, rh = max(crop_w, round(src_w * scale)), max(crop_h, round(src_h * scale))
    rw += rw % 2
    rh += rh % 2
    return rw, rh, crop_w, crop_h


class Extract(Stage):
    name = "extract"
    requires = ("split",)
    Config = ExtractConfig

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: ExtractConfig = self.config
        for r in records:
            src = r.meta["source"]
            rw, rh, cw, ch = hr_geometry(src["width"], src["height"], cfg.height, cfg.width, cfg.multiple)
            if not cfg.allow_upscale and (src["width"] < cw or src["height"] < ch):
                r.rejected(self.name, "too_small",
                           f"source {src['width']}x{src['height']} is smaller than HR {cw}x{ch}")
                continue
            frames = media.read_span(r.meta["source_uri"], r.meta["start_time"], r.meta["num_frames"],
                                     r.meta["fps"], size=(rw, rh))
            y0, x0 = (rh - ch) // 2, (rw - cw) // 2
            frames = frames[:, y0:y0 + ch, x0:x0 + cw]
            r.media["hr.mp4"] = media.encode(frames, r.meta["fps"], codec=cfg.codec, crf=cfg.crf, preset=cfg.preset,
                                            options=REPRODUCIBLE.get(cfg.codec))
            r.meta["hr"] = {"width": cw, "height": ch, "frames": int(frames.shape[0]), "codec": cfg.codec,
                            "crf": cfg.crf, "preset": cfg.preset}
        return records
