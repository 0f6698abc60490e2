"""The latent cache: written once (in this process or by Ray actors), read by the trainer, and a step
from cached latents equals the step from pixels."""
from __future__ import annotations

import json

import pytest
import torch

import train_helpers
from conftest import REPO

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    return train_helpers.tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, sample_dir, tiny_models, ray_session):
    return train_helpers.corpora(tmp_path_factory, sample_dir, tiny_models)


OVER = ["data.crop=null", "stages.0.frames=5", "stages.0.tasks={t2v: 0.4, mi2v: 0.3, edit: 0.3}",
        "checkpoint.resume=never", "objective.null_prompt_prob=0.3"]


def _update_gap(a: dict, b: dict, w0: dict) -> float:
    """|a − b| / |b − w0| over all parameters: how far two optimizer steps from ``w0`` disagree."""
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    return diff / sum(float(((b[k] - w0[k]) ** 2).sum()) for k in a) ** 0.5


def test_step_from_cached_latents_equals_step_from_pixels(corpora, tiny_models, tmp_path, tmp_path_factory):
    import shutil

    from datakit.train import trainer
    from datakit.train.cache import build_cache, cache_dir, spec_for
    from datakit.train.data import DataError, Sampler, load_item

    # the cache lives beside the shards: work on a copy of the shared corpora
    roots = []
    for task in ("t2v", "mi2v", "edit"):
        dst = tmp_path / "corpora" / task
        shutil.copytree(corpora[task], dst, ignore=shutil.ignore_patterns("latents"))
        roots.append(str(dst))
    cfg_pix = train_helpers.tiny_config(tiny_models, roots, tmp_path / "pix", *OVER, "data.latent_cache.dtype=float32")
    cfg_lat = train_helpers.tiny_config(tiny_models, roots, tmp_path / "lat", *OVER, "data.latent_cache.dtype=float32",
                                        "data.latent_cache.use=true")
    with pytest.raises(DataError, match="cache-latents"):
        trainer.Trainer(cfg_lat)

    res = build_cache(cfg_pix)
    n = sum(len(v) for v in trainer.build_index(roots).values())
    assert res["samples"] == n and res["shards_written"] == res["shards_total"] >= 3
    again = build_cache(cfg_pix)
    assert again["shards_written"] == 0 and again["cache_id"] == res["cache_id"]
    d = cache_dir(roots[0], spec_for(cfg_pix, "cpu"))
    doc = json.loads(open(f"{d}/cache.json").read())
    assert doc["samples"] >= 1 and doc["spec"]["frames"] == [5] and doc["spec"]["dtype"] == "float32"

    tp, tl = trainer.Trainer(cfg_pix), trainer.Trainer(cfg_lat)
    w0 = {k: v.clone() for k, v in tp.model.state_dict().items()}
    s = Sampler(cfg_pix, tp.index)
    plans, seen = [], set()
    for i in range(200):
        p = s.plan(i)
        key = (p.task, p.drop_text)
        if key not in seen:
            seen.add(key)
            plans.append(p)
    assert {p.task for p in plans} == {"t2v", "mi2v", "edit"} and {p.drop_text for p in plans} == {True, False}
    for p in plans:
        lat = tl.load_item(p)
        assert "hr" not in lat and lat["hr_latent"].dim() == 4
        pix = load_item(p, cfg_pix, start=lat["frame_start"], origin=lat["crop"][:2])
        assert pix["crop"] == lat["crop"]
        ep, el = tp.encode(pix), tl.encode(lat)
        for a, b in ((el.hr, ep.hr), (el.lr, ep.lr), (el.text, ep.text)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert [k for k, _ in el.refs] == [k for k, _ in ep.refs]     # references, still from pixels per step
        for (_, a), (_, b) in zip(el.refs, ep.refs):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    # one optimizer step each, same item, same draws: the same loss and the same update
    p = next(p for p in plans if p.task == "edit")
    lat = tl.load_item(p)
    pix = load_item(p, cfg_pix, start=lat["frame_start"], origin=lat["crop"][:2])
    rp, rl = tp.train_step([pix]), tl.train_step([lat])
    assert rl["loss"] == pytest.approx(rp["loss"], rel=1e-5)
    assert _update_gap(tl.model.state_dict(), tp.model.state_dict(), w0) < 1e-3

    # training runs from the cache through the loader (one loader process)
    tl.loader_workers = 1
    hist = tl.fit(until=3)
    assert [r["step"] for r in hist] == [1, 2] and all(r["loss"] > 0 for r in hist)


def test_bf16_cache_written_by_ray_actors_and_the_verb(corpora, tiny_models, tmp_path, capsys):
    import shutil

    from datakit.cli import main
    from datakit.train import trainer
    from datakit.train.cache import build_cache
    from datakit.train.data import Sampler, load_item

    root = tmp_path / "t2v"
    shutil.copytree(corpora["t2v"], root, ignore=shutil.ignore_patterns("latents"))
    cfg_pix = train_helpers.tiny_config(tiny_models, [str(root)], tmp_path / "pix", *OVER, "stages.0.tasks={t2v: 1.0}")
    res = build_cache(cfg_pix, workers=1)                  # a Ray Data actor pool of one
    assert res["shards_written"] == res["shards_total"] >= 1
    cfg_lat = train_helpers.tiny_config(tiny_models, [str(root)], tmp_path / "lat", *OVER, "stages.0.tasks={t2v: 1.0}",
                                        "data.latent_cache.use=true")
    tp, tl = trainer.Trainer(cfg_pix), trainer.Trainer(cfg_lat)
    p = next(p for p in map(Sampler(cfg_pix, tp.index).plan, range(50)) if not p.drop_text)
    lat = tl.load_item(p)
    pix = load_item(p, cfg_pix, start=lat["frame_start"], origin=lat["crop"][:2])
    assert float(tl.loss_of(tl.encode(lat))) == pytest.approx(float(tp.loss_of(tp.encode(pix))), rel=1e-2)

    cfg = str(REPO / "pipelines" / "train_tiny.yaml")
    base = ["--set", f"base_model={tiny_models / 'wan'}", "--set", f"data.roots=[{root}]", "--set", "data.crop=null"]
    assert main(["cache-latents", cfg, "-q", *base, "--set", "data.latent_cache.dtype=float32"]) == 0
    out = capsys.readouterr().out
    assert "shard(s) written" in out and "data.latent_cache.use=true" in out
    assert main(["cache-latents", cfg, "-q", *base, "--set", "data.crop=[64, 64]",
                 "--set", "data.latent_cache.use=true"]) == 2
    assert "crop: null" in capsys.readouterr().err
