"""DOVER: the architecture matches the released checkpoints key for key, reproduces the official
code's outputs, samples views as the official evaluator does, and round-trips through datakit's loader."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dover_golden_inputs import (CASES, VIEW_CASES, decode_fragment_offsets, deterministic_inputs,  # noqa: E402
                                 deterministic_state_dict, position_coded_clip)

from datakit import media  # noqa: E402
from datakit.samples import sample_paths  # noqa: E402
from datakit.scoring import dover  # noqa: E402
from datakit.scoring.dover.views import (ViewParams, aesthetic_indices, fragment_offsets, make_views,  # noqa: E402
                                         technical_indices, technical_view)
from datakit.scoring.weights import MissingWeights  # noqa: E402

DATA = Path(__file__).parent / "data"
LISTING = {"dover": "dover_keys_dover.tsv", "dover_plus_plus": "dover_keys_dover.tsv",
           "dover_mobile": "dover_keys_dover_mobile.tsv"}


def official_listing(variant: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in (DATA / LISTING[variant]).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            rows[key] = (shape, dtype)
    return rows


@pytest.mark.parametrize("variant", list(dover.VARIANTS))
def test_state_dict_matches_the_released_checkpoints(variant):
    with torch.device("meta"):
        model = dover.build(variant)
    ours = {k: ("x".join(map(str, v.shape)), str(v.dtype)) for k, v in model.state_dict().items()}
    want = official_listing(variant)
    assert sorted(set(want) - set(ours)) == [] and sorted(set(ours) - set(want)) == []
    assert {k: ours[k] for k in want if ours[k] != want[k]} == {}


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_match_the_official_code(case):
    """Branch outputs for fixed weights and inputs, recorded by running the official implementation."""
    gold = json.loads((DATA / "dover_golden.json").read_text())[case]
    model = dover.arch.DOVER(CASES[case]["arch"]).eval()
    model.load_state_dict(deterministic_state_dict(model.state_dict()), strict=True)
    technical, aesthetic = deterministic_inputs(CASES[case])
    with torch.inference_mode():
        t, a = model(technical, aesthetic)
    assert t.item() == pytest.approx(gold["technical"], rel=1e-4, abs=1e-5)
    assert a.item() == pytest.approx(gold["aesthetic"], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("case", list(VIEW_CASES))
def test_views_sample_like_the_official_evaluator(case):
    """Frame indices and fragment positions equal those of the official sampler seeded alike."""
    gold = json.loads((DATA / "dover_golden_views.json").read_text())[case]
    spec = VIEW_CASES[case]
    clip = position_coded_clip(spec)
    p = ViewParams()
    rng = np.random.RandomState(spec["seed"])
    assert technical_indices(len(clip), p, rng).tolist() == gold["technical_indices"]
    assert aesthetic_indices(len(clip), p, rng).tolist() == gold["aesthetic_indices"]
    technical, aesthetic = make_views(clip, p, seed=spec["seed"])
    assert technical.shape == (3, 3, 32, 224, 224) and aesthetic.shape == (1, 3, 32, 224, 224)
    if "fragment_offsets" in gold:
        assert decode_fragment_offsets(technical) == gold["fragment_offsets"]
    assert technical.double().mean().item() == pytest.approx(gold["technical_view_mean"], abs=1e-4)


def test_fragment_geometry():
    p = ViewParams()
    g = torch.Generator().manual_seed(0)
    # 1080p: 7 cells of 154 x 274 pixels, one 32-pixel fragment at a random place inside each
    top, left = fragment_offsets(1080, 1920, 3, p, g)
    assert top.shape == left.shape == (7, 7, 3)
    cell_h, cell_w = 1080 // 7, 1920 // 7
    i = torch.arange(7)
    assert ((top >= (i * cell_h)[:, None, None]) & (top + 32 <= (i * cell_h + cell_h)[:, None, None])).all()
    assert ((left >= (i * cell_w)[None, :, None]) & (left + 32 <= (i * cell_w + cell_w)[None, :, None])).all()
    assert len({(int(t), int(l)) for t, l in zip(top.flatten(), left.flatten())}) > 100   # offsets do vary
    # cells narrower than a fragment: fragments sit at the cell starts, clamped inside the frame
    top, left = fragment_offsets(200, 200, 1, p, g)
    assert top[:, 0, 0].tolist() == [min(28 * k, 200 - 32) for k in range(7)]
    assert left[0, :, 0].tolist() == [min(28 * k, 200 - 32) for k in range(7)]
    # the spliced view holds exactly the frame's pixels at those places
    clip = position_coded_clip({"frames": 96, "height": 400, "width": 600})
    view = technical_view(clip, np.arange(96), p, torch.Generator().manual_seed(5))
    top, left = fragment_offsets(400, 600, 3, p, torch.Generator().manual_seed(5))
    offs = decode_fragment_offsets(view)
    assert offs == [[[int(top[i, j, c]), int(left[i, j, c])] for i in range(7) for j in range(7)] for c in range(3)]


def test_frame_sampling():
    p = ViewParams()
    idx = technical_indices(240, p, np.random.RandomState(0))
    assert len(idx) == 96
    for c, seg in enumerate(idx.reshape(3, 32)):                  # 3 segments of 80 frames
        assert (np.diff(seg) == 2).all()                          # 32 frames, 2 apart
        assert 80 * c <= seg[0] < 80 * c + 80 - 64
    short = technical_indices(77, p, np.random.RandomState(0))    # 25-frame segments: no offset, wraps
    assert short.reshape(3, 32)[:, 0].tolist() == [0, 25, 50] and short.max() < 77
    aes = aesthetic_indices(240, p, np.random.RandomState(0))
    assert len(aes) == 32 and all(7 * k <= v < 7 * k + 5 for k, v in enumerate(aes))


def test_fusion():
    mid = dover.fuse(0.1107, -0.08285)
    assert mid == pytest.approx({"dover": 0.5, "dover_technical": 0.5, "dover_aesthetic": 0.5})
    better = dover.fuse(0.1107 + 0.07355, -0.08285 + 0.03774)
    assert better["dover_technical"] == pytest.approx(1 / (1 + np.exp(-1)))
    assert better["dover"] == pytest.approx(1 / (1 + np.exp(-1)))


SMALL = ViewParams(fragments=2, fragment_size=32, clip_len=8, num_clips=2, aesthetic_size=64, aesthetic_frames=8)


@pytest.fixture(scope="module")
def real_clip():
    bikes = [p for p in sample_paths() if p.name == "bikes.mp4"][0]
    return media.read_span(str(bikes), 1.0, 33, 25.0)


def test_random_checkpoint_round_trip(real_clip, tmp_path, monkeypatch):
    """A random checkpoint saved as the released file name loads through datakit's search path
    (strict) and scores a real clip exactly as the model it was saved from. (DOVER-Mobile: a
    DOVER-size file is 230 MB; its architecture is covered by the key and reference tests.)"""
    variant = "dover_mobile"
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeights, match=str(tmp_path / "dover")):
        dover.DoverScorer.from_weights(variant)
    torch.manual_seed(0)
    model = dover.build(variant).eval()
    (tmp_path / "dover").mkdir()
    torch.save(model.state_dict(), tmp_path / "dover" / dover.DOVER_FILES[variant])
    loaded = dover.DoverScorer.from_weights(variant, params=SMALL, seed=7)
    direct = dover.DoverScorer(model, params=SMALL, seed=7)
    a, b = loaded.score(real_clip), direct.score(real_clip)
    assert a == b and set(a) == set(dover.OUTPUTS) and all(0 < v < 1 for v in a.values())
    # an incompatible checkpoint is refused, not half-loaded
    sd = model.state_dict()
    sd.pop(next(iter(sd)))
    torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        dover.DoverScorer.from_weights(variant, weights=str(tmp_path / "broken.pth"))
