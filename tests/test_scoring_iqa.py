"""MUSIQ and CLIP-IQA: pyiqa's own classes with random weights, saved where pyiqa keeps its
cache ($TORCH_HOME/hub), loaded back through datakit's loader and run on a real clip.
Downloads are made to fail: nothing may touch the network."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pyiqa = pytest.importorskip("pyiqa")

from datakit import media  # noqa: E402
from datakit.samples import sample_paths  # noqa: E402
from datakit.scoring import ClipScorer, ScoreOptions, weights  # noqa: E402
from datakit.scoring.iqa import ImageScorer  # noqa: E402


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A TORCH_HOME holding a tiny random CLIP (TorchScript, as OpenAI's RN50.pt is), random
    MUSIQ weights and random CLIP-IQA+ prompts under pyiqa's file names."""
    import clip
    from pyiqa.archs.clip_model import CLIP
    from pyiqa.archs.musiq_arch import MUSIQ

    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "clip").mkdir(parents=True)
    (home / "hub" / "pyiqa").mkdir()
    torch.manual_seed(0)
    tiny = CLIP(embed_dim=32, image_resolution=224, vision_layers=(1, 1, 1, 1), vision_width=8,
                vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=64,
                transformer_heads=1, transformer_layers=1).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(tiny, (torch.rand(1, 3, 224, 224), clip.tokenize(["a photo"])), check_trace=False)
    traced.save(str(home / "hub" / "clip" / weights.CLIP_RN50_FILE))
    musiq = MUSIQ(pretrained=False).eval()
    torch.save(musiq.state_dict(), home / "hub" / "pyiqa" / weights.MUSIQ_FILE)
    prompts = torch.randn(2, 16, 64)
    torch.save(prompts, home / "hub" / "pyiqa" / weights.CLIPIQA_PLUS_FILE)
    return {"path": home, "clip": tiny, "musiq": musiq, "prompts": prompts}


@pytest.fixture
def offline(torch_home, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError(f"attempted download: {a}")

    import pyiqa.archs.clip_model
    import pyiqa.utils.download_util

    monkeypatch.setattr(pyiqa.utils.download_util, "download_url_to_file", refuse)
    monkeypatch.setattr(pyiqa.archs.clip_model, "_download", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(torch_home["path"]))
    return torch_home


pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def frames():
    car = [p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0]
    return media.read_span(str(car), 1.0, 2, 24.0)


def test_musiq_loads_local_weights(offline, frames):
    scorer = ImageScorer.load("musiq")
    saved = offline["musiq"].state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in scorer.metric.net.state_dict().items())
    got = scorer(frames)
    with torch.inference_mode():
        want = [offline["musiq"](torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255).item() for f in frames]
    assert got == pytest.approx(want, rel=1e-5) and all(np.isfinite(got))


def test_clipiqa_loads_local_clip(offline, frames):
    scorer = ImageScorer.load("clipiqa", batch_size=1)
    visual = scorer.metric.net.clip_model[0].visual.state_dict()
    saved = offline["clip"].visual.state_dict()
    # pyiqa's CLIP builder passes the weights through float16 (as OpenAI's loader does)
    assert all(torch.allclose(v.float(), saved[k].float(), rtol=1e-3, atol=1e-4) for k, v in visual.items())
    got = scorer(frames)
    assert len(got) == 2 and all(0 <= v <= 1 for v in got)


def test_clipiqa_plus_loads_local_prompts(offline, frames):
    scorer = ImageScorer.load("clipiqa_plus")
    assert torch.equal(scorer.metric.net.prompt_learner.ctx.detach().cpu(), offline["prompts"])
    assert all(0 <= v <= 1 for v in scorer(frames[:1]))


def test_missing_weights_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(weights.MissingWeights, match=str(tmp_path / "hub" / "pyiqa")) as e:
        ImageScorer.load("musiq")
    assert weights.MUSIQ_FILE in str(e.value)
    msgs = weights.missing(["musiq", "clipiqa_plus", "sharpness"])
    assert len(msgs) == 3 and any(weights.CLIP_RN50_FILE in m for m in msgs)


def test_clip_scorer_mixes_model_and_weight_free_metrics(offline, frames):
    clip = np.concatenate([frames] * 4)
    scorer = ClipScorer(["musiq", "clipiqa", "sharpness", "frozen"], ScoreOptions(frames=1))
    s = scorer.score(clip)
    assert set(s) == {"musiq", "clipiqa", "sharpness", "frozen_frames"}
    assert scorer.info()["models"] == {"musiq": weights.MUSIQ_FILE, "clipiqa": weights.CLIP_RN50_FILE}
