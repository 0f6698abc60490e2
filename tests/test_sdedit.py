"""SDEdit through the tiny Wan 2.1 pipeline: saved with save_pretrained, loaded from a local
directory by datakit's loader, run on CPU. No mocks: the real diffusers classes run in a second.

Fidelity is checked against the reference itself: diffusers' ``WanVideoToVideoPipeline`` on the
same components, clip, prompt, seed and k (``strength = (k + 0.5) / N``)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import pattern_frames
from datakit import sdedit, tiny
from datakit.sdedit import core

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

N = 50


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.write(tmp_path_factory.mktemp("tiny"), ["wan"])["wan"]


@pytest.fixture(scope="module")
def model(model_dir):
    return sdedit.load_model(model_dir, max_sequence_length=32)


@pytest.fixture(scope="module")
def pipe(model):
    """diffusers' video-to-video pipeline on the very modules datakit loaded, with a fresh scheduler."""
    from diffusers import WanVideoToVideoPipeline

    p = WanVideoToVideoPipeline(tokenizer=model.tokenizer, text_encoder=model.text_encoder,
                                transformer=model.transformer, vae=model.vae,
                                scheduler=model.scheduler_class.from_config(model.scheduler_config))
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture
def calls(model):
    """Counts transformer forward calls."""
    n = [0]
    h = model.transformer.register_forward_hook(lambda *a: n.__setitem__(0, n[0] + 1))
    yield n
    h.remove()


def clip(t=5, h=64, w=64, seed=0):
    return pattern_frames(t, h, w, seed)


def edit(model, frames, k, seed=1, guidance=5.0, steps=N, shift=None, prompt="a man walks in the street"):
    ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=steps, k=k, guidance=guidance, shift=shift,
                                                    base_width=32, base_height=32, base_area=None))
    return ed.run([sdedit.Item(frames, prompt, seed)])[0]


# ---------------------------------------------------------------- equality with diffusers

BASE = 32           # base size of the reference comparisons (frames are given at this size: no resize)
PROMPTS = ["a man walks in the street", "a red car drives past a dog", "a woman rides a bicycle",
           "a dog runs in the park"]


def reference(pipe, frames, prompt, k, guidance, seed):
    """diffusers' SDEdit of ``frames`` (uint8, at the base size): float (T, H, W, 3) in [0, 1]."""
    from PIL import Image

    out = pipe(video=[Image.fromarray(f) for f in frames], prompt=prompt, height=frames.shape[1],
               width=frames.shape[2], num_inference_steps=N, strength=(k + 0.5) / N, guidance_scale=guidance,
               generator=torch.Generator("cpu").manual_seed(seed), max_sequence_length=32, output_type="np")
    return out.frames[0]


def ours(model, clips, guidance):
    """datakit's SDEdit maths (core.run) on ``clips`` = [(frames, prompt, k, seed)] in ONE call."""
    jobs = [core.Clip(core.to_model_video(f, (f.shape[2], f.shape[1]), len(f), model.device), p, k, s)
            for f, p, k, s in clips]
    return [((o[0].permute(1, 2, 3, 0) + 1) / 2).numpy() for o in core.run(model, jobs, N, guidance)]


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_sdedit_equals_diffusers_video_to_video_per_clip(model, pipe, guidance):
    frames = clip(5, BASE, BASE, seed=3)
    for k in (1, 5, 15, 29):        # 29: int(50 * 29/50) = 28 is the strength float trap
        want = reference(pipe, frames, PROMPTS[0], k, guidance, seed=11)
        got = ours(model, [(frames, PROMPTS[0], k, 11)], guidance)[0]
        assert np.abs(got - want).max() < 1e-5, (k, guidance, float(np.abs(got - want).max()))


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_sdedit_equals_diffusers_batched_with_mixed_k(model, pipe, guidance):
    # one call: four clips with k 1, 5, 15, 29 (clips join the batch as their k starts), then two of equal k
    for ks in ((1, 5, 15, 29), (15, 15)):
        clips = [(clip(5, BASE, BASE, seed=10 * i), PROMPTS[i], k, 100 + i) for i, k in enumerate(ks)]
        for (f, p, k, s), got in zip(clips, ours(model, clips, guidance)):
            want = reference(pipe, f, p, k, guidance, s)
            assert np.abs(got - want).max() < 1e-5, (ks, k, guidance, float(np.abs(got - want).max()))


