"""A corpus of every kind of broken or odd input a crawl yields, made with PyAV at test time.

Each entry says what the pipeline must do with it: reject it with a given reason,
or process it (``None``). ``partial`` entries may give samples and rejects both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import pattern_frames, write_audio_only, write_video


def make_bad_inputs(d: Path) -> dict[str, Path]:
    """The broken inputs of the foundation issue: each must become a reject."""
    from datakit.samples import sample_paths

    d.mkdir(parents=True, exist_ok=True)
    bad = {}
    bad["zero_byte"] = d / "zero_byte.mp4"
    bad["zero_byte"].write_bytes(b"")
    bikes = [p for p in sample_paths() if p.name == "bikes.mp4"][0].read_bytes()
    bad["truncated"] = d / "truncated.mp4"            # moov atom at the end: nothing readable
    bad["truncated"].write_bytes(bikes[: len(bikes) // 3])
    bad["not_video"] = d / "not_video.mp4"
    bad["not_video"].write_text("this is a text file, not a video\n" * 20)
    bad["audio_only"] = write_audio_only(d / "audio_only.mp4")
    bad["one_frame"] = write_video(d / "one_frame.mp4", pattern_frames(1, 144, 176))
    return bad


def make_odd_corpus(d: Path) -> dict[str, tuple[Path, str | None]]:
    """name -> (path, expected reject reason, or None if it must be processed, or 'partial')."""
    bad = make_bad_inputs(d)
    out: dict[str, tuple[Path, str | None]] = {
        "zero_byte": (bad["zero_byte"], "unreadable"),
        "truncated": (bad["truncated"], "unreadable"),
        "not_video": (bad["not_video"], "unreadable"),
        "audio_only": (bad["audio_only"], "no_video_stream"),
        "one_frame": (bad["one_frame"], "too_short"),
    }
    clip = pattern_frames(40, 144, 192)
    # an mp4 whose index is at the front, cut in the middle: frames up to the cut decode
    fs = write_video(d / "faststart_full.mp4", pattern_frames(60, 144, 192), options={"movflags": "faststart"})
    data = fs.read_bytes()
    fs.unlink()
    (d / "truncated_faststart.mp4").write_bytes(data[: int(len(data) * 0.6)])
    out["truncated_faststart"] = (d / "truncated_faststart.mp4", "partial")
    out["wrong_extension"] = (write_video(d / "wrong_extension.avi", clip), None)       # really an mp4
    out["odd_size"] = (write_video(d / "odd_size.mkv", pattern_frames(40, 147, 201), codec="ffv1",
                                   pix_fmt="yuv444p"), None)
    out["ten_bit"] = (write_video(d / "ten_bit.mov", clip, pix_fmt="yuv420p10le"), None)
    out["rotated"] = (write_video(d / "rotated.mp4", clip, rotation=-90), None)
    from fractions import Fraction
    steps = [40 if i % 3 else 90 for i in range(39)]
    pts = [0] + list(np.cumsum(steps))
    out["vfr"] = (write_video(d / "vfr.mkv", clip, pts=[int(p) for p in pts], time_base=Fraction(1, 1000)), None)
    out["huge"] = (write_video(d / "huge.mkv", pattern_frames(2, 144, 9000), codec="ffv1", pix_fmt="yuv444p"),
                   "too_large")
    ffv1 = write_video(d / "codec_tmp.mkv", clip[:10], codec="ffv1", pix_fmt="yuv444p")
    (d / "unsupported_codec.mkv").write_bytes(ffv1.read_bytes().replace(b"V_FFV1", b"V_QQQQ"))
    ffv1.unlink()
    out["unsupported_codec"] = (d / "unsupported_codec.mkv", "unsupported_codec")
    return out
