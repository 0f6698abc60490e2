"""Q-Align: datakit's mPLUG-Owl2 holds the released checkpoint's keys, and a tiny checkpoint of it,
loaded through datakit's loader, reproduces the official Q-Align code's tokens, pixels, logits and
scores (tests/data/qalign_golden.json, recorded by tests/data/record_qalign_reference.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qalign_golden_inputs import (DATA, PROMPTS, TINY_CONFIG, TOKENIZER, VIDEO_SAMPLING,  # noqa: E402
                                  deterministic_state_dict, golden_images, golden_videos)

from datakit.scoring import qalign  # noqa: E402
from datakit.scoring.qalign import owl2  # noqa: E402
from datakit.scoring.qalign import tiny as qtiny  # noqa: E402

GOLD = json.loads((DATA / "qalign_golden.json").read_text())


def official_listing() -> dict[str, str]:
    rows = {}
    for line in (DATA / "qalign_keys_one_align.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _ = line.split("\t")
            rows[key] = shape
    return rows


def test_state_dict_matches_the_released_architecture():
    with torch.device("meta"):
        model = owl2.Owl2ForScoring(owl2.Owl2Config())
    ours = {k: "x".join(map(str, v.shape)) for k, v in model.state_dict().items()}
    want = official_listing()
    assert sorted(set(want) - set(ours)) == [] and sorted(set(ours) - set(want)) == []
    assert {k: (ours[k], want[k]) for k in want if ours[k] != want[k]} == {}


@pytest.fixture(scope="module")
def golden_dir(tmp_path_factory):
    """The reference weights and tokenizer, saved in the one-align layout by datakit's writer pieces."""
    d = tmp_path_factory.mktemp("golden_onealign")
    model = owl2.Owl2ForScoring(owl2.Owl2Config.from_dict(TINY_CONFIG))
    model.load_state_dict(deterministic_state_dict(model.state_dict()), strict=True)
    owl2.save(model, d)
    qtiny.write_tokenizer_files(d, TOKENIZER)
    qtiny.write_preprocessor(d, 56)
    return d


@pytest.fixture(scope="module")
def scorer32(golden_dir):
    return qalign.load(str(golden_dir), device="cpu", dtype="float32")


def test_tokens_and_rating_ids_match_the_official(scorer32):
    b = scorer32.backend
    assert b.rating_ids == GOLD["rating_ids"]
    for task, kind in PROMPTS:
        assert b.prompt_ids(task, kind) == GOLD[f"input_ids_{task}_{kind}"]