def test_sdeditor_output_is_the_reference_in_8_bits(model, pipe):
    # the whole editor (frames in, uint8 x' out) against diffusers' output rounded to 8 bits
    items = [sdedit.Item(clip(5, BASE, BASE, seed=i), PROMPTS[i], seed=i) for i in range(2)]
    params = sdedit.SDEditParams(steps=N, k_range=(4, 15), base_width=BASE, base_height=BASE, base_area=None)
    sdedit.SDEditor(model, params).run(items)
    for it in items:
        want = np.round(reference(pipe, it.frames, it.prompt, it.record["k"], 5.0, it.seed) * 255)
        diff = np.abs(it.out.astype(np.float64) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_tiny_wan_loads_from_local_directory(model_dir, model):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
    from transformers import UMT5EncoderModel

    assert (model_dir / "model_index.json").is_file() and tiny.is_tiny(model_dir)
    assert sdedit.detect_backend(model_dir) == "wan2.1"
    assert isinstance(model.vae, AutoencoderKLWan) and isinstance(model.transformer, WanTransformer3DModel)
    assert isinstance(model.text_encoder, UMT5EncoderModel)
    assert model.synthetic and model.model_id == "wan" and model.device.type == "cpu"
    assert (model.spatial_multiple, model.temporal_stride) == (16, 4)
    sched = model.make_scheduler(N)
    assert isinstance(sched, UniPCMultistepScheduler) and model.scheduler_info(sched)["shift"] == 3.0


def test_missing_or_foreign_directory_is_a_clear_error(tmp_path):
    with pytest.raises(sdedit.ModelError, match="not found"):
        sdedit.load_model(tmp_path / "nope")
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(sdedit.ModelError, match="no SDEdit backend"):
        sdedit.load_model(tmp_path)


@pytest.mark.parametrize("guidance", [1.0, 5.0])
def test_exactly_k_transformer_calls(model, calls, guidance):
    frames = clip()
    for k in (0, 1, 3, 29):       # 29 of 50: int(50 * 29/50) would give 28 (the strength float trap)
        calls[0] = 0
        item = edit(model, frames, k, guidance=guidance)
        assert calls[0] == k and item.record["k"] == k


def test_sigma_start_is_the_shifted_sigma_at_step_n_minus_k(model):
    frames = clip()
    for shift in (None, 5.0):
        sched = model.make_scheduler(N, shift)
        s = shift or 3.0
        plain = np.linspace(1, 1 / 1000, N + 1)[:-1]
        shifted = s * plain / (1 + (s - 1) * plain)
        for k in (1, 15):
            rec = edit(model, frames, k, shift=shift, guidance=1.0).record
            assert rec["sigma_start"] == pytest.approx(float(sched.sigmas[N - k]))
            assert rec["sigma_start"] == pytest.approx(shifted[N - k], rel=1e-5)
            assert rec["timestep_start"] == float(sched.timesteps[N - k]) and rec["shift"] == s
    assert edit(model, frames, 0).record["sigma_start"] == 0.0


def test_forward_process_matches_the_scheduler(model):
    z = torch.randn(1, 16, 2, 4, 4)
    eps = torch.randn_like(z)
    for k in (1, 7, N):
        sched = model.make_scheduler(N)
        sched.set_begin_index(N - k)
        ours = model.add_noise(z, eps, sched, N - k)
        theirs = sched.add_noise(z, eps, sched.timesteps[N - k:N - k + 1])
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_output_has_input_frames_and_base_size(model):
    for t in (5, 7, 9):                       # 7 is not 4k+1: padded for the VAE, cut back after
        item = edit(model, clip(t, 48, 80), k=2)
        assert item.out.shape == (t, 32, 32, 3) and item.out.dtype == np.uint8
        assert item.record["base"] == {"width": 32, "height": 32, "frames": t}
        assert item.record["padded_frames"] == core.valid_frames(t, 4) - t


def test_k0_is_the_vae_round_trip(model):
    frames = clip()
    x = core.to_model_video(frames, (32, 32), 5, model.device)
    expected = core.to_uint8(model.decode_video(model.encode_video(x))[0])
    assert np.array_equal(edit(model, frames, 0).out, expected)


def test_more_steps_change_the_clip_more(model):
    # mean absolute difference to the k = 0 result, averaged over 4 noise seeds (one batch per k):
    # random weights make single draws noisy, the trend is what SDEdit promises
    frames = clip()
    ref = edit(model, frames, 0).out.astype(np.float32)

    def mad(k):
        ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=k, base_width=32, base_height=32, base_area=None))
        items = ed.run([sdedit.Item(frames, "a man walks in the street", seed) for seed in range(4)])
        return float(np.mean([np.abs(it.out.astype(np.float32) - ref).mean() for it in items]))

    d = [mad(k) for k in (1, 5, 15, 50)]
    assert d[0] > 0 and all(a < b for a, b in zip(d, d[1:])), d


