from fractions import Fraction

import numpy as np
import pytest

from conftest import pattern_frames, write_video
from datakit import media
from datakit.samples import sample_paths


def _sample(name):
    return str([p for p in sample_paths() if p.name == name][0])


def test_probe_real_clips():
    info = media.probe(_sample("bikes.mp4"))
    assert (info.width, info.height) == (640, 272)
    assert info.fps == pytest.approx(25.0)
    assert info.num_frames == 250
    assert info.duration_s == pytest.approx(10.0, abs=0.05)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert info.rotation == 0 and not info.vfr
    bunny = media.probe(_sample("bigbuckbunny.mp4"))
    assert (bunny.width, bunny.height) == (1280, 720) and bunny.has_audio


def test_read_span_seeks_resamples_and_resizes():
    uri = _sample("bikes.mp4")
    clip = media.read_span(uri, 6.0, 17, 24.0, size=(320, 136))
    assert clip.shape == (17, 136, 320, 3) and clip.dtype == np.uint8
    # the same span read from the start of the file (no seek) gives the same frames
    full = media.read_span(uri, 0.0, 24 * 7, 24.0, size=(320, 136))
    np.testing.assert_array_equal(clip, full[144:161])


def test_read_span_past_the_end_is_a_decode_error():
    with pytest.raises(media.MediaError) as e:
        media.read_span(_sample("carphone_pristine.mp4"), 3.5, 33, 24.0)
    assert e.value.reason == "decode_error"


def test_lossless_encode_round_trips_exactly():
    frames = pattern_frames(9, 48, 64)
    data = media.encode(frames, 24, lossless=True)
    np.testing.assert_array_equal(media.decode(data), frames)
    assert media.stream_info(data)["frames"] == 9


def test_hr_encode_quality_follows_crf():
    frames = pattern_frames(9, 64, 96)
    good, bad = media.encode(frames, 24, crf=10), media.encode(frames, 24, crf=45)
    err = lambda b: np.abs(media.decode(b).astype(int) - frames).mean()  # noqa: E731
    assert err(good) < err(bad)
    assert len(good) > len(bad)
    with pytest.raises(ValueError):
        media.encode(pattern_frames(3, 33, 64), 24)  # yuv420p needs even sizes


def test_rotation_metadata_is_applied(tmp_path):
    frames = np.zeros((5, 32, 64, 3), np.uint8)
    frames[:, :, :32] = 255                       # left half white in the coded frame
    path = write_video(tmp_path / "rot.mp4", frames, rotation=90)
    info = media.probe(str(path))
    assert info.rotation == 90 and (info.width, info.height) == (32, 64)
    clip = media.read_span(str(path), 0.0, 3, 25.0)
    assert clip.shape == (3, 64, 32, 3)
    # counter-clockwise by 90: the coded left half becomes the bottom half
    assert clip[:, 40:, :, :].mean() > 200 and clip[:, :24, :, :].mean() < 50


def test_ten_bit_and_odd_sized_sources(tmp_path):
    ten = write_video(tmp_path / "ten.mp4", pattern_frames(10, 64, 96), pix_fmt="yuv420p10le")
    info = media.probe(str(ten))
    assert info.bit_depth == 10 and info.pix_fmt.startswith("yuv420p10")
    assert media.read_span(str(ten), 0.0, 5, 25.0, size=(48, 32)).shape == (5, 32, 48, 3)
    odd = write_video(tmp_path / "odd.mkv", pattern_frames(10, 71, 99), codec="ffv1", pix_fmt="yuv444p")
    info = media.probe(str(odd))
    assert (info.width, info.height) == (99, 71) and info.num_frames == 10
    assert media.read_span(str(odd), 0.0, 9, 25.0, size=(64, 48)).shape == (9, 48, 64, 3)


def test_variable_frame_rate_maps_onto_the_target_timeline(tmp_path):
    # 10 frames, each a flat colour; the first five 40 ms apart, the last five 120 ms apart
    frames = np.stack([np.full((32, 32, 3), 20 * i, np.uint8) for i in range(10)])
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 120, 160, 280, 400, 520, 640, 760]
    path = write_video(tmp_path / "vfr.mkv", frames, codec="ffv1", pix_fmt="yuv444p", pts=pts, time_base=tb)
    info = media.probe(str(path))
    assert info.vfr and info.num_frames == 10
    clip = media.read_span(str(path), 0.0, 20, 25.0)   # 40 ms steps
    shown = [int(round(c.mean() / 20)) for c in clip]
    # frame i is on screen from pts[i] to pts[i+1]
    want = [max(j for j, p in enumerate(pts) if p <= 40 * k + 1e-6) for k in range(20)]
    assert shown == want
