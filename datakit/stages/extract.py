"""extract: decode each clip's span at the clip rate, resize and crop, encode ``hr.mp4``.

The encoder settings that shape the bytes go to ``hr`` in the sample json, so that
``datakit reproduce`` re-makes ``hr.mp4`` bit for bit: a fixed thread count (x264 cuts
each frame into one slice per thread, so its output depends on it) and x264's
macroblock-tree rate control off (with it on, the bundled libx264 gives different bytes
from run to run on the same frames).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import media
from ..records import Record
from .base import Stage, StageConfig


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
    threads: int = Field(4, ge=1, le=64, description="encoder threads: fixed, because the bytes depend on it")
    mbtree: bool = Field(False, description="x264 macroblock-tree rate control (on: different bytes from run "
                                            "to run, so hr.mp4 cannot be re-made bit for bit)")


def encode_hr(frames, fps: float, hr: dict) -> bytes:
    """Encode frames with the settings recorded in a sample json's ``hr`` (also used for ``ref.mp4``).

    Records made before the settings were recorded (no ``threads`` / ``mbtree``) get the
    encoder's defaults, as they did then."""
    codec = hr.get("codec", "libx264")
    options = {"x264-params": "mbtree=0"} if codec == "libx264" and hr.get("mbtree") is False else None
    return media.encode(frames, fps, codec=codec, crf=hr.get("crf", 18), preset=hr.get("preset", "medium"),
                        threads=hr.get("threads"), options=options)


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
    reproducible = True

    def process_batch(self, records: list[Record]) -> list[Record]:
        cfg: ExtractConfig = self.config
        for r in records:
            src = r.meta["source"]
            _, _, cw, ch = hr_geometry(src["width"], src["height"], cfg.height, cfg.width, cfg.multiple)
            if not cfg.allow_upscale and (src["width"] < cw or src["height"] < ch):
                r.rejected(self.name, "too_small",
                           f"source {src['width']}x{src['height']} is smaller than HR {cw}x{ch}")
                continue
            self._make(r, cw, ch, {"codec": cfg.codec, "crf": cfg.crf, "preset": cfg.preset,
                                   "threads": cfg.threads, "mbtree": cfg.mbtree})
        return records

    def replay(self, record: Record, recorded: dict) -> dict[str, str]:
        """``hr.mp4`` again from the source span, at the recorded size with the recorded encoder settings."""
        hr = recorded["hr"]
        self._make(record, hr["width"], hr["height"],
                   {k: hr[k] for k in ("codec", "crf", "preset", "threads", "mbtree") if k in hr})
        why = {}
        if "threads" not in hr or hr.get("mbtree") is not False:
            why["hr.mp4"] = ("made before datakit fixed the encoder's threads and turned x264's mbtree off: "
                             "its bytes were not reproducible")
        return why

    def _make(self, r: Record, cw: int, ch: int, settings: dict) -> None:
        src = r.meta["source"]
        rw, rh, _, _ = hr_geometry(src["width"], src["height"], ch, cw, self.config.multiple)
        frames = media.read_span(r.meta["source_uri"], r.meta["start_time"], r.meta["num_frames"],
                                 r.meta["fps"], size=(rw, rh))
        y0, x0 = (rh - ch) // 2, (rw - cw) // 2
        frames = frames[:, y0:y0 + ch, x0:x0 + cw]
        r.media["hr.mp4"] = encode_hr(frames, r.meta["fps"], settings)
        r.meta["hr"] = {"width": cw, "height": ch, "frames": int(frames.shape[0]), **settings}
