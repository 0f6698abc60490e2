"""The bundled trainer (issue 7): model, RoPE, CFG, loader, training, resume, Ray Train, upscale.

Shards come from the real pipelines on the real sample clips: ``pipelines/smoke.yaml`` (t2v,
tiny random models for captioning and SDEdit) and the offline mi2v / edit demos on the
face clip. Everything trains the tiny random Wan 2.1 model on CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import train_helpers
from conftest import REPO

torch.set_num_threads(1)      # 2 shared cores: one thread per process is much faster than two


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    return train_helpers.tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, sample_dir, tiny_models, ray_session) -> dict[str, str]:
    return train_helpers.corpora(tmp_path_factory, sample_dir, tiny_models)


tiny_config = train_helpers.tiny_config


@pytest.fixture(scope="module")
def wan(tiny_models):
    from datakit.sdedit import load_model

    return load_model(tiny_models / "wan", device="cpu", dtype="float32")


# ---------------------------------------------------------------------------- config

def test_paper_config_schedule():
    from datakit.train import config

    cfg = config.load(REPO / "pipelines" / "train_unimmvsr.yaml")
    assert [s.frames for s in cfg.stages] == [21, 21, 21, 77]
    assert [dict(s.tasks) for s in cfg.stages] == [
        {"t2v": 1.0}, {"t2v": 0.6, "mi2v": 0.4}, {"t2v": 0.5, "mi2v": 0.3, "edit": 0.2},
        {"t2v": 0.5, "mi2v": 0.3, "edit": 0.2}]
    assert cfg.optim.lr == 1e-4 and cfg.objective.null_prompt_prob == 0.1
    assert tuple(cfg.objective.noise_aug) == (200, 600)
    assert (cfg.model.rope.target, cfg.model.rope.images, cfg.model.rope.video) == (0, 20, 30)
    inf = cfg.inference
    assert (inf.steps, inf.shift, inf.s_txt, inf.s_ref, inf.n_ref, inf.noise_aug_ref, inf.noise_aug_plain) == \
        (50, 1.0, 3.0, 1.0, 15, 600, 200)
    a = cfg.augment
    assert a.shear_frac == 0.05
    assert (a.rotate_deg, tuple(a.brightness), a.hflip_p, tuple(a.crop_scale), a.crop_p) == \
        (20, (0.9, 1.1), 0.5, (0.67, 1.0), 0.5)
    s0 = cfg.stages[0].steps
    assert cfg.stage_at(0)[1].name == "t2v-21f" and cfg.stage_at(s0)[1].name == "t2v-mi2v-21f"

    cfg2 = config.load(REPO / "pipelines" / "train_unimmvsr.yaml", ["stages.3.frames=33", "optim.lr=5e-5"])
    assert cfg2.stages[3].frames == 33 and cfg2.optim.lr == 5e-5
    with pytest.raises(config.TrainConfigError, match="4k\\+1"):
        config.load(REPO / "pipelines" / "train_unimmvsr.yaml", ["stages.0.frames=20"])
    with pytest.raises(config.TrainConfigError, match="unknown field"):
        config.load(REPO / "pipelines" / "train_unimmvsr.yaml", ["optim.learning_rate=1"])


# ---------------------------------------------------------------------------- model

def test_initial_model_is_the_t2v_model(wan):
    """Zero-initialised LR channels and noise-aug embedder: the expanded model equals the base at init."""
    from datakit.train.model import build

    model = build(wan.transformer).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 3, 8, 12, generator=g)
    lr = torch.randn(1, 16, 3, 8, 12, generator=g) * 3
    text = wan.encode_text(["a man walks on the street"]).clone()
    t = torch.tensor([637.0])
    with torch.no_grad():
        base = wan.transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        ours = model(x, t, text, lr=lr, aug_t=torch.tensor([450.0]))
        ours_no_lr = model(x, t, text)
    assert torch.equal(ours, base)
    assert torch.equal(ours_no_lr, base)
    w = model.patch_embedding.weight
    assert w.shape[1] == 32 and torch.equal(w[:, :16], wan.transformer.patch_embedding.weight)
    assert not w[:, 16:].any()


def test_rope_ranges_and_references_cut(wan):
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    from datakit.train.model import build

    model = build(wan.transformer).eval()
    f, h, w = 3, 8, 12
    x = torch.randn(1, 16, f, h, w)
    images = torch.randn(1, 16, 2, h, w)        # two ID images, one latent frame each
    video = torch.randn(1, 16, f, h, w)
    segs = model.segments(x.shape, [("images", images), ("video", video)])
    assert [s.kind for s in segs] == ["target", "images", "video"]
    assert segs[0].t_index == (0, 1, 2)
    assert segs[1].t_index == (20, 21)
    assert segs[2].t_index == (30, 31, 32)           # past the tiny model's rope_max_seq_len (32)
    assert wan.transformer.config.rope_max_seq_len == 32

    cos, sin = model.rope(segs)
    n_t, n_i = segs[0].num_tokens, segs[1].num_tokens
    assert cos.shape[1] == n_t + n_i + segs[2].num_tokens
    # target tokens: exactly Wan's own table
    wcos, wsin = wan.transformer.rope(x)
    assert torch.equal(cos[:, :n_t], wcos) and torch.equal(sin[:, :n_t], wsin)
    # temporal part of every token = the 1-D table at its index; h/w parts as Wan's
    t_dim = model.rope.dims[0]
    ref_cos, _ = get_1d_rotary_pos_embed(t_dim, 40, 10000.0, use_real=True, repeat_interleave_real=True,
                                         freqs_dtype=torch.float64)
    tokens_t = cos[0, :, 0, :t_dim]
    hw = h // 2 * (w // 2)
    expect = [i for s in segs for i in s.t_index for _ in range(hw)]
    torch.testing.assert_close(tokens_t, ref_cos[expect], rtol=0, atol=1e-6)
    assert torch.equal(cos[0, n_t:n_t + hw, 0, t_dim:], wcos[0, :hw, 0, t_dim:])   # same spatial indices

    with torch.no_grad():
        text = wan.encode_text(["a face"]).clone()
        t = torch.tensor([500.0])
        out = model(x, t, text, refs=[("images", images), ("video", video)])
        plain = model(x, t, text)
    assert out.shape == x.shape                      # references cut from the output
    assert not torch.allclose(out, plain)            # ... after taking part in self-attention
    with pytest.raises(ValueError, match="overlap"):
        model.segments((1, 16, 21, h, w))           # 21 latent frames would reach the image range
    with pytest.raises(ValueError, match="zero-padded"):
        model.segments(x.shape, [("images", torch.randn(1, 16, 1, h, w + 2))])


# ---------------------------------------------------------------------------- guidance

def test_independent_cfg_and_reference_threshold(wan):
    from datakit.train.infer import Guidance, combine, denoise, guided_velocity
    from datakit.train.model import build

    model = build(wan.transformer).eval()
    with torch.no_grad():            # make the LR and aug inputs matter, as after training
        model.patch_embedding.weight[:, 16:].normal_(0, 0.05)
        model.aug_embedder.embedder.linear_2.weight.normal_(0, 0.05)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 2, 8, 8, generator=g)
    lr = torch.randn(1, 16, 2, 8, 8, generator=g)
    refs = [("images", torch.randn(1, 16, 1, 8, 8, generator=g))]
    text = wan.encode_text(["a man"]).clone()
    null = wan.encode_text([""]).clone()
    gd = Guidance(s_txt=3.0, s_ref=1.0, n_ref=2)
    tt, aug = torch.tensor([700.0]), torch.tensor([600.0])
    with torch.no_grad():
        c = model(x, tt, text, lr=lr, aug_t=aug, refs=refs)
        nt = model(x, tt, null, lr=lr, aug_t=aug, refs=refs)
        nr = model(x, tt, text, lr=lr, aug_t=aug)
        v0, br0 = guided_velocity(model, x, 700.0, text, null, lr, 600, refs, 0, gd)
        v5, br5 = guided_velocity(model, x, 700.0, text, null, lr, 600, refs, 5, gd)
    expect0 = c + 3.0 * (c - nt) + 1.0 * (c - nr)
    expect5 = c + 3.0 * (c - nt)
    torch.testing.assert_close(v0, expect0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(v5, expect5, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(combine(c, nt, nr, 3.0, 1.0), expect0)
    assert br0 == ["cond", "null_txt", "null_ref"] and br5 == ["cond", "null_txt"]
    assert not torch.allclose(c, nr)

    seen = []
    with torch.no_grad():
        out = denoise(model, wan, lr, text, null, refs, steps=5, shift=1.0, guidance=gd, aug_t=600,
                      callback=lambda n, t, br: seen.append(("null_ref" in br, t)))
    assert [r for r, _ in seen] == [True, True, False, False, False]
    assert seen[0][1] > seen[-1][1] and out.shape == x.shape


def test_configured_sampler_is_the_one_used(wan):
    """The default sampler is the base model's flow scheduler at the paper's shift; a configured
    FlowMatchEuler sampler gives exactly the explicit Euler integration of the guided velocity."""
    from datakit.train.config import SamplerConfig
    from datakit.train.infer import Guidance, denoise, guided_velocity, make_scheduler
    from datakit.train.model import build
    from datakit.train.sampler import SamplerError, describe
    from datakit.train.trainer import noise_augment

    default = make_scheduler(wan, 4, 1.0)
    assert describe(default).items() >= {"class": "UniPCMultistepScheduler", "flow_shift": 1.0,
                                         "use_flow_sigmas": True, "prediction_type": "flow_prediction"}.items()
    dpm = make_scheduler(wan, 4, 2.0, SamplerConfig(scheduler="DPMSolverMultistepScheduler",
                                                   settings={"solver_order": 1}))
    assert describe(dpm).items() >= {"class": "DPMSolverMultistepScheduler", "flow_shift": 2.0, "solver_order": 1,
                                     "use_flow_sigmas": True, "prediction_type": "flow_prediction"}.items()
    with pytest.raises(SamplerError, match="no flow-matching mode"):
        make_scheduler(wan, 4, 1.0, SamplerConfig(scheduler="PNDMScheduler"))
    with pytest.raises(SamplerError, match="no setting"):
        make_scheduler(wan, 4, 1.0, SamplerConfig(scheduler="UniPCMultistepScheduler", settings={"order": 2}))
    with pytest.raises(SamplerError, match="not a diffusers scheduler"):
        make_scheduler(wan, 4, 1.0, SamplerConfig(scheduler="NoSuchScheduler"))

    model = build(wan.transformer).eval()
    with torch.no_grad():
        model.patch_embedding.weight[:, 16:].normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(2)
    lr_lat = torch.randn(1, 16, 2, 8, 8, generator=g)
    text, null = wan.encode_text(["a man"]).clone(), wan.encode_text([""]).clone()
    gd = Guidance(s_txt=3.0, s_ref=0.0, n_ref=0)
    euler = SamplerConfig(scheduler="FlowMatchEulerDiscreteScheduler")
    out = denoise(model, wan, lr_lat, text, null, steps=4, guidance=gd, aug_t=200, seed=5,
                  scheduler=make_scheduler(wan, 4, 1.0, euler))
    ref_sched = make_scheduler(wan, 4, 1.0, euler)
    sig = ref_sched.sigmas
    gen = torch.Generator().manual_seed(5)           # the sampler's draws: start noise, then LR noise
    x = torch.randn(lr_lat.shape, generator=gen)
    lr = noise_augment(lr_lat, 200, torch.randn(lr_lat.shape, generator=gen))
    with torch.no_grad():
        for n, t in enumerate(ref_sched.timesteps):
            v, _ = guided_velocity(model, x, t, text, null, lr, 200, (), n, gd)
            x = x + (sig[n + 1] - sig[n]) * v         # Euler step of dx/dσ = v
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-5)
    unipc = denoise(model, wan, lr_lat, text, null, steps=4, guidance=gd, aug_t=200, seed=5)
    assert not torch.allclose(unipc, out, atol=1e-4)


# ---------------------------------------------------------------------------- data

def test_sampler_is_step_indexed_and_follows_the_mixture(corpora, tiny_models, tmp_path):
    from datakit.train.data import Sampler, build_index

    stages = ('stages=[{name: a, steps: 5, frames: 5, tasks: {t2v: 0.5, mi2v: 0.3, edit: 0.2}},'
              ' {name: b, steps: 5000, frames: 5, tasks: {mi2v: 1.0}}]')
    cfg = tiny_config(tiny_models, corpora.values(), tmp_path / "o", stages)
    index = build_index(cfg.data.roots)
    assert len(index["t2v"]) == 3 and len(index["mi2v"]) >= 1 and len(index["edit"]) == 1
    s1, s2 = Sampler(cfg, index), Sampler(cfg, index)
    plans = [s1.plan(i) for i in range(5, 3005)]
    assert [p.entry.key for p in plans[:50]] == [s2.plan(i).entry.key for i in range(5, 55)]
    assert all(p.task == "mi2v" and p.stage == 1 for p in plans)       # stage 2 of the schedule
    mixed = Sampler(tiny_config(tiny_models, corpora.values(), tmp_path / "o", "stages.0.steps=100000",
                                "stages.0.tasks={t2v: 0.5, mi2v: 0.3, edit: 0.2}"), index)
    tasks = [mixed.plan(i).task for i in range(4000)]
    freq = {t: tasks.count(t) / len(tasks) for t in ("t2v", "mi2v", "edit")}
    assert freq == pytest.approx({"t2v": 0.5, "mi2v": 0.3, "edit": 0.2}, abs=0.03)
    drops = np.mean([mixed.plan(i).drop_text for i in range(4000)])
    assert drops == pytest.approx(0.1, abs=0.02)
    shifts = {mixed.plan(i).edit_shift for i in range(400)}
    assert shifts == set(range(-cfg.augment.edit_shift, cfg.augment.edit_shift + 1))


def test_partition_gives_each_reader_its_own_shards():
    from datakit.train.data import Entry, partition

    entries = [Entry(f"s{i % 4}.tar", f"k{i}", "t2v", 9, (), "", 24.0) for i in range(12)]
    parts = [partition(entries, r, 2)[0] for r in range(2)]
    assert {e.shard for e in parts[0]} == {"s0.tar", "s2.tar"}
    assert {e.shard for e in parts[1]} == {"s1.tar", "s3.tar"}
    sub = [partition(parts[0], g, 2)[0] for g in range(2)]
    assert [{e.shard for e in p} for p in sub] == [{"s0.tar"}, {"s2.tar"}]
    shared, flag = partition(entries, 1, 8)      # fewer shards than readers: shared, and said so
    assert shared == entries and flag


def test_loader_items(corpora, tiny_models, tmp_path):
    import av  # noqa: F401

    from datakit import media
    from datakit.train.data import Sampler, build_index, load_item, make_loader, read_members, upscale_bilinear

    cfg = tiny_config(tiny_models, corpora.values(), tmp_path / "o",
                      "stages.0.tasks={t2v: 0.4, mi2v: 0.3, edit: 0.3}", "data.crop=null",
                      "objective.null_prompt_prob=0")
    index = build_index(cfg.data.roots)
    sampler = Sampler(cfg, index)
    by_task = {}
    for i in range(60):
        p = sampler.plan(i)
        by_task.setdefault(p.task, p)
    assert set(by_task) == {"t2v", "mi2v", "edit"}

    p = by_task["t2v"]
    item = load_item(p, cfg)
    m = read_members(p.entry, ["hr.mp4", "lr.mp4"])
    hr, lr = media.decode(m["hr.mp4"]), media.decode(m["lr.mp4"])
    T, H, W = 5, hr.shape[1], hr.shape[2]
    s = item["frame_start"]
    assert item["hr"].shape == (T, H, W, 3) and H % 16 == 0 and W % 16 == 0
    assert np.array_equal(item["hr"], hr[s:s + T])
    assert np.array_equal(item["lr"], upscale_bilinear(lr[s:s + T], H, W))   # bilinear to HR size in pixels
    assert item["caption"] == p.entry.caption

    p = by_task["mi2v"]
    item = load_item(p, cfg)
    imgs = item["images"]
    n_refs = sum(n.startswith("ref_") for n in p.entry.members)
    assert imgs.shape == (n_refs, H := item["hr"].shape[1], W := item["hr"].shape[2], 3)
    assert not imgs[:, 0].any() or not imgs[:, :, 0].any()        # zero padding around the crop
    again = load_item(p, cfg)
    assert np.array_equal(again["images"], imgs)                    # augmentation seeded by the plan

    p = by_task["edit"]
    item = load_item(p, cfg)
    ref = media.decode(read_members(p.entry, ["ref.mp4"])["ref.mp4"])
    s, k = item["frame_start"], item["ref_shift"]
    idx = np.clip(np.arange(s, s + T) + k, 0, len(ref) - 1)
    assert np.array_equal(item["video"], ref[idx][:, :item["hr"].shape[1], :item["hr"].shape[2]])
    shifted = next(sampler.plan(i) for i in range(1000) if sampler.plan(i).task == "edit"
                   and sampler.plan(i).edit_shift != 0)
    assert load_item(shifted, cfg)["ref_shift"] == shifted.edit_shift

    # two loader processes: item i comes from group i % 2 and in order
    loader = make_loader(cfg, index, start=3, stop=9, workers=2)
    got = [(int(it["index"]), it["key"]) for it in loader]
    two = Sampler(cfg, index, groups=2)
    assert got == [(i, two.plan(i).entry.key) for i in range(3, 9)]


def _dot_centre(img: np.ndarray, y: int, x: int, r: int = 14) -> tuple[float, float]:
    y0, x0 = max(0, y - r), max(0, x - r)
    sub = img[y0:y + r, x0:x + r, 0].astype(np.float64)
    yy, xx = np.mgrid[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]]
    return float((sub * yy).sum() / sub.sum()), float((sub * xx).sum() / sub.sum())


@pytest.mark.parametrize("h,w", [(120, 200), (200, 120)])
def test_table3_shear_is_five_percent_of_the_side_in_pixels(h, w):
    """Table 3 shears by up to 0.05*w (x) and 0.05*h (y) pixels: measured on what albumentations
    does to an image with dots on its centre lines, at the largest angle our conversion allows."""
    import albumentations as A

    from datakit.train.data import shear_degrees

    sx, sy = shear_degrees(h, w, 0.05)
    img = np.zeros((h, w, 3), np.uint8)
    top, bottom, left, right = (20, w // 2), (h - 20, w // 2), (h // 2, 20), (h // 2, w - 20)
    for y, x in (top, bottom, left, right):
        img[y - 1:y + 2, x - 1:x + 2] = 255
    for shear, axis in (({"x": (sx, sx), "y": (0, 0)}, "x"), ({"x": (0, 0), "y": (sy, sy)}, "y")):
        out = A.Compose([A.Affine(shear=shear, rotate=0, fill=0, p=1.0)], seed=0)(image=img)["image"]
        if axis == "x":     # horizontal offset between two points, per the full height
            dy = bottom[0] - top[0]
            off = (_dot_centre(out, *bottom)[1] - _dot_centre(out, *top)[1]) * h / dy
            assert abs(off) == pytest.approx(0.05 * w, rel=0.02)
        else:               # vertical offset between two points, per the full width
            dx = right[1] - left[1]
            off = (_dot_centre(out, *right)[0] - _dot_centre(out, *left)[0]) * w / dx
            assert abs(off) == pytest.approx(0.05 * h, rel=0.02)
    assert shear_degrees(64, 64, 0.05) == pytest.approx((2.862, 2.862), abs=1e-3)   # square: atan(0.05)


def test_reference_augmentation_table3():
    import albumentations as A

    from datakit.train.config import AugmentConfig
    from datakit.train.data import augment_image, pad_to, reference_augmentation, shear_degrees

    cfg = AugmentConfig()
    comp = reference_augmentation(cfg, 80, 60, seed=3)
    kinds = [type(t) for t in comp.transforms]
    assert kinds == [A.MultiplicativeNoise, A.HorizontalFlip, A.Affine, A.RandomResizedCrop]
    aff = comp.transforms[2]
    sx, sy = shear_degrees(80, 60, 0.05)           # per image size: 0.05*60 px along x over 80 rows
    assert sx == pytest.approx(np.degrees(np.arctan(0.05 * 60 / 80))) and sx < sy
    assert aff.p == 1.0 and aff.shear["x"] == pytest.approx((-sx, sx)) and \
        aff.shear["y"] == pytest.approx((-sy, sy)) and tuple(aff.rotate) == (-20, 20)
    assert comp.transforms[3].p == 0.5 and tuple(comp.transforms[3].scale) == (0.67, 1.0)
    assert comp.transforms[1].p == 0.5 and tuple(comp.transforms[0].multiplier) == (0.9, 1.1)
    img = np.random.default_rng(0).integers(0, 255, (80, 60, 3), dtype=np.uint8)
    a, b = augment_image(img, cfg, 7), augment_image(img, cfg, 7)
    assert np.array_equal(a, b) and a.shape == img.shape and not np.array_equal(a, img)
    padded = pad_to(img, 96, 128)
    assert padded.shape == (96, 128, 3) and np.array_equal(padded[8:88, 34:94], img) and padded[:8].sum() == 0


# ---------------------------------------------------------------------------- training

def test_training_loss_falls_and_upscale(corpora, tiny_models, tmp_path):
    from datakit import media
    from datakit.train import trainer
    from datakit.train.data import read_members
    from datakit.train.infer import upscale

    out = tmp_path / "run"
    cfg = tiny_config(tiny_models, [corpora["t2v"]], out, "stages.0.steps=200", "checkpoint.every=1000",
                      "log_every=50")
    t = trainer.Trainer(cfg)
    fixed = t.fixed_items(4)
    before = t.eval_loss(fixed)
    hist = t.fit()
    after = t.eval_loss(fixed)
    assert len(hist) == 200 and all(np.isfinite(r["loss"]) for r in hist)
    assert after < 0.7 * before, (before, after)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 200 and {"loss", "items_per_s", "data_s", "lr", "stage"} <= set(json.loads(lines[-1]))

    ck = out / "checkpoints" / "step-00000200"
    assert {p.name for p in ck.iterdir()} == {"model.safetensors", "optimizer.safetensors", "trainer.json"}
    from safetensors.torch import load_file
    opt = load_file(ck / "optimizer.safetensors")
    assert "patch_embedding.weight::exp_avg_sq" in opt and "aug_embedder.embedder.linear_2.weight::exp_avg" in opt
    info = json.loads((ck / "trainer.json").read_text())
    assert info["step"] == 200 and info["inference"]["n_ref"] == 15 and info["model"]["rope_starts"]["video"] == 30

    # upscale an LR clip of the corpus back to its HR size and frame count
    entry = t.index["t2v"][0]
    m = read_members(entry, ["lr.mp4", "hr.mp4"])
    (tmp_path / "lr.mp4").write_bytes(m["lr.mp4"])
    hr = media.stream_info(m["hr.mp4"])
    res = upscale(str(out), str(tmp_path / "lr.mp4"), "a street", str(tmp_path / "up.mp4"), steps=3)
    got = media.stream_info((tmp_path / "up.mp4").read_bytes())
    assert (got["width"], got["height"], got["frames"]) == (hr["width"], hr["height"], hr["frames"])
    assert res["noise_aug"] == 200 and res["ref_guided_steps"] == 0


def test_resume_gives_the_same_next_step_loss(corpora, tiny_models, tmp_path):
    from datakit.train import trainer

    roots = [corpora["t2v"], corpora["mi2v"], corpora["edit"]]
    over = ["stages.0.steps=6", "stages.0.tasks={t2v: 0.4, mi2v: 0.3, edit: 0.3}", "checkpoint.every=3",
            "checkpoint.resume=never"]
    a = trainer.Trainer(tiny_config(tiny_models, roots, tmp_path / "a", *over))
    full = a.fit()
    assert [r["step"] for r in full] == list(range(6))
    assert {"mi2v", "edit"} & {t for r in full for t in r["tasks"]}     # references went through the model
    ck = tmp_path / "a" / "checkpoints" / "step-00000003"
    b = trainer.Trainer(tiny_config(tiny_models, roots, tmp_path / "b", *over[:-1], f"checkpoint.resume={ck}"))
    assert b.step == 3 and b.resumed_from == str(ck)
    rest = b.fit()
    assert [r["step"] for r in rest] == [3, 4, 5]
    for x, y in zip(full[3:], rest):
        assert x["tasks"] == y["tasks"]
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5, abs=1e-7)


def test_from_scratch_runs_are_bit_identical_and_bf16_checkpointed_steps_run(corpora, tiny_models, tmp_path):
    """Two from-scratch runs with one seed end with the same weights bit for bit, whatever the global
    generator did; bf16 autocast with gradient checkpointing trains the same step on CPU closely."""
    from datakit.train import trainer

    over = ["stages.0.steps=3", "checkpoint.every=1000", "checkpoint.resume=never"]
    states = []
    for i, out in enumerate(("a", "b")):
        torch.manual_seed(1000 + i)
        t = trainer.Trainer(tiny_config(tiny_models, [corpora["t2v"]], tmp_path / out, *over))
        hist = t.fit()
        states.append((t.model.state_dict(), [r["loss"] for r in hist]))
    (sa, la), (sb, lb) = states
    assert la == lb and sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)

    t = trainer.Trainer(tiny_config(tiny_models, [corpora["t2v"]], tmp_path / "bf16", *over, "stages.0.steps=1",
                                    "model.precision=bf16", "model.gradient_checkpointing=true"))
    assert t.autocast and t.model.gradient_checkpointing
    rec = t.fit()[0]
    assert rec["loss"] == pytest.approx(la[0], rel=5e-2)
    assert all(p.dtype == torch.float32 for p in t.model.parameters())


def test_tiled_hr_encode_agrees_with_whole_frames(corpora, tiny_models, tmp_path):
    """The trainer's VAE pass (HR, upscaled LR, reference video) over tiles, as 1080p x 77 frames needs:
    48-pixel tiles 32 apart (16 pixels blended) on 64x64 training crops of the tiny random VAE (3 base channels, so a tile
    sees little context) agree with whole frames to a mean |difference| below 10 % of the latents'
    mean magnitude (the tolerance of the tiled-VAE tests of datakit.sdedit); the loss moves by < 5 %."""
    from datakit.train import trainer

    cfg = tiny_config(tiny_models, [corpora["t2v"]], tmp_path / "o", "model.vae_tiling=true", "model.vae_tile=48",
                      "model.vae_tile_stride=32", "checkpoint.resume=never")
    t = trainer.Trainer(cfg)
    assert t.wan.vae.use_tiling and t.wan.vae_tiling.tile == 48
    item = t.fixed_items(1)[0]
    assert item["hr"].shape[1:3] == (64, 64)
    tiled = t.encode(item)
    loss_tiled = float(t.loss_of(tiled))
    t.wan.set_vae_tiling(None)
    whole = t.encode(item)
    for a, b in ((tiled.hr, whole.hr), (tiled.lr, whole.lr)):
        assert not torch.equal(a, b)                                   # the tiled path did run
        assert (a - b).abs().mean() < 0.1 * b.abs().mean()
    assert loss_tiled == pytest.approx(float(t.loss_of(whole)), rel=5e-2)
    auto = trainer.Trainer(tiny_config(tiny_models, [corpora["t2v"]], tmp_path / "p"))
    assert auto.wan.vae_tiling is None                                 # auto: on GPU only


def test_metrics_hold_each_step_once_after_resume(corpora, tiny_models, tmp_path):
    """A run that went past its last checkpoint and died: the resumed run rewrites those steps, once."""
    import shutil

    from datakit.train import trainer

    out = tmp_path / "run"
    over = ["stages.0.steps=6", "checkpoint.every=3"]
    trainer.Trainer(tiny_config(tiny_models, [corpora["t2v"]], out, *over)).fit(until=5)
    shutil.rmtree(out / "checkpoints" / "step-00000005")       # as if killed after step 5 before saving
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4]
    t = trainer.Trainer(tiny_config(tiny_models, [corpora["t2v"]], out, *over))
    assert t.step == 3
    t.fit()
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4, 5]


def test_stop_request_checkpoints_the_finished_step(corpora, tiny_models, tmp_path):
    """A stop request (Ctrl-C's first press, or OUTPUT/STOP) ends training after the step in progress
    with a checkpoint of it; an interrupt that cannot wait says how many steps are lost."""
    from datakit.train import trainer
    from datakit.train.control import StopRequest, TrainingInterrupted

    out = tmp_path / "run"
    cfg = tiny_config(tiny_models, [corpora["t2v"]], out, "stages.0.steps=50", "checkpoint.every=10")
    t = trainer.Trainer(cfg)
    stop = StopRequest(cfg.output)
    stop.clear()
    calls = []

    class After3(StopRequest):
        def requested(self, poll_file=True):
            calls.append(1)
            if len(calls) == 3:
                (out / "STOP").write_text("")           # as `touch OUTPUT/STOP` would
            return super().requested(poll_file)

    hist = t.fit(stop=After3(cfg.output))
    assert [r["step"] for r in hist] == [0, 1, 2] and t.interrupted and t.step == 3
    assert (out / "checkpoints" / "step-00000003" / "trainer.json").is_file()
    stop.clear()

    class Abort(StopRequest):
        def requested(self, poll_file=True):
            raise KeyboardInterrupt                   # a second Ctrl-C, inside step 4

    t = trainer.Trainer(cfg)
    assert t.step == 3
    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 4: 1 step\(s\) since the last checkpoint lost"):
        t.fit(stop=Abort(cfg.output))


def test_cli_ctrl_c_saves_and_exits_130(corpora, tiny_models, tmp_path):
    """Ctrl-C at a terminal (SIGINT to the whole process group, loader processes included): one line,
    no traceback, exit 130, a checkpoint of the last finished step, each step recorded once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "datakit.cli", "train", str(REPO / "pipelines" / "train_tiny.yaml"), "-q",
           "--output", str(out), "--set", f"base_model={tiny_models / 'wan'}",
           "--set", f"data.roots=[{corpora['t2v']}]", "--set", "stages.0.steps=100000",
           "--set", "checkpoint.every=100000", "--set", "data.workers=1"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()
    os.killpg(p.pid, signal.SIGINT)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr + stdout
    last = [x for x in stderr.splitlines() if x.startswith("datakit:")]
    assert len(last) == 1 and "checkpoint" in last[0] and "written" in last[0], stderr
    done = sorted(d.name for d in (out / "checkpoints").iterdir() if (d / "trainer.json").is_file())
    assert len(done) == 1
    step = int(done[0].split("-")[1])
    assert f"after step {step}:" in last[0]
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines()]
    assert steps == list(range(step)) and step >= 2
    assert not (out / "STOP").exists()


