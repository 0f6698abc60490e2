"""Real footage the defaults used to mishandle: sources below the clip rate, dim interiors and
static street scenes at 10-15 fps (variants made from the bundled clips, datakit.scoring.calibrate)."""
from __future__ import annotations

import numpy as np
import pytest

from datakit.ingest import list_sources
from datakit.scoring import SourceFrames, calibrate, profiles
from datakit.split import distinct_frames, source_frame_numbers
from datakit.stages.extract import Extract, ExtractConfig
from datakit.stages.probe import Probe, ProbeConfig
from datakit.stages.score import Score, ScoreConfig
from datakit.stages.split import Split, SplitConfig

KEEP = ["indoor_dim", "street_static_10fps", "street_static_12fps", "cyclist_static_10fps"]
DEFECTS = ["blurred", "shaky", "slideshow_4fps"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("footage")
    return {s.name: s for s in calibrate.calibration_sources(d, only=set(KEEP + DEFECTS))}


@pytest.mark.parametrize("src_fps,fps,start", [(10.0, 24.0, 0.0), (12.5, 24.0, 0.7), (15.0, 16.0, 1.3),
                                              (29.97002997002997, 24.0, 0.5)])
def test_source_frame_numbers_match_what_read_span_decodes(tmp_path, src_fps, fps, start):
    """Number each source frame in its pixels, resample with datakit.media.read_span, read the numbers back."""
    from conftest import write_video

    from datakit import media

    n = 40
    coded = np.zeros((n, 32, 32, 3), np.uint8)
    coded[..., 0] = (np.arange(n) * 6)[:, None, None]
    path = write_video(tmp_path / "coded.mp4", coded, fps=src_fps, codec="libx264rgb", pix_fmt="rgb24")
    got = media.read_span(str(path), start, 17, fps)
    shown = np.round(got[..., 0].mean(axis=(1, 2)) / 6).astype(int)
    assert source_frame_numbers(17, start, fps, 0.0, src_fps).tolist() == shown.tolist()
    idx = distinct_frames(shown)
    assert len(set(shown[idx].tolist())) == len(idx) == len(set(shown.tolist()))
    sf = SourceFrames.from_numbers(shown, fps, src_fps)
    assert sf.index == tuple(idx.tolist())
    assert sf.gaps == pytest.approx(np.diff(shown[idx]) * fps / src_fps)   # in clip frames


def run(stages, recs):
    for st in stages:
        recs = [r for r in recs if not r.ok] + st.process_batch([r for r in recs if r.ok])
    return recs


def test_ten_fps_source_is_not_frozen_at_24_fps(sources):
    src = sources["street_static_10fps"]
    stages = [Probe(ProbeConfig()), Split(SplitConfig(fps=24, frames=17)), Extract(ExtractConfig(height=128)),
              Score(ScoreConfig(metrics=["frozen", "motion"]))]
    for st in stages:
        st.setup()
    clips = run(stages, list_sources([str(src.path)]))
    assert clips and all(r.ok for r in clips)
    for r in clips:
        assert r.meta["source"]["fps"] == pytest.approx(10.0)
        assert r.meta["scores"]["frozen_frames"] == 0.0
        assert r.meta["scoring"]["source_frames"] in (7, 8) and r.meta["scoring"]["source_fps"] == pytest.approx(10.0)
        assert r.meta["scores"]["motion_peak"] > 0.3
    # measured on every clip frame instead, the repeats made by resampling look frozen
    from datakit import media
    from datakit.scoring import signals

    frames = media.decode(media.encode(media.read_span(str(src.path), 0.0, 17, 24.0), 24.0))
    assert signals.frozen_frames(frames) > 0.3


def test_probe_rejects_sources_below_min_fps(sources):
    recs = Probe(ProbeConfig()).process_batch(list_sources([str(sources["slideshow_4fps"].path)]))
    assert recs[0].reject.reason == "low_fps" and "4 fps" in recs[0].reject.detail and "min_fps 8" in recs[0].reject.detail
    recs = Probe(ProbeConfig(min_fps=0)).process_batch(list_sources([str(sources["slideshow_4fps"].path)]))
    assert recs[0].ok


def test_demo_profile_keeps_ordinary_footage_and_rejects_defects(sources):
    results = calibrate.run_sources(list(sources.values()), str(calibrate_pipeline()))
    for name in KEEP:
        kept = [r for r in results[name] if r[1] is None]
        assert kept, f"{name}: every clip rejected: {[r[1] for r in results[name]]}"
    assert {r[1] for r in results["blurred"]} == {"low_detail"}
    assert {r[1] for r in results["shaky"]} == {"shaky"}
    assert {r[1] for r in results["slideshow_4fps"]} == {"low_fps"}
    # the profile the demo filters with is the one calibrated
    assert profiles.load("offline").name == "offline"
    report = calibrate.report(list(sources.values()), results)
    assert "indoor_dim" in report and "ordinary min..max" in report


def calibrate_pipeline():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "pipelines" / "demo.yaml"


def test_score_verb_measures_a_resampled_clip_on_its_source_frames(sources, tmp_path, capsys):
    import json

    from datakit import cli, media

    src = str(sources["street_static_10fps"].path)
    clip = tmp_path / "clip24.mp4"
    clip.write_bytes(media.encode(media.read_span(src, 0.0, 33, 24.0), 24.0))
    scores = {}
    for extra in ([], ["--source-fps", "10"]):
        assert cli.main(["score", str(clip), "--metrics", "frozen,motion", "--json", "-q", *extra]) == 0
        scores[bool(extra)] = json.loads(capsys.readouterr().out)
    assert scores[False]["scores"]["frozen_frames"] > 0.3                     # repeats look frozen
    assert scores[True]["scores"]["frozen_frames"] == 0.0
    assert scores[True]["scoring"]["source_frames"] in (13, 14, 15)
