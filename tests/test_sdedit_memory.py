"""Memory that fits: the batch planner, refusing a clip that cannot fit, out-of-memory errors
turned into smaller batches or rejects (never an exception for Ray to retry), and tiled VAE
passes against whole-frame ones. Real tiny Wan models on CPU."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import pattern_frames
from datakit import sdedit, tiny
from datakit.sdedit import core, memory
from datakit.sdedit.vae import VaeTiling

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

N = 50
BASE = dict(base_width=32, base_height=32, base_area=None)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.write(tmp_path_factory.mktemp("tiny"), ["wan"])["wan"]


@pytest.fixture(scope="module")
def model(model_dir):
    return sdedit.load_model(model_dir, max_sequence_length=16)


def items(n, t=1):
    return [sdedit.Item(pattern_frames(t, 32, 32, seed=i), "a dog runs", seed=i) for i in range(n)]


@pytest.fixture
def transformer_batches(model):
    """Batch sizes of every transformer call."""
    seen = []
    h = model.transformer.register_forward_pre_hook(lambda mod, args, kw: seen.append(kw["hidden_states"].shape[0]),
                                                    with_kwargs=True)
    yield seen
    h.remove()


def oom_above(model, limit):
    """A device with room for ``limit`` sequences: the transformer raises CUDA's out-of-memory
    error beyond it (raised where a real one is, at the start of the forward pass)."""
    def hook(mod, args, kwargs):
        if kwargs["hidden_states"].shape[0] > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (batch "
                                         f"{kwargs['hidden_states'].shape[0]} > {limit})")
    return model.transformer.register_forward_pre_hook(hook, with_kwargs=True)


# ---------------------------------------------------------------- the planner (pure)

def test_plan_batch_is_the_largest_batch_within_the_budget():
    need = memory.MemoryNeed(fixed=10, per_clip=3)
    assert memory.plan_batch(need, budget=22, limit=8) == 4          # 10 + 4*3 = 22
    assert memory.plan_batch(need, budget=21, limit=8) == 3
    assert memory.plan_batch(need, budget=1000, limit=8) == 8        # capped by the batch size asked
    assert memory.plan_batch(need, budget=12, limit=8) == 0          # not even one clip
    assert memory.plan_batch(need, budget=None, limit=5) == 5        # no budget known: as asked
    assert memory.plan_batch(memory.MemoryNeed(4, 0), budget=3, limit=2) == 0
    with pytest.raises(ValueError):
        memory.plan_batch(need, 100, 0)


def test_oom_errors_are_recognised():
    assert memory.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"))
    try:                                   # the CPU allocator's real failure (nothing is allocated)
        torch.empty(2 ** 62, dtype=torch.uint8)
    except RuntimeError as e:
        assert memory.is_oom(e)
    else:
        pytest.fail("2**62 bytes were allocated")
    assert not memory.is_oom(ValueError("out of memory"))           # not an allocation failure
    assert not memory.is_oom(RuntimeError("shape mismatch"))


def test_budget_from_the_device_or_the_config():
    assert memory.available(torch.device("cpu"), budget_gb=2) == 2 * memory.GiB
    assert 0 < memory.available(torch.device("cpu")) < 1 << 50       # the OS's available memory


def test_estimate_grows_with_the_work(model):
    small = model.memory_need((32, 32), 5, 1.0)
    assert model.memory_need((32, 32), 5, 5.0).per_clip > small.per_clip           # cond + uncond
    assert model.memory_need((32, 32), 17, 1.0).per_clip > small.per_clip
    assert model.memory_need((64, 64), 5, 1.0).fixed > small.fixed                 # the VAE pass
    names = dict(small.detail)
    assert {"transformer", "vae", "video", "latents"} == set(names) and all(v > 0 for v in names.values())


# ---------------------------------------------------------------- SDEditor within a budget

def test_a_clip_that_cannot_fit_is_refused_with_the_numbers(model, transformer_batches):
    ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=3, **BASE), memory_budget_gb=1e-6)
    out = ed.run(items(2))
    assert transformer_batches == []                                # nothing ran
    for it in out:
        assert it.out is None and it.reason == "does_not_fit"
        assert len(it.error.splitlines()) == 1
        assert "SDEdit of one 1-frame 32x32 clip needs about" in it.error and "memory_budget_gb" in it.error
        assert "vae_tiling" in it.error


def test_batches_are_sized_to_the_budget(model, transformer_batches):
    need = model.memory_need((32, 32), 1, 1.0)
    budget_gb = need.total(2) / memory.GiB                          # room for exactly two clips
    ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=2, guidance=1.0, **BASE), memory_budget_gb=budget_gb)
    out = ed.run(items(5))
    assert [it.record["batch"] for it in out] == [2, 2, 2, 2, 1]
    assert transformer_batches == [2, 2, 2, 2, 1, 1]               # k = 2 steps per call
    alone = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=2, guidance=1.0, **BASE)).run(items(5)[3:4])[0]
    assert np.abs(alone.out.astype(int) - out[3].out.astype(int)).max() <= 1


def test_out_of_memory_halves_the_batch_and_remembers(model, transformer_batches):
    ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=2, guidance=1.0, **BASE))
    h = oom_above(model, 2)
    try:
        out = ed.run(items(4))
        assert all(it.reason is None and it.out is not None for it in out)
        assert [it.record["batch"] for it in out] == [2, 2, 2, 2]
        assert transformer_batches[0] == 4 and transformer_batches[1:] == [2, 2, 2, 2]   # 4 failed, then 2 + 2
        transformer_batches.clear()
        ed.run(items(4))                                            # the smaller size is remembered
        assert transformer_batches == [2, 2, 2, 2]
    finally:
        h.remove()
    ref = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=2, guidance=1.0, **BASE)).run(items(4))
    for a, b in zip(out, ref):
        assert np.abs(a.out.astype(int) - b.out.astype(int)).max() <= 1


def test_a_clip_out_of_memory_alone_is_a_reject_and_other_errors_propagate(model):
    ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=2, guidance=5.0, **BASE))
    h = oom_above(model, 0)
    try:
        out = ed.run(items(3))
    finally:
        h.remove()
    for it in out:
        assert it.out is None and it.reason == "out_of_memory" and "CUDA out of memory" in it.error
        assert len(it.error.splitlines()) == 1

    def broken(mod, args, kwargs):
        raise ValueError("not a memory problem")

    h = model.transformer.register_forward_pre_hook(broken, with_kwargs=True)
    try:
        with pytest.raises(ValueError, match="not a memory problem"):
            ed.run(items(2))
    finally:
        h.remove()


def test_stage_rejects_what_does_not_fit_instead_of_raising(model_dir):
    from datakit import media
    from datakit.records import Record
    from datakit.stages.sdedit import SDEdit, SDEditConfig

    recs = [Record(f"clip{i}", meta={"fps": 16.0, "caption": "a red car"},
                   media={"hr.mp4": media.encode(pattern_frames(1, 32, 32, i), 16.0)}) for i in range(2)]
    st = SDEdit(SDEditConfig(model=str(model_dir), base_width=32, base_height=32, base_area=None, steps=10,
                             k_range=(1, 2), max_sequence_length=16, memory_budget_gb=1e-6))
    st.setup()
    out = st.process_batch(recs)
    assert [r.reject.reason for r in out] == ["does_not_fit", "does_not_fit"]
    assert "needs about" in out[0].reject.detail and out[0].media == {}
    with pytest.raises(ValueError, match="VAE tile stride"):
        SDEditConfig(model="m", vae_tiling=True, vae_tile=64, vae_tile_stride=100)


# ---------------------------------------------------------------- tiled VAE

def test_tiled_vae_agrees_with_whole_frames(model):
    """Tolerance, on the tiny random VAE (3 base channels, so a tile sees relatively little
    context): 64-pixel tiles 48 apart on a 5-frame 96x160 clip. Decoded video: mean |difference| below
    0.01 of the [-1, 1] range (about 1.3 of 255 levels); latents: mean |difference| below 10 %
    of their mean magnitude. A clip no larger than one tile is encoded exactly as without tiling."""
    x = core.to_model_video(pattern_frames(5, 96, 160, 0), (160, 96), 5, model.device)
    z = model.encode_video(x)
    y = model.decode_video(z)
    try:
        model.set_vae_tiling(VaeTiling(tile=64, stride=48))
        assert model.vae.use_tiling
        zt, yt = model.encode_video(x), model.decode_video(z)
        small = core.to_model_video(pattern_frames(1, 64, 64, 1), (64, 64), 1, model.device)
        small_tiled = model.encode_video(small)
    finally:
        model.set_vae_tiling(None)
    assert not model.vae.use_tiling
    assert torch.equal(small_tiled, model.encode_video(small))
    assert (yt - y).abs().mean() < 0.01
    assert (zt - z).abs().mean() < 0.1 * z.abs().mean()
    assert not torch.equal(yt, y)                                   # the tiled path did run


def test_tiling_settings_and_the_sdedit_record(model):
    with pytest.raises(ValueError, match="multiple of 8"):
        VaeTiling(tile=100)
    with pytest.raises(ValueError, match="stride"):
        VaeTiling(tile=64, stride=72)
    from datakit.sdedit import vae

    # the VAE's working set follows the pixels it works on at once: a tile instead of a 1080p frame
    assert vae.working_pixels(1088, 1920, None) == 1088 * 1920
    assert vae.working_pixels(1088, 1920, VaeTiling()) == 256 * 256
    assert vae.working_pixels(128, 128, VaeTiling()) == 128 ** 2
    model.set_vae_tiling(VaeTiling())
    try:
        ed = sdedit.SDEditor(model, sdedit.SDEditParams(steps=N, k=1, base_width=48, base_height=32, base_area=None))
        it = ed.run([sdedit.Item(pattern_frames(1, 32, 48), "a cat", seed=0)])[0]
    finally:
        model.set_vae_tiling(None)
    assert it.out.shape == (1, 32, 48, 3)
    assert it.record["vae_tiling"] == {"tile": 256, "stride": 192, "slicing": True}