def test_upscale_with_references(corpora, tiny_models, tmp_path):
    from datakit import media
    from datakit.train import trainer
    from datakit.train.data import build_index, read_members
    from datakit.train.infer import upscale

    cfg = tiny_config(tiny_models, [corpora["t2v"]], tmp_path / "run", "stages.0.steps=1")
    trainer.Trainer(cfg).save()
    e = build_index([corpora["edit"]])["edit"][0]
    m = read_members(e, ["lr.mp4", "ref.mp4", "hr.mp4"])
    for n, b in m.items():
        (tmp_path / n).write_bytes(b)
    mi = build_index([corpora["mi2v"]])["mi2v"][0]
    (tmp_path / "id.png").write_bytes(read_members(mi, ["ref_00.png"])["ref_00.png"])
    res = upscale(str(tmp_path / "run"), str(tmp_path / "lr.mp4"), "a face", str(tmp_path / "up.mp4"),
                  ref_images=[str(tmp_path / "id.png")], ref_video=str(tmp_path / "ref.mp4"), steps=4, n_ref=2)
    hr = media.stream_info(m["hr.mp4"])
    got = media.stream_info((tmp_path / "up.mp4").read_bytes())
    assert (got["width"], got["height"], got["frames"]) == (hr["width"], hr["height"], hr["frames"])
    assert res["references"] == ["images", "video"] and res["noise_aug"] == 600 and res["ref_guided_steps"] == 2


