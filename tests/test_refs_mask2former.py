"""A tiny randomly initialised Mask2Former, saved with save_pretrained and loaded through datakit."""
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from datakit import ingest, media
from datakit.records import Record
from datakit.refs.mask2former import ModelNotFound, class_ids, resolve_model
from datakit.refs.backends import make_segmenter
from datakit.refs.segment import Mask2FormerConfig, box_of_mask, mask_iou
from datakit.runner import run_stage
from datakit.samples import sample_paths
from datakit.stages import STAGES

CARPHONE = str([p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """SPEC §9 sizes; the class head is biased towards 'person' so random masks come out as people."""
    import torch
    from transformers import Mask2FormerConfig as HFConfig
    from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor, SwinConfig

    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    id2label = {0: "person", 1: "dog", 2: "cat", 3: "car"}
    cfg = HFConfig(backbone_config=backbone, hidden_dim=32, id2label=id2label,
                   label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(cfg).eval()
    with torch.no_grad():
        model.class_predictor.bias.zero_()
        model.class_predictor.bias[0] = 6.0
    root = tmp_path_factory.mktemp("models")
    d = root / "acme" / "tiny-mask2former"
    model.save_pretrained(d)
    Mask2FormerImageProcessor(size={"shortest_edge": 96, "longest_edge": 160}).save_pretrained(d)
    return d


def seg_config(path, **kw):
    kw.setdefault("threshold", 0.5)
    kw.setdefault("overlap_mask_area_threshold", 0.3)
    return Mask2FormerConfig(model=str(path), **kw)


def test_checkpoints_are_found_on_disk_only(tiny_dir, monkeypatch, tmp_path):
    assert resolve_model(str(tiny_dir)) == tiny_dir
    monkeypatch.setenv("DATAKIT_MODELS", str(tiny_dir.parents[1]))
    assert resolve_model("acme/tiny-mask2former") == tiny_dir                       # $DATAKIT_MODELS/<id>
    with pytest.raises(ModelNotFound, match="nothing is downloaded") as e:
        resolve_model("facebook/mask2former-swin-large-coco-panoptic")
    assert str(tiny_dir.parents[1]) in str(e.value)
    with pytest.raises(ModelNotFound):
        resolve_model(str(tmp_path / "missing"))
    # classes by name from config.label2id; animals expand to those the checkpoint has
    l2i = {"person": 0, "dog": 1, "cat": 2, "car": 3}
    assert class_ids(l2i, ["person", "animals"]) == {0: "person", 1: "dog", 2: "cat"}
    assert class_ids(l2i, ["*"]) == {0: "person", 1: "dog", 2: "cat", 3: "car"}
    with pytest.raises(ValueError, match="no class 'giraffe'"):
        class_ids(l2i, ["giraffe"])


@pytest.mark.parametrize("mode", ["panoptic", "instance"])
def test_tiny_mask2former_segments_frames_of_any_size(tiny_dir, mode):
    seg = make_segmenter(seg_config(tiny_dir, mode=mode, classes=["person", "animals"]))
    assert seg.describe()["classes"] == ["cat", "dog", "person"] and seg.describe()["mode"] == mode
    astro = skimage.data.astronaut()
    car = media.read_span(CARPHONE, 0.5, 1, 25)[0]
    wide = np.ascontiguousarray(np.concatenate([astro, astro], axis=1)[:200])
    res = seg.segment([astro, car, wide, car])
    assert len(res) == 4 and all(res)
    for frame, insts in zip([astro, car, wide, car], res):
        for inst in insts:
            assert inst.mask.shape == frame.shape[:2] and inst.mask.dtype == bool
            assert inst.box == box_of_mask(inst.mask) and inst.area > 0
            assert inst.label in ("person", "dog", "cat") and 0 <= inst.score <= 1 and inst.detector == "mask2former"
    if mode == "panoptic":                                   # panoptic segments never overlap
        stack = np.stack([i.mask for i in res[0]])
        assert stack.sum(axis=0).max() == 1
    # a frame's result does not depend on the other frames of its batch
    alone = seg.segment([car])[0]
    assert len(alone) == len(res[1]) == len(res[3])
    for a in alone:                     # same segments (query order and last-bit rounding may differ)
        for b in res[1], res[3]:
            best = max(b, key=lambda x: mask_iou(a.mask, x.mask))
            assert mask_iou(a.mask, best.mask) > 0.99 and best.score == pytest.approx(a.score, abs=1e-3)


def test_id_refs_with_tiny_mask2former_writes_well_formed_crops(tiny_dir):
    recs = ingest.list_sources([CARPHONE])
    for st in (STAGES["probe"](STAGES["probe"].Config()),
               STAGES["split"](STAGES["split"].Config(fps=24, frames=17, max_clips_per_source=2))):
        recs = run_stage(st, recs)
    st = STAGES["id_refs"](STAGES["id_refs"].Config(
        segmenter=seg_config(tiny_dir).model_dump(), min_gap_s=0.25, min_area=0.02, max_ids=3, margin=0.05,
        background=(127, 127, 127), batch_size=2))
    st.setup()
    out = run_stage(st, recs)
    assert len(out) == 2 and all(r.ok for r in out)
    for r in out:
        ref = r.meta["refs"]
        f = ref["frame"]
        assert ref["segmenter"]["backend"] == "mask2former" and ref["segmenter"]["path"] == str(tiny_dir)
        assert f["fallback"] is None and not r.meta["start_frame"] <= f["index"] < r.meta["end_frame"]
        frame = media.read_span(CARPHONE, f["time_s"], 1, 24)[0]
        assert 1 <= len(ref["ids"]) <= 3
        areas = [row["area"] for row in ref["ids"]]
        assert areas == sorted(areas, reverse=True) and min(areas) >= 0.02 * 176 * 144
        for row in ref["ids"]:
            img = np.array(Image.open(io.BytesIO(r.media[row["member"]])))
            x0, y0, x1, y1 = row["crop_box"]
            assert 0 <= x0 < x1 <= 176 and 0 <= y0 < y1 <= 144
            assert img.shape == (y1 - y0, x1 - x0, 3) == (row["crop_size"][1], row["crop_size"][0], 3)
            bx0, by0, bx1, by1 = row["box"]
            assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1
            same = (img == frame[y0:y1, x0:x1]).all(axis=-1)
            grey = (img == 127).all(axis=-1)
            assert (same | grey).all() and same.sum() >= row["area"] - 1   # the object's pixels, else background


def test_edit_refs_with_tiny_mask2former(tiny_dir):
    recs = ingest.list_sources([CARPHONE])
    for st in (STAGES["probe"](STAGES["probe"].Config()),
               STAGES["split"](STAGES["split"].Config(fps=24, frames=9, max_clips_per_source=1)),
               STAGES["extract"](STAGES["extract"].Config(height=64, preset="ultrafast"))):
        recs = run_stage(st, recs)
    st = STAGES["edit_refs"](STAGES["edit_refs"].Config(
        segmenter=seg_config(tiny_dir, batch_size=4).model_dump(), min_area=0.01, max_area=0.9, min_iou=0.0,
        method="recolor", lossless=True))
    st.setup()
    (r,) = run_stage(st, [Record(key=recs[0].key, meta=recs[0].meta, media=recs[0].media)])
    assert r.ok, r.reject
    hr, ref, mask = (media.decode(r.media[k]) for k in ("hr.mp4", "ref.mp4", "mask.mp4"))
    m = mask[..., 0] == 255
    assert ref.shape == hr.shape == mask.shape and m.any() and (ref[~m] == hr[~m]).all()
    assert r.meta["refs"]["track"]["matched"] == 9 and r.meta["refs"]["segmenter"]["backend"] == "mask2former"