def test_pixels_match_the_official_preprocessing(scorer32):
    px = scorer32.backend.preprocess(golden_images())
    for got, want in zip(px, GOLD["pixels"]):
        assert list(got.shape) == want["shape"]
        assert float(got.double().sum()) == pytest.approx(want["sum"], abs=1e-3)
        assert float((got.double() ** 2).sum()) == pytest.approx(want["sumsq"], rel=1e-6)
        probe = got.reshape(-1)[:: max(1, got.numel() // 16)][:16]
        np.testing.assert_allclose(probe.numpy(), want["probe"], atol=1e-6)


@pytest.mark.parametrize("task,kind", PROMPTS)
def test_logits_match_the_official_model_fp32(scorer32, task, kind):
    b = scorer32.backend
    got = b.image_logits(golden_images(), task) if kind == "image" else \
        np.concatenate([b.video_logits([v], task) for v in golden_videos()])
    np.testing.assert_allclose(got, GOLD[f"logits_fp32_{task}_{kind}"], atol=1e-5)


@pytest.mark.parametrize("task,kind", PROMPTS)
def test_fp16_scores_match_the_official_scorer(golden_dir, task, kind):
    """The official scorers run in float16 and weight 1, 0.75 .. 0; ours are (score - 1) / 4."""
    s = qalign.load(str(golden_dir), device="cpu", dtype="float16")
    got = s.score_images(golden_images(), task) if kind == "image" else s.score_videos(golden_videos(), task)
    np.testing.assert_allclose((np.asarray(got) - 1) / 4, GOLD[f"scores_fp16_{task}_{kind}"], atol=1e-3)


def test_weighting_matches_the_official_constants():
    """Official fp32 logits through datakit's softmax weighting give the official scorer's numbers."""
    for task, kind in PROMPTS:
        ours = (qalign.rating_score(GOLD[f"logits_fp32_{task}_{kind}"]) - 1) / 4
        np.testing.assert_allclose(ours, GOLD[f"scores_fp16_{task}_{kind}"], atol=1e-3)
    assert qalign.RATING_WORDS == ("excellent", "good", "fair", "poor", "bad")
    assert qalign.rating_score([[30.0, 0, 0, 0, 0]])[0] == pytest.approx(5, abs=1e-3)
    assert qalign.rating_score([[0, 0, 0, 0, 30.0]])[0] == pytest.approx(1, abs=1e-3)


def test_video_frames_one_per_second_like_the_official_loader():
    for case in GOLD["video_sampling"]:
        want = case["indices"] or [0]          # the official loader has no frame for clips under 1 s
        assert qalign.video_frame_indices(case["frames"], case["fps"]) == want
    assert len(GOLD["video_sampling"]) == len(VIDEO_SAMPLING)


def test_batched_videos_of_different_lengths_score_as_alone(scorer32):
    vids = golden_videos()
    together = scorer32.score_videos(vids)
    alone = [scorer32.score_videos([v])[0] for v in vids]
    np.testing.assert_allclose(together, alone, atol=1e-6)


@pytest.fixture(scope="module")
def real_clip():
    """33 frames of the bundled street clip (a cyclist) at 16 fps, 128 px high."""
    from datakit import media
    from datakit.samples import sample_paths

    return media.read_span(str(sample_paths()[0]), 3.5, 33, 16.0, size=(300, 128)), 16.0


def test_tiny_writers_load_through_the_user_loader(tmp_path, real_clip):
    from datakit import tiny

    paths = tiny.write(tmp_path, ["qalign", "qalign_llava"], seed=1)
    frames, fps = real_clip
    for name, backend in (("qalign", "mplug_owl2"), ("qalign_llava", "transformers")):
        s = qalign.load(str(paths[name]), device="cpu")
        d = s.describe()
        assert d["backend"] == backend and d["synthetic"] is True
        v = s.score_clip(frames, fps)
        imgs = s.score_images(list(frames[:2]))
        assert 1.0 <= v <= 5.0 and all(1.0 <= x <= 5.0 for x in imgs)
        if backend == "transformers":             # the rating words are single tokens of its vocabulary
            tok = s.backend.tokenizer
            assert tok.convert_ids_to_tokens(s.backend.rating_ids["quality"]) == list(qalign.RATING_WORDS)


def test_missing_model_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(qalign.ModelNotFound, match="q-future/one-align.*models"):
        qalign.load("q-future/one-align")
    with pytest.raises(qalign.ModelNotFound, match="nowhere"):
        qalign.load(str(tmp_path / "nowhere"))


def test_not_a_checkpoint_of_its_config(golden_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(golden_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["num_hidden_layers"] = 3
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing keys"):
        qalign.load(str(bad), device="cpu")


@pytest.fixture(scope="module")
def tiny_onealign(tmp_path_factory):
    from datakit import tiny

    return tiny.write(tmp_path_factory.mktemp("tiny"), ["qalign"])["qalign"]


def test_score_stage_scores_with_qalign(tiny_onealign):
    from datakit import media
    from datakit.records import Record
    from datakit.samples import sample_paths
    from datakit.stages.score import Score, ScoreConfig

    cfg = ScoreConfig(metrics=["qalign", "qalign_image", "frozen"], qalign_model=str(tiny_onealign), frames=2)
    assert Score.preflight(cfg) == [] and Score._device(cfg) == "cpu"
    st = Score(cfg)
    st.setup()
    px = media.read_span(str(sample_paths()[1]), 0.0, 33, 16.0)            # carphone, 2 s at 16 fps
    rec = Record("k", {"fps": 16.0}, {"hr.mp4": media.encode(px, 16.0)})
    out = st.process_batch([rec])[0]
    s = out.meta["scores"]
    assert 1 <= s["qalign"] <= 5 and 1 <= s["qalign_image"] <= 5 and "frozen_frames" in s
    assert "mplug_owl2" in out.meta["scoring"]["models"]["qalign"]
    missing = ScoreConfig(metrics=["qalign"], qalign_model=str(tiny_onealign.parent / "absent"))
    assert "Q-Align model" in Score.preflight(missing)[0]


def test_score_verb_with_qalign(capsys, tiny_onealign):
    from datakit import cli
    from datakit.samples import sample_paths

    code = cli.main(["score", str(sample_paths()[1]), "--metrics", "qalign,qalign_image", "--num-frames", "33",
                     "--frames", "2", "--qalign-model", str(tiny_onealign), "--json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and 1 <= doc["scores"]["qalign"] <= 5 and 1 <= doc["scores"]["qalign_image"] <= 5
    code = cli.main(["score", str(sample_paths()[1]), "--metrics", "qalign", "--qalign-model", "/nonexistent/x"])
    err = capsys.readouterr().err
    assert code == 2 and "Q-Align model" in err and "/nonexistent/x" in err


def test_sharded_bfloat16_pickles_like_the_release_load_the_same(golden_dir, tmp_path):
    """one-align ships bfloat16 torch pickles in two shards with an index; the position tables may be absent."""
    import shutil

    sd = owl2.read_state_dict(golden_dir)
    keys = sorted(sd)
    rel, ref = tmp_path / "release", tmp_path / "ref"
    for d in (rel, ref):
        shutil.copytree(golden_dir, d)
        (d / "model.safetensors").unlink()
    shards = {"pytorch_model-00001-of-00002.bin": keys[::2], "pytorch_model-00002-of-00002.bin": keys[1::2]}
    for name, ks in shards.items():
        torch.save({k: sd[k].to(torch.bfloat16) for k in ks if not k.endswith("pos_embed")}, rel / name)
    (rel / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"weight_map": {k: n for n, ks in shards.items() for k in ks if not k.endswith("pos_embed")}}))
    torch.save({k: (v if k.endswith("pos_embed") else v.to(torch.bfloat16)).float() for k, v in sd.items()},
               ref / "pytorch_model.bin")
    a = qalign.load(str(rel), device="cpu", dtype="float32").backend.image_logits(golden_images()[:2], "quality")
    b = qalign.load(str(ref), device="cpu", dtype="float32").backend.image_logits(golden_images()[:2], "quality")
    np.testing.assert_allclose(a, b, atol=1e-6)
