import pytest

from datakit import records, split
from datakit.samples import sample_paths


def test_4k1_helpers():
    assert [n for n in range(1, 30) if split.is_4k1(n)] == [1, 5, 9, 13, 17, 21, 25, 29]
    assert split.floor_4k1(20) == 17 and split.floor_4k1(21) == 21 and split.floor_4k1(0) == 0


def test_clips_never_cross_a_cut_and_are_4k1():
    scenes = [(0.0, 2.0), (2.0, 2.5), (2.5, 10.0)]
    spans = split.plan_clips(scenes, fps=24, frames=21, cut_margin=2)
    assert spans and all(s.num_frames == 21 for s in spans)
    bounds = [(round(a * 24), round(b * 24)) for a, b in scenes]
    for s in spans:
        lo, hi = bounds[s.scene]
        assert lo + 2 <= s.start_frame and s.end_frame <= hi - 2
    # back to back inside a scene, the 0.5 s scene (12 frames) yields nothing
    assert {s.scene for s in spans} == {0, 2}
    starts = [s.start_frame for s in spans if s.scene == 2]
    assert all(b - a == 21 for a, b in zip(starts, starts[1:]))


def test_short_scene_gives_one_shorter_clip_down_to_min_frames():
    spans = split.plan_clips([(0.0, 1.0)], fps=24, frames=77, min_frames=17)
    assert [(s.start_frame, s.num_frames) for s in spans] == [(0, 21)]
    assert split.plan_clips([(0.0, 0.5)], fps=24, frames=77, min_frames=17) == []
    assert split.plan_clips([(0.0, 1.0)], fps=24, frames=77) == []


def test_stride_and_max_clips():
    spans = split.plan_clips([(0.0, 10.0)], fps=10, frames=21, stride=10)
    assert [s.start_frame for s in spans] == list(range(0, 80, 10))
    assert len(split.plan_clips([(0.0, 10.0)], fps=10, frames=21, max_clips=2)) == 2


def test_scene_detection_on_real_footage():
    bikes = [p for p in sample_paths() if p.name == "bikes.mp4"][0]
    scenes = split.detect_scenes(str(bikes))
    assert len(scenes) >= 4                       # the clip has several hard cuts
    assert scenes[0][0] == pytest.approx(0.0) and scenes[-1][1] == pytest.approx(10.0, abs=0.1)
    assert all(a < b for a, b in scenes)
    carphone = [p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0]
    assert len(split.detect_scenes(str(carphone))) == 1


def test_clip_ids_are_deterministic_hex_without_dots():
    a = records.clip_id("/data/v.mp4", 0, 21)
    assert a == records.clip_id("/data/v.mp4", 0, 21)
    assert len(a) == 32 and "." not in a and int(a, 16) >= 0
    assert len({a, records.clip_id("/data/v.mp4", 21, 42), records.clip_id("/data/w.mp4", 0, 21)}) == 3
