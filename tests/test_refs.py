"""References: frame choice, instance rules, crops, edit references, the OpenCV backend on real footage."""
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from conftest import pattern_frames
from datakit import ingest, media
from datakit.refs import edit as editlib
from datakit.refs.idrefs import (
    IdRules, crop_box, crop_instance, extract_ids, pick_reference_frames, select_instances, span_gap)
from datakit.records import Record
from datakit.refs.backends import make_segmenter
from datakit.refs.segment import Instance, OpenCVConfig, box_of_mask, instance_from_mask
from datakit.runner import run_stage
from datakit.samples import sample_paths
from datakit.stages import STAGES

SAMPLES = {p.name: str(p) for p in sample_paths()}


def rect_instance(h, w, box, label="person", score=1.0) -> Instance:
    m = np.zeros((h, w), bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return instance_from_mask(m, label, score, "test")


# ---------------------------------------------------------------- reference frame choice

def test_reference_frame_is_outside_the_span_whenever_the_source_allows_it():
    rng = np.random.default_rng(0)
    for _ in range(400):
        total = int(rng.integers(1, 120))
        start = int(rng.integers(0, total))
        end = int(rng.integers(start + 1, total + 1))
        min_gap = int(rng.integers(0, 40))
        picks = pick_reference_frames(total, start, end, min_gap, count=5, strategy=str(rng.choice(["random", "nearest"])),
                                      rng=np.random.default_rng(int(rng.integers(1 << 30))))
        gaps = [span_gap(i, start, end) for i in range(total)]
        assert len({p.index for p in picks}) == len(picks) == min(5, total)
        assert all(0 <= p.index < total and p.gap == gaps[p.index] for p in picks)
        first = picks[0]
        if max(gaps) >= min_gap:                       # a frame far enough exists: always taken first
            assert first.fallback is None and first.gap >= min_gap and not start <= first.index < end
        elif max(gaps) >= 0:                           # only closer frames outside: relaxed, still outside
            assert first.fallback == "gap_relaxed" and first.gap == max(gaps)
        else:                                          # the clip is the whole source
            assert first.fallback == "inside_span" and start <= first.index < end
        # every fallback-free pick respects the gap; inside picks only after all outside ones
        assert all(p.gap >= min_gap for p in picks if p.fallback is None)
        kinds = [p.fallback or "" for p in picks]
        assert kinds == sorted(kinds, key=["", "gap_relaxed", "inside_span"].index)


def test_reference_frame_window_nearest_and_no_inside_fallback():
    picks = pick_reference_frames(100, 40, 57, min_gap=10, max_gap=12, count=10, strategy="nearest")
    assert [(p.index, p.gap) for p in picks[:6]] == [(29, 10), (67, 10), (28, 11), (68, 11), (27, 12), (69, 12)]
    assert all(p.fallback == "gap_relaxed" for p in picks[6:])
    assert pick_reference_frames(17, 0, 17, min_gap=5, inside_fallback=False) == []
    assert pick_reference_frames(17, 0, 17, min_gap=5)[0].fallback == "inside_span"
    # random picks are reproducible from the generator's seed
    a = pick_reference_frames(500, 200, 277, 24, count=3, rng=np.random.default_rng(7))
    assert a == pick_reference_frames(500, 200, 277, 24, count=3, rng=np.random.default_rng(7))


# ---------------------------------------------------------------- instance rules and crops

def test_instances_kept_by_area_largest_first_up_to_max_without_duplicates():
    h, w = 100, 200
    big = rect_instance(h, w, (10, 10, 90, 90))           # 6400 px
    dup = rect_instance(h, w, (12, 10, 90, 90))           # IoU 0.975 with big
    mid = rect_instance(h, w, (100, 20, 150, 80))         # 3000
    small = rect_instance(h, w, (160, 10, 190, 40))       # 900
    tiny = rect_instance(h, w, (195, 95, 199, 99))        # 16 < 1 % of 20000
    weak = rect_instance(h, w, (150, 50, 200, 100), score=0.1)
    kept, dropped = select_instances([tiny, small, mid, dup, big, weak], (h, w),
                                     IdRules(min_area=0.01, max_ids=2, min_score=0.5))
    assert kept == [big, mid]
    assert dropped == {"too_small": 1, "duplicate": 1, "over_max_ids": 1, "low_score": 1}
    kept, dropped = select_instances([small, big, mid], (h, w), IdRules(min_area=0.2, max_ids=5))
    assert kept == [big] and dropped == {"too_small": 2}


def test_crop_has_margin_constant_background_and_source_pixels():
    frame = pattern_frames(1, 120, 160)[0]
    mask = np.zeros((120, 160), bool)
    yy, xx = np.mgrid[:120, :160]
    mask[(yy - 60) ** 2 / 40 ** 2 + (xx - 80) ** 2 / 20 ** 2 <= 1] = True   # an ellipse, box 60..101 x 20..101
    inst = instance_from_mask(mask, "person", 0.9, "test")
    assert inst.box == box_of_mask(mask) == (60, 20, 101, 101)
    rules = IdRules(margin=0.25, background=(10, 20, 30))
    crop, cb = crop_instance(frame, inst, rules)
    assert cb == crop_box(inst.box, (120, 160), 0.25) == (49, 0, 112, 120)    # 41 wide: 10.25 px each side; top clipped
    assert crop.shape == (120, 63, 3)
    sub = mask[0:120, 49:112]
    assert (crop[sub] == frame[0:120, 49:112][sub]).all()
    assert (crop[~sub] == [10, 20, 30]).all()
    crops, rows, dropped = extract_ids(frame, [inst], rules)
    assert rows[0]["member"] == "ref_00.png" and rows[0]["crop_box"] == [49, 0, 112, 120]
    assert rows[0]["box"] == [60, 20, 101, 101] and rows[0]["area"] == int(mask.sum()) and dropped == {}


# ---------------------------------------------------------------- edit references

def moving_square_clip(t=9, h=64, w=96):
    frames = pattern_frames(t, h, w)
    frames[:, :, :, 2] = 60
    masks = np.zeros((t, h, w), bool)
    for i in range(t):
        x0 = 10 + 4 * i
        masks[i, 20:44, x0:x0 + 20] = True
        frames[i][masks[i]] = (230, 30, 30)              # a red object moving right
    return frames, masks


@pytest.mark.parametrize("method", ["inpaint", "recolor"])
def test_edit_reference_equals_hr_outside_the_dilated_mask_and_differs_inside(method):
    frames, masks = moving_square_clip()
    dil = editlib.dilate_masks(masks, 3)
    assert (dil >= masks).all() and dil.sum() > masks.sum()
    params = (editlib.InpaintParams(radius=3) if method == "inpaint"
              else editlib.recolor_params(frames, dil, np.random.default_rng(0)))
    ref = editlib.edit_frames(frames, dil, method, params)
    assert ref.shape == frames.shape and ref.dtype == np.uint8
    assert (ref[~dil] == frames[~dil]).all()                               # bit-exact outside
    inside = np.abs(ref[masks].astype(int) - frames[masks].astype(int)).sum(axis=-1)
    assert inside.mean() > 60 and (inside > 0).mean() > 0.95               # changed inside
    if method == "recolor":                                                # lightness kept, hue moved
        lab0 = editlib._lab(frames, masks)
        lab1 = editlib._lab(ref, masks)
        assert np.abs(lab0[:, 0] - lab1[:, 0]).mean() < 6
    mv = editlib.mask_video(dil)
    assert mv.shape == frames.shape and set(np.unique(mv)) == {0, 255}
    assert (media.decode(media.encode(mv, 24, lossless=True)) == mv).all()    # stored exactly


def test_tracking_follows_the_object_by_iou_and_carries_it_along_flow_when_missed():
    frames, masks = moving_square_clip(t=9)
    h, w = masks.shape[1:]
    per_frame = []
    for i in range(9):
        obj = instance_from_mask(masks[i], "person", 1.0, "test")
        other = rect_instance(h, w, (70, 45, 90, 60))               # another person, never overlapping
        per_frame.append([] if i in (3, 4) else [other, obj])       # the object is missed in frames 3, 4
    assert editlib.choose_object(per_frame, (h, w), editlib.ObjectRules(min_area=0.05, max_area=0.5)) == (0, 1)
    assert editlib.choose_object(per_frame, (h, w), editlib.ObjectRules(min_area=0.5)) is None
    tr = editlib.track_object(per_frame, anchor=5, index=1, min_iou=0.3, frames=frames)
    assert tr.found == [True, True, True, False, False, True, True, True, True] and tr.missed == 2
    for i in (0, 1, 2, 5, 6, 7, 8):
        assert (tr.masks[i] == masks[i]).all()
    for i in (3, 4):                                                # carried by optical flow: close to the truth
        assert editlib.mask_iou(tr.masks[i], masks[i]) > 0.7
    held = editlib.track_object(per_frame, anchor=5, index=1, min_iou=0.3)
    assert held.propagation == "hold" and (held.masks[3] == masks[5]).all()
    assert held.missed > tr.missed                  # a held mask drifts off a moving object; flow keeps up


# ---------------------------------------------------------------- the OpenCV backend on real footage

@pytest.fixture(scope="module")
def opencv_seg():
    return make_segmenter(OpenCVConfig())


def _covers(inst, x, y):
    x0, y0, x1, y1 = inst.box
    return x0 <= x < x1 and y0 <= y < y1


def test_opencv_backend_finds_the_people_in_real_images(opencv_seg):
    astro = skimage.data.astronaut()
    def at(name, *times):
        return [media.read_span(SAMPLES[name], t, 1, 25)[0] for t in times]

    carphone = at("carphone_pristine.mp4", *np.arange(8) / 4)                        # 0 .. 1.75 s
    cyclist = at("bikes.mp4", 4.6, 5.0, 5.3)                                          # before the cut at 5.46 s
    street = at("bikes.mp4", 0.0, 1.0)                                                # from above, no person
    frames = [astro, *carphone, *cyclist, *street]
    res = opencv_seg.segment(frames)
    a, car, cyc, empty = res[0], res[1:9], res[9:12], res[12:]
    assert any(_covers(i, 225, 115) for i in a)                                      # the astronaut's face
    assert sum(any(_covers(i, 88, 62) for i in r) for r in car) >= 6                 # the man in the car
    for r in cyc:                                                                    # the cyclist, x ~ 350..500
        assert any(i.detector == "hog" and 380 < (i.box[0] + i.box[2]) / 2 < 470 for i in r)
    assert empty == [[], []]
    for frame, inst in [(f, i) for f, r in zip(frames, res) for i in r]:
        assert inst.label == "person" and inst.mask.shape == frame.shape[:2] and inst.mask.dtype == bool
        x0, y0, x1, y1 = inst.box
        box_area = (x1 - x0) * (y1 - y0)
        assert inst.mask[y0:y1, x0:x1].sum() == inst.area                            # tight box
        if inst.extra["mask_method"] == "grabcut":                                   # a real outline, not the box
            assert 0.2 * box_area < inst.area < 0.97 * box_area


def test_opencv_backend_is_reproducible_and_checks_classes(opencv_seg):
    frame = media.read_span(SAMPLES["carphone_pristine.mp4"], 0.5, 1, 1.0)[0]
    a, b = opencv_seg.segment([frame, frame])
    assert len(a) == len(b) >= 1 and all((x.mask == y.mask).all() for x, y in zip(a, b))
    with pytest.raises(ValueError, match="person and cat"):
        make_segmenter(OpenCVConfig(classes=["giraffe"]))
    assert make_segmenter(OpenCVConfig(classes=["animals"])).classes == ["cat"]


# ---------------------------------------------------------------- stages on real clips

def _clips(paths, frames=17, clips=4):
    recs = ingest.list_sources(paths)
    for st in (STAGES["probe"](STAGES["probe"].Config()),
               STAGES["split"](STAGES["split"].Config(fps=24, frames=frames, max_clips_per_source=clips))):
        recs = run_stage(st, recs)
    assert all(r.ok for r in recs)
    return recs


def _stage(name, **kw):
    st = STAGES[name](STAGES[name].Config(**kw))
    st.setup()
    return st


def test_id_refs_stage_on_real_clips(tmp_path):
    recs = _clips([SAMPLES["carphone_pristine.mp4"]], frames=9, clips=3)
    st = _stage("id_refs", segmenter={"backend": "opencv"}, min_gap_s=0.5, max_gap_s=3.0, tries=5, pick="nearest",
                min_area=0.05, max_ids=2, margin=0.1, background=(0, 0, 0))
    out = run_stage(st, recs)
    ok = [r for r in out if r.ok]
    assert len(ok) >= 2
    for r in ok:
        ref = r.meta["refs"]
        f = ref["frame"]
        assert not r.meta["start_frame"] <= f["index"] < r.meta["end_frame"]             # never inside the clip
        assert f["fallback"] is None and f["gap_frames"] >= 12 and f["gap_s"] >= 0.5       # 0.5 s at 24 fps
        assert f["time_s"] == pytest.approx(r.meta["source"]["start_time"] + f["index"] / 24, abs=1e-3)
        assert (f["width"], f["height"]) == (176, 144)                                    # source resolution
        assert ref["segmenter"]["backend"] == "opencv" and 1 <= ref["num_ids"] == len(ref["ids"]) <= 2
        for row in ref["ids"]:
            img = np.array(Image.open(io.BytesIO(r.media[row["member"]])))
            x0, y0, x1, y1 = row["crop_box"]
            assert img.shape == (y1 - y0, x1 - x0, 3) and row["area_frac"] >= 0.05
            assert (img == 0).all(axis=-1).any()                                          # masked background
            frame = media.read_span(r.meta["source_uri"], f["time_s"], 1, 24)[0]
            fg = ~(img == 0).all(axis=-1)
            assert (img[fg] == frame[y0:y1, x0:x1][fg]).all()                             # source pixels inside
        assert sorted(k for k in r.media) == [row["member"] for row in ref["ids"]]


def test_id_refs_rejects_clips_without_an_id_and_records_fallbacks():
    bunny = _clips([SAMPLES["bigbuckbunny.mp4"]], clips=1)
    st = _stage("id_refs", segmenter={"backend": "opencv", "detectors": ["hog"]}, tries=2)
    (r,) = run_stage(st, bunny)
    assert r.reject.reason == "no_id" and "2 reference frame(s)" in r.reject.detail
    # a clip that is the whole source: inside the span as a recorded fallback, or a reject
    (clip,) = _clips([SAMPLES["carphone_pristine.mp4"]], clips=1)
    clip.meta.update(start_frame=0, end_frame=17, start_time=clip.meta["source"]["start_time"])
    clip.meta["source"]["duration_s"] = 17 / 24
    (r,) = run_stage(_stage("id_refs", segmenter={"backend": "opencv"}, min_area=0.05),
                     [Record(key=clip.key, meta=dict(clip.meta))])
    assert r.ok and r.meta["refs"]["frame"]["fallback"] == "inside_span"
    (r,) = run_stage(_stage("id_refs", segmenter={"backend": "opencv"}, inside_fallback=False),
                     [Record(key=clip.key, meta=dict(clip.meta))])
    assert r.reject.reason == "no_reference_frame"


def test_edit_refs_stage_on_a_real_clip():
    recs = _clips([SAMPLES["carphone_pristine.mp4"]], frames=9, clips=1)
    recs = run_stage(_stage("extract", height=128, crf=18, preset="fast"), recs)
    hr = media.decode(recs[0].media["hr.mp4"])
    (r,) = run_stage(_stage("edit_refs", segmenter={"backend": "opencv"}, method="inpaint", lossless=True,
                            max_area=0.6, max_missed=0.5), recs)
    assert r.ok, r.reject
    ref, mask = media.decode(r.media["ref.mp4"]), media.decode(r.media["mask.mp4"])
    assert ref.shape == hr.shape == mask.shape and set(np.unique(mask)) <= {0, 255}
    m = mask[..., 0] == 255
    assert (ref[~m] == hr[~m]).all()                                           # lossless: exact outside the mask
    assert np.abs(ref[m].astype(int) - hr[m].astype(int)).mean() > 5           # the person is gone
    doc = r.meta["refs"]
    assert doc["method"] == "inpaint" and doc["params"]["algorithm"] == "telea"
    assert doc["object"]["label"] == "person" and doc["track"]["matched"] >= 5 and doc["mask"]["dilate_px"] == 1
    assert r.meta["ref"]["frames"] == r.meta["mask"]["frames"] == 9 and r.meta["mask"]["lossless"]
    # default storage: H.264 at the HR's settings; rejects when nothing qualifies
    (r2,) = run_stage(_stage("edit_refs", segmenter={"backend": "opencv"}, method="recolor", max_area=0.6,
                             max_missed=0.5), [Record(key=recs[0].key, meta=dict(recs[0].meta),
                                                             media=dict(recs[0].media))])
    assert r2.meta["ref"]["codec"] == "libx264" and r2.meta["ref"]["crf"] == 18 and r2.meta["refs"]["method"] == "recolor"
    (r3,) = run_stage(_stage("edit_refs", segmenter={"backend": "opencv"}, max_area=0.01),
                      [Record(key=recs[0].key, meta=dict(recs[0].meta), media=dict(recs[0].media))])
    assert r3.reject.reason == "no_object"


# ---------------------------------------------------------------- a wide shot: small people

def wide_street_frame():
    """A 1024x576 wide street shot made from bikes.mp4: the street seen through the railings
    (6.5 s) enlarged, and the cyclist of 4.6 s, cut out with the segmenter's own mask and
    shrunk to 92 px tall, standing at four places. Returns the frame and the four boxes."""
    import cv2

    bg = media.read_span(SAMPLES["bikes.mp4"], 6.5, 1, 25)[0]
    person = media.read_span(SAMPLES["bikes.mp4"], 4.6, 1, 25)[0]
    cyc = max(make_segmenter(OpenCVConfig(), min_area=0.02).segment([person])[0], key=lambda i: i.area)
    x0, y0, x1, y1 = cyc.box
    ph = 92
    pw = round((x1 - x0) * ph / (y1 - y0))
    small = cv2.resize(person[y0:y1, x0:x1], (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(cyc.mask[y0:y1, x0:x1].astype(np.float32), (pw, ph), interpolation=cv2.INTER_AREA)[..., None]
    big = cv2.resize(bg, (round(bg.shape[1] * 576 / bg.shape[0]), 576), interpolation=cv2.INTER_CUBIC)
    left = (big.shape[1] - 1024) // 2
    frame = np.ascontiguousarray(big[:, left:left + 1024])
    boxes = []
    for x, y, flip in [(150, 380, False), (420, 400, True), (700, 370, False), (860, 410, True)]:
        p, a = (small[:, ::-1], alpha[:, ::-1]) if flip else (small, alpha)
        frame[y:y + ph, x:x + pw] = np.round(p * a + frame[y:y + ph, x:x + pw] * (1 - a)).astype(np.uint8)
        boxes.append((x, y, x + pw, y + ph))
    return frame, boxes


def test_opencv_backend_finds_small_people_the_area_rule_keeps():
    from datakit.refs.idrefs import IdRules, select_instances
    from datakit.refs.opencv import hog_scale

    frame, boxes = wide_street_frame()
    h, w = frame.shape[:2]
    person_area = 0.006                  # each pasted cyclist covers ~0.63-0.69 % of the frame
    min_area = 0.005                     # an area rule that keeps them
    assert hog_scale(w, h, min_area) > 1.2                                      # they are enlarged for HOG
    found = make_segmenter(OpenCVConfig(), min_area=min_area).segment([frame])[0]
    kept, _ = select_instances(found, (h, w), IdRules(min_area=min_area, max_ids=8))
    for bx in boxes:
        cx, cy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
        match = [i for i in kept if i.detector == "hog" and _covers(i, cx, cy)]
        assert match, f"no person kept around {bx}: {[(i.box, i.detector) for i in found]}"
        assert match[0].area >= person_area * h * w * 0.8
