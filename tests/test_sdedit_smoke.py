"""pipelines/smoke.yaml end to end under local Ray, on tiny random models; shards verified."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from datakit import media, spec
from datakit.output import reader
from datakit.verify import verify

pytestmark = pytest.mark.slow
pytest.importorskip("diffusers")

TINY_PREFIX = "data/tiny-models/"


def smoke_spec(samples, models, out):
    """smoke.yaml with its input, output and every ``data/tiny-models/...`` path pointed at tmp dirs."""
    tree = yaml.safe_load((REPO / "pipelines" / "smoke.yaml").read_text())

    def repoint(node):
        if isinstance(node, dict):
            return {k: repoint(v) for k, v in node.items()}
        if isinstance(node, list):
            return [repoint(v) for v in node]
        if isinstance(node, str) and node.startswith(TINY_PREFIX):
            return str(models / node[len(TINY_PREFIX):])
        return node

    tree = repoint(tree)
    tree["input"], tree["output"] = [str(samples)], str(out)
    return spec.parse(tree, source="smoke.yaml")


def test_smoke_pipeline_runs_every_stage_on_tiny_models(sample_dir, tmp_path_factory, ray_session):
    """`pipelines/smoke.yaml` as shipped, its tiny models written by `datakit models tiny`: the trainer's
    t2v corpus, made once per test run (train_helpers)."""
    import train_helpers

    models = train_helpers.tiny_models(tmp_path_factory)
    sp = smoke_spec(sample_dir, models, "unused")
    assert {"captioner", "sdedit", "synthetic"} <= set(sp.stage_names())
    names = sp.stage_names()
    assert names.index("sdedit") < names.index("synthetic")
    root = train_helpers.corpora(tmp_path_factory, sample_dir, models, tasks=("t2v",))["t2v"]

    summary = json.loads((Path(root) / "meta" / "summary.json").read_text())
    assert summary["counts"]["samples"] == 3 and summary["counts"]["rejects"] == 0
    rep = verify(root)
    assert rep.ok, rep.problems

    out = reader.open_output(root)
    rows = list(out.sample_rows())
    assert len(rows) == 3
    typed = {r["key"]: r for r in out.manifest_rows(["key", "sdedit", "degradations", "lr"])}
    for r in rows:
        assert r["synthetic_models"] is True
        assert {"captioner", "sdedit"} <= set(r["synthetic_model_backends"])
        assert r["caption_source"] == "model" and r["caption"]
        sd = r["sdedit"]
        assert sd["backend"] == "wan2.1" and sd["steps"] == 50 and 3 <= sd["k"] <= 7
        assert sd["sigma_start"] > 0 and sd["base"]["frames"] == r["num_frames"] == 9
        assert sd["base"]["width"] % 16 == 0 and sd["base"]["height"] % 16 == 0
        assert [d["stage"] for d in r["degradations"]] == ["sdedit", "synthetic"]
        # the manifest's typed columns summarise the same json
        t = typed[r["key"]]
        assert (t["sdedit"]["k"], t["sdedit"]["steps"], t["sdedit"]["seed"]) == (sd["k"], sd["steps"], sd["seed"])
        assert t["sdedit"]["sigma_start"] == sd["sigma_start"] and t["sdedit"]["model_id"] == sd["model_id"]
        assert [(d["stage"], d["profile"], d["seed"]) for d in t["degradations"]] == \
            [(d["stage"], d["profile"], d["seed"]) for d in r["degradations"]]
        assert (t["lr"]["width"], t["lr"]["frames"], t["lr"]["lossless"]) == \
            (r["lr"]["width"], r["lr"]["frames"], r["lr"]["lossless"])
        assert (r["lr"]["width"], r["lr"]["height"]) == (r["hr"]["width"] // 4, r["hr"]["height"] // 4)

    import webdataset as wds

    for s in wds.WebDataset(sorted(str(p) for p in (Path(root) / "shards").glob("smoke-*.tar")), shardshuffle=False):
        doc = json.loads(s["json"])
        assert s["txt"].decode() and doc["synthetic_models"] is True
        assert media.decode(s["lr.mp4"]).shape[0] == doc["num_frames"]


def test_smoke_curate_then_build_per_profile(sample_dir, tmp_path, tmp_path_factory, ray_session):
    """curate → inspect → build on the smoke pipeline: the index holds every scored clip and no media; a
    build with a stricter profile runs the captioner and SDEdit for the clips it keeps only, and a looser
    one into the same output adds the rest."""
    from datakit import curation
    from datakit.report import data as report_data

    import train_helpers

    models = train_helpers.tiny_models(tmp_path_factory)
    idx, out = tmp_path / "idx", tmp_path / "built"
    res = curation.curate(smoke_spec(sample_dir, models, idx), progress=False)
    assert res.indexed == 3 and res.rejects_written == 0
    index = reader.open_output(str(idx))
    assert index.kind == "curate" and index.count_samples() == 0
    rows = {r["key"]: r for r in index.index_rows()}
    assert len(rows) == 3 and all(r["filter"]["profile"] == "smoke" and r["filter"]["passed"] for r in rows.values())
    assert all(r["scores"]["sharpness"] > 0 and r["caption_source"] == "sidecar" for r in rows.values())

    view = report_data.open_index_view(str(idx), "offline")
    kept = {c.key for c, failed in report_data.iter_indexed(view) if not failed}
    assert 0 < len(kept) <= 3

    res = curation.build(smoke_spec(sample_dir, models, out), str(idx), "offline", progress=False)
    assert res.samples_written == len(kept) and res.rejects_written == 0
    built = {r["key"]: r for r in reader.open_output(str(out)).sample_rows()}
    assert set(built) == kept
    for k, r in built.items():
        assert r["filter"]["profile"] == "offline" and r["scores"] == pytest.approx(
            {n: v for n, v in rows[k]["scores"].items() if v is not None})
        assert r["caption_source"] == "model" and r["sdedit"]["backend"] == "wan2.1"
        assert [d["stage"] for d in r["degradations"]] == ["sdedit", "synthetic"]

    # the smoke profile (the spec's own) keeps every clip: building it into the same output adds the rest
    res = curation.build(smoke_spec(sample_dir, models, out), str(idx), progress=False)
    assert res.samples_written == 3 - len(kept)
    assert {r["key"] for r in reader.open_output(str(out)).manifest_rows(["key"])} == set(rows)
    rep = verify(str(out))
    assert rep.ok, rep.problems