def test_seeded_runs_are_reproducible(model):
    frames = clip()
    a, b, c = (edit(model, frames, 5, seed=s).out for s in (7, 7, 8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_equal_shapes_share_transformer_calls(model, calls):
    items = [sdedit.Item(clip(seed=i), "a dog runs", seed=i) for i in range(3)]
    params = sdedit.SDEditParams(steps=N, k_range=(2, 9), base_width=32, base_height=32, base_area=None)
    batched = sdedit.SDEditor(model, params).run(items)
    ks = [it.record["k"] for it in batched]
    assert calls[0] == max(ks)               # one call per step serves every clip active at that step
    for it in batched:
        alone = sdedit.SDEditor(model, params).run([sdedit.Item(it.frames, it.prompt, it.seed)])[0]
        assert alone.record["k"] == it.record["k"]
        assert np.abs(alone.out.astype(int) - it.out.astype(int)).max() <= 2


def test_k_ranges_presets_and_base_sizes():
    assert core.k_range("light", None, 50) == (3, 7) and core.k_range("heavy", None, 50) == (13, 17)
    assert core.k_range("light", None, 25) == (2, 4) and core.k_range("light", (0, 50), 50) == (0, 50)
    with pytest.raises(ValueError):
        core.k_range(None, (5, 60), 50)
    ks = {core.draw_k(3, 7, s) for s in range(200)}
    assert ks == {3, 4, 5, 6, 7}
    assert core.base_size(1920, 1080, 16, base_area=832 * 480) == (848, 480)
    assert core.base_size(1080, 1920, 16, base_area=832 * 480) == (480, 848)
    assert core.base_size(1920, 1080, 16, base_height=480) == (848, 480)
    assert core.base_size(1280, 720, 16, base_width=832, base_height=480) == (832, 480)
    assert [core.valid_frames(t, 4) for t in (1, 5, 6, 77, 78)] == [1, 5, 9, 77, 81]


def test_stage_config_validates():
    from datakit.stages.sdedit import SDEditConfig

    cfg = SDEditConfig(model="m")
    assert (cfg.preset, cfg.steps, cfg.guidance, cfg.num_gpus, cfg.base_area) == ("light", 50, 5.0, 0.0, 399360)
    with pytest.raises(ValueError, match="K1 <= K2"):
        SDEditConfig(model="m", k_range=(9, 3))
    with pytest.raises(ValueError):
        SDEditConfig(model="m", preset="medium")


def test_stage_writes_lossless_lr_and_records_settings(model_dir):
    from datakit import media
    from datakit.records import Record
    from datakit.stages.sdedit import SDEdit, SDEditConfig

    frames = clip(9, 64, 96)
    recs = [Record(f"clip{i}", meta={"fps": 24.0, "caption": "a red car", "hr": {"width": 96, "height": 64}},
                   media={"hr.mp4": media.encode(frames, 24.0)}) for i in range(2)]
    st = SDEdit(SDEditConfig(model=str(model_dir), base_area=32 * 48, steps=20, k_range=(1, 4),
                             max_sequence_length=16, seed=3))
    assert SDEdit.preflight(st.config) == []
    st.setup()
    out = st.process_batch(recs)
    for r in out:
        lr = media.decode(r.media["lr.mp4"])
        assert lr.shape == (9, 32, 48, 3)
        rec = r.meta["sdedit"]
        assert {"model_id", "steps", "k", "sigma_start", "guidance", "seed", "base", "shift"} <= set(rec)
        assert rec["steps"] == 20 and 1 <= rec["k"] <= 4 and rec["seed"] == sdedit.clip_seed(3, r.key)
        assert r.meta["degradations"][-1]["stage"] == "sdedit"
        assert r.meta["synthetic_models"] is True and "sdedit" in r.meta["synthetic_model_backends"]
        assert r.meta["lr"] == {"width": 48, "height": 32, "frames": 9, "codec": "libx264rgb", "lossless": True,
                             "threads": media.LOSSLESS_THREADS}
    assert SDEdit.preflight(SDEditConfig(model=str(model_dir / "missing")))


def test_bf16_path_keeps_float32_islands(model_dir):
    # the GPU setting (bf16 denoiser and text encoder, float32 VAE), exercised on CPU
    m = sdedit.load_model(model_dir, dtype="bfloat16", max_sequence_length=16)
    assert m.transformer.dtype == torch.bfloat16 and m.vae.dtype == torch.float32
    assert m.transformer.scale_shift_table.dtype == torch.float32          # _keep_in_fp32_modules
    item = edit(m, clip(), k=2)
    assert item.out.shape == (5, 32, 32, 3) and item.record["dtype"] == "bfloat16"