def test_cli_train_and_upscale(corpora, tiny_models, tmp_path, capsys):
    from datakit import media
    from datakit.cli import main
    from datakit.train.data import build_index, read_members

    base = ["--set", f"base_model={tiny_models / 'wan'}", "--set", f"data.roots=[{corpora['t2v']}]"]
    cfg = str(REPO / "pipelines" / "train_tiny.yaml")
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train", cfg, "--set", "optim.learning_rate=1", *base]) == 2
    assert "unknown field" in capsys.readouterr().err
    assert main(["train", cfg, "--output", str(tmp_path / "run"), "--set", "stages.0.steps=2", "-q", *base]) == 0
    assert "trained to step 2 of 2" in capsys.readouterr().out

    e = build_index([corpora["t2v"]])["t2v"][0]
    (tmp_path / "lr.mp4").write_bytes(read_members(e, ["lr.mp4"])["lr.mp4"])
    up = ["upscale", "--checkpoint", str(tmp_path / "run"), "--prompt", "a street", "--steps", "2", "-q"]
    assert main([*up, "--lr", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "up.mp4")]) == 2
    assert main([*up, "--lr", str(tmp_path / "lr.mp4"), "-o", str(tmp_path / "up.mp4"), "--scale", "2"]) == 0
    lr, got = (media.stream_info((tmp_path / n).read_bytes()) for n in ("lr.mp4", "up.mp4"))
    assert (got["width"], got["height"], got["frames"]) == (2 * lr["width"], 2 * lr["height"], lr["frames"])
    assert "sampler UniPCMultistepScheduler" in capsys.readouterr().out

    # the untrained baseline (the base model's weights), with another sampler; bad samplers refused
    plain = ["upscale", "--lr", str(tmp_path / "lr.mp4"), "--prompt", "a street", "--steps", "2", "-q",
             "--scale", "2", "-o", str(tmp_path / "base.mp4")]
    assert main(plain) == 2 and "--base-model" in capsys.readouterr().err
    assert main([*plain, "--base-model", str(tiny_models / "wan"), "--sampler", "PNDMScheduler"]) == 2
    assert "no flow-matching mode" in capsys.readouterr().err
    assert main([*plain, "--base-model", str(tiny_models / "wan"), "--sampler",
                 "FlowMatchEulerDiscreteScheduler"]) == 0
    said = capsys.readouterr().out
    assert "sampler FlowMatchEulerDiscreteScheduler" in said and f"checkpoint base:{tiny_models / 'wan'}" in said
    assert media.stream_info((tmp_path / "base.mp4").read_bytes())["width"] == 2 * lr["width"]

    # a part of a longer LR: --start/--frames; too many frames at once is one line with the fix
    assert main([*plain, "--base-model", str(tiny_models / "wan"), "--frames", "3", "--start", "0.05"]) == 0
    assert media.stream_info((tmp_path / "base.mp4").read_bytes())["frames"] == 3
    capsys.readouterr()
    long = tmp_path / "long.mp4"
    long.write_bytes(media.encode(np.zeros((81, 16, 16, 3), np.uint8), 16))
    assert main([*plain, "--lr", str(long), "--base-model", str(tiny_models / "wan")]) == 2
    assert "upscales at most 77 at once" in capsys.readouterr().err
