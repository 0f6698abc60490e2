"""Captioning with a transformers vision-language model from a local directory (tiny random LLaVA)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import pattern_frames
from datakit import media, tiny
from datakit.records import Record

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.write(tmp_path_factory.mktemp("tiny"), ["captioner"])["captioner"]


def test_frames_are_picked_and_tiled():
    from datakit.captioning import pick_frames, tile

    frames = pattern_frames(9, 20, 30)
    assert np.array_equal(pick_frames(frames, 1), frames[4:5])
    assert [int(f[0, 0, 0]) for f in pick_frames(frames, 3)] == [int(frames[i][0, 0, 0]) for i in (0, 4, 8)]
    img = tile(pick_frames(frames, 4))
    assert img.size == (60, 40)
    assert tile(pick_frames(frames, 4), max_side=30).size == (30, 20)


def test_captioner_loads_the_local_model_and_is_deterministic(model_dir):
    from transformers import LlavaForConditionalGeneration

    from datakit.captioning import Captioner

    cap = Captioner(model_dir, max_new_tokens=6, frames=4)
    assert isinstance(cap.model, LlavaForConditionalGeneration) and cap.synthetic
    assert "<image>" in cap.text and cap.text.endswith("ASSISTANT:")
    clips = [pattern_frames(5, 40, 56, seed=s) for s in (0, 90)]
    a, b = cap.caption(clips), cap.caption(clips)
    assert a == b and len(a) == 2 and all(isinstance(t, str) and t for t in a)
    assert cap.caption([clips[1]]) == [a[1]]          # batched and alone agree (left padding)


def _records(with_caption: bool):
    frames = pattern_frames(5, 40, 56)
    out = []
    for i in range(2):
        meta = {"fps": 24.0, "caption": "a sidecar caption" if with_caption and i == 0 else "",
                "caption_source": "sidecar" if with_caption and i == 0 else "default"}
        out.append(Record(f"c{i}", meta=meta, media={"hr.mp4": media.encode(frames, 24.0)}))
    return out


def test_captioner_stage_fills_or_replaces(model_dir):
    from datakit.stages.caption import Captioner, CaptionerConfig

    st = Captioner(CaptionerConfig(model=str(model_dir), max_new_tokens=5))
    assert Captioner.preflight(st.config) == []
    st.setup()
    kept, filled = st.process_batch(_records(with_caption=True))
    assert kept.meta["caption"] == "a sidecar caption" and kept.meta["caption_source"] == "sidecar"
    assert "synthetic_models" not in kept.meta
    assert filled.meta["caption"] and filled.meta["caption_source"] == "model"
    assert filled.meta["captioner"]["model_id"] == "captioner" and filled.meta["synthetic_models"] is True

    st.config = CaptionerConfig(model=str(model_dir), max_new_tokens=5, mode="replace")
    replaced = st.process_batch(_records(with_caption=True))
    assert all(r.meta["caption_source"] == "model" for r in replaced)
    assert replaced[0].meta["caption"] == filled.meta["caption"]     # same clip, same caption


def test_captioner_preflight_names_a_missing_model(tmp_path):
    from datakit.stages.caption import Captioner, CaptionerConfig

    problems = Captioner.preflight(CaptionerConfig(model=str(tmp_path / "none")))
    assert problems and "not found" in problems[0]
