"""Weight-free signals on the real sample clips: a damaged copy scores worse on the signal
meant to catch that damage; PIQE and NIQE agree with pyiqa's implementations."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from datakit import media
from datakit.samples import sample_paths
from datakit.scoring import classical, signals
from datakit.scoring.frames import luma, sample_indices

CLIPS = {p.name: p for p in sample_paths()}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def clip(request):
    """17 frames at 24 fps from 2 s into each real sample, at its own resolution."""
    return media.read_span(str(CLIPS[request.param]), 2.0, 17, 24.0)


def roundtrip(frames):
    """Through H.264 and back, as every clip reaches the scorers (hr.mp4)."""
    return media.decode(media.encode(frames, 24.0, crf=18, preset="veryfast"))


def test_sample_indices():
    assert sample_indices(100, 4) == [12, 37, 62, 87]
    assert sample_indices(3, 8) == [0, 1, 2]
    assert sample_indices(0, 4) == []


def test_blur_lowers_sharpness_and_raises_niqe(clip):
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in clip])
    assert signals.sharpness(blurred) < 0.25 * signals.sharpness(clip)
    assert classical.niqe(blurred) > classical.niqe(clip) + 1.0


def test_darkening_shows_in_exposure(clip):
    dark = (clip.astype(np.float32) * 0.25).astype(np.uint8)
    orig, d = signals.exposure(clip), signals.exposure(dark)
    assert d["brightness"] < 0.15 < orig["brightness"]
    assert d["dark_fraction"] > orig["dark_fraction"] + 0.15
    assert signals.exposure(np.full_like(clip, 255))["bright_fraction"] == 1.0


def test_black_frames(clip):
    faded = clip.copy()
    faded[9:] = (faded[9:].astype(np.float32) * 0.03).astype(np.uint8)    # the last 8 of 17 fade to black
    assert signals.black_frames(clip) == 0.0
    assert signals.black_frames(roundtrip(faded)) == pytest.approx(8 / 17)


def test_frozen_copy_is_frozen_and_static(clip):
    frozen = roundtrip(np.repeat(clip[:1], len(clip), axis=0))
    assert signals.frozen_frames(roundtrip(clip)) < 0.2
    assert signals.frozen_frames(frozen) == 1.0
    assert signals.motion(frozen)["motion"] < 0.02 < signals.motion(clip)["motion"]
    # a dark but moving clip is not frozen (the threshold is below real frame-to-frame change)
    assert signals.frozen_frames(roundtrip((clip.astype(np.float32) * 0.25).astype(np.uint8))) < 0.2


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "bigbuckbunny.mp4"])
def test_motion_follows_displacement(name):
    frame = media.read_span(str(CLIPS[name]), 2.0, 1, 24.0, size=(256, 208))[0]   # 208 rows
    pan = {d: signals.motion(np.stack([np.roll(frame, d * k, axis=1) for k in range(6)]),
                             signals.MotionParams(height=208))["motion"] for d in (0, 1, 4)}
    assert pan[0] < 0.01 < pan[1] < pan[4]
    assert pan[4] == pytest.approx(4 / 208 * 100, rel=0.5)     # % of the frame height per frame


def test_blocking_raises_piqe(clip):
    jpeg = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 10])[1], cv2.IMREAD_UNCHANGED)
                     for f in clip])
    assert classical.piqe(jpeg) > classical.piqe(clip) + 3
    assert 0 <= classical.piqe(clip) <= 100


def test_niqe_needs_one_patch():
    assert classical.niqe(np.zeros((4, 80, 300, 3), np.uint8)) is None
    assert classical.niqe_pristine()[0].shape == (36,) and classical.niqe_pristine()[1].shape == (36, 36)


def test_classical_metrics_agree_with_pyiqa(tmp_path):
    torch = pytest.importorskip("torch")
    pyiqa = pytest.importorskip("pyiqa")
    import scipy.io

    from pyiqa.matlab_utils import imresize as pyiqa_imresize

    from datakit.scoring._matlab import imresize

    mu, cov = classical.niqe_pristine()
    scipy.io.savemat(tmp_path / "niqe.mat", {"mu_prisparam": mu[None], "cov_prisparam": cov})
    niqe_ref = pyiqa.create_metric("niqe", device="cpu", pretrained_model_path=str(tmp_path / "niqe.mat"))
    piqe_ref = pyiqa.create_metric("piqe", device="cpu")
    for name in ("bikes.mp4", "carphone_pristine.mp4"):      # pyiqa's NIQE takes seconds per HD frame
        frame = media.read_span(str(CLIPS[name]), 1.0, 1, 24.0)[0]
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        assert classical.niqe_gray(luma(frame)) == pytest.approx(niqe_ref(x).item(), rel=0.01), name
        assert classical.piqe_gray(luma(frame) / 255.0) == pytest.approx(piqe_ref(x).item(), abs=1.5), name
        y = luma(frame).astype(np.float64) / 255.0
        ref = pyiqa_imresize(torch.from_numpy(y)[None, None], scale=0.5, antialiasing=True)[0, 0].numpy()
        assert np.abs(imresize(y, 0.5) - ref).max() < 1e-4, name
