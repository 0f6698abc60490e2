"""The score and filter stages, filter profiles, and re-filtering a finished output without scoring."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from datakit import media, runner, spec
from datakit.output import reader, resume, writer
from datakit.records import Record, clip_id
from datakit.samples import sample_paths
from datakit.scoring import METRICS, profiles
from datakit.scoring.weights import MissingWeights
from datakit.stages.filter import Filter, FilterConfig
from datakit.stages.score import Score, ScoreConfig

CLIPS = {p.name: p for p in sample_paths()}


def clip_record(name: str, start: float = 1.0, frames: int = 17, height: int = 128) -> Record:
    """A record as `extract` leaves it: meta and an encoded hr.mp4 of a real clip."""
    info = media.probe(str(CLIPS[name]))
    w = round(info.width * height / info.height / 16) * 16
    px = media.read_span(str(CLIPS[name]), start, frames, 24.0, size=(w, height))
    uri = str(CLIPS[name])
    key = clip_id(uri, int(start * 24), int(start * 24) + frames)
    meta = {"source_uri": uri, "source_id": "s-" + name.split(".")[0], "source_clips": 1,
            "start_frame": int(start * 24), "end_frame": int(start * 24) + frames, "fps": 24.0,
            "num_frames": frames, "caption": "a clip"}
    return Record(key, meta, {"hr.mp4": media.encode(px, 24.0, crf=18, preset="veryfast")})


def test_shipped_profiles_are_consistent():
    for name in ("offline", "paper"):
        p = profiles.load(name)
        made = {k for m in p.score.metrics for k in METRICS[m].scores}
        assert p.name == name and {r.metric for r in p.rules} <= made
    assert all(not METRICS[m].needs_weights for m in profiles.load("offline").score.metrics)


def test_profile_errors_name_file_and_field(tmp_path):
    with pytest.raises(profiles.ProfileError, match="nonexistent.*filters/nonexistent.yaml"):
        profiles.load("nonexistent")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nscore: {metrics: [sharpness]}\nrules:\n  - {name: x, metric: sharpnes, min: 1}\n"
                   "  - {name: y, metric: sharpness}\n")
    with pytest.raises(profiles.ProfileError) as e:
        profiles.load(str(bad))
    msg = str(e.value)
    assert str(bad) in msg and "rules.0.metric" in msg and "unknown score 'sharpnes'" in msg
    assert "rules.1" in msg and "min, max or both" in msg
    unscored = tmp_path / "unscored.yaml"
    unscored.write_text("name: u\nscore: {metrics: [sharpness]}\nrules: [{name: q, metric: musiq, min: 50}]\n")
    with pytest.raises(profiles.ProfileError, match="does not compute"):
        profiles.load(str(unscored))


def test_score_stage_keeps_every_weight_free_score():
    stage = Score(ScoreConfig(profile="offline"))
    assert stage.config.metrics == profiles.load("offline").score.metrics and Score.preflight(stage.config) == []
    stage.setup()
    recs = [clip_record("bikes.mp4"), clip_record("carphone_pristine.mp4"), Record("nomedia", {"fps": 24.0})]
    out = stage.process_batch(recs)
    want = {k for m in stage.config.metrics for k in METRICS[m].scores}
    for r in out[:2]:
        assert r.ok and set(r.meta["scores"]) == want
        assert all(isinstance(v, float) and np.isfinite(v) for v in r.meta["scores"].values())
        assert r.meta["scoring"]["metrics"] == stage.config.metrics and r.meta["scoring"]["frames"] == 4
    assert out[2].reject.reason == "no_media"


def test_model_metrics_fail_before_work_when_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = ScoreConfig(metrics=["dover", "musiq", "sharpness"])
    problems = Score.preflight(cfg)
    assert len(problems) == 2
    assert "DOVER.pth" in problems[0] and str(tmp_path / "models" / "dover") in problems[0]
    assert "musiq_koniq_ckpt-e95806b9.pth" in problems[1]
    with pytest.raises(MissingWeights, match="DOVER.pth"):
        Score(cfg).setup()


def test_score_stage_with_dover_mobile(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from datakit.scoring import dover

    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path))
    (tmp_path / "dover").mkdir()
    torch.manual_seed(0)
    torch.save(dover.build("dover_mobile").state_dict(), tmp_path / "dover" / "DOVER-Mobile.pth")
    cfg = ScoreConfig(metrics=["dover", "black"], dover_variant="dover_mobile", device="cpu")
    assert Score.preflight(cfg) == []
    stage = Score(cfg)
    stage.setup()
    (r,) = stage.process_batch([clip_record("bikes.mp4")])
    assert set(r.meta["scores"]) == {"dover", "dover_technical", "dover_aesthetic", "black_frames"}
    assert all(0 < r.meta["scores"][k] < 1 for k in ("dover", "dover_technical", "dover_aesthetic"))
    assert r.meta["scoring"]["models"] == {"dover": "dover_mobile: DOVER-Mobile.pth"}


def _scored(key: str, **scores) -> Record:
    return Record(key, {"scores": scores})


def test_filter_rejects_with_the_failing_rule_name():
    cfg = FilterConfig(profile="offline")
    assert cfg.profile_name == "offline" and len(cfg.rules) == len(profiles.load("offline").rules)
    good = dict(sharpness=500.0, brightness=0.4, dark_fraction=0.0, bright_fraction=0.0, black_frames=0.0,
                frozen_frames=0.0, motion=1.0, motion_peak=2.0, piqe=40.0, niqe=5.0)
    recs = [_scored("ok", **good), _scored("soft", **{**good, "sharpness": 12.0, "niqe": 12.0}),
            _scored("no_niqe", **{k: v for k, v in good.items() if k != "niqe"}),
            _scored("no_sharpness", **{k: v for k, v in good.items() if k != "sharpness"}),
            _scored("frozen", **{**good, "frozen_frames": 1.0, "motion": 0.0, "motion_peak": 0.0})]
    out = {r.key: r for r in Filter(cfg).process_batch(recs)}
    assert out["ok"].ok and out["ok"].meta["filter"] == {"profile": "offline", "passed": True, "failed": []}
    soft = out["soft"].reject
    assert (soft.stage, soft.reason) == ("filter", "low_detail")
    assert "sharpness 12 < min 90" in soft.detail and "unnatural" in soft.detail and "offline" in soft.detail
    assert out["soft"].meta["filter"]["failed"] == ["low_detail", "unnatural"]
    assert out["soft"].meta["scores"]["sharpness"] == 12.0            # a reject keeps its scores
    assert out["no_niqe"].ok                                          # that rule says missing: pass
    assert out["no_sharpness"].reject.reason == "low_detail" and "missing" in out["no_sharpness"].reject.detail
    assert out["frozen"].reject.reason == "frozen" and out["frozen"].meta["filter"]["failed"] == ["frozen", "static"]
    tagged = Filter(FilterConfig(profile="offline", action="tag")).process_batch([_scored("soft", sharpness=1.0)])
    assert tagged[0].ok and tagged[0].meta["filter"]["passed"] is False


def _tree(out, *stages):
    base = [{"stage": "probe"}, {"stage": "split"}, {"stage": "extract"}]
    return {"name": "t", "input": "x", "output": str(out), "stages": base + list(stages), "shard": {"max_samples": 2}}


def test_thresholds_are_part_of_the_config(tmp_path):
    stricter = tmp_path / "strict.yaml"
    stricter.write_text((REPO / "filters" / "offline.yaml").read_text().replace("min: 90", "min: 300"))
    a = spec.parse(_tree(tmp_path, {"stage": "score", "profile": "offline"}, {"stage": "filter", "profile": "offline"}))
    b = spec.parse(_tree(tmp_path, {"stage": "score", "profile": "offline"}, {"stage": "filter", "profile": str(stricter)}))
    assert a.config_hash() != b.config_hash()
    rule = {r["name"]: r for r in b.model_dump()["stages"][-1]["rules"]}["low_detail"]
    assert rule["min"] == 300
    with pytest.raises(spec.SpecError, match="must come after score"):
        spec.parse(_tree(tmp_path, {"stage": "filter"}))
    with pytest.raises(spec.SpecError, match="unknown metric"):
        spec.parse(_tree(tmp_path, {"stage": "score", "metrics": ["sharpness", "vmaf"]}))


def test_a_build_plan_changes_the_selection_without_scoring(tmp_path, monkeypatch):
    """The clip index a run writes keeps every scored clip (the filter's reject too); a build's
    plan applies another profile to those stored scores and loads no scorer."""
    import datakit.scoring
    from datakit import curation
    from datakit.output.reader import open_output

    out = tmp_path / "out"
    sp = spec.parse(_tree(out, {"stage": "score", "profile": "offline"}, {"stage": "filter", "profile": "offline"}))
    settings = runner.output_settings(sp)
    assert settings.index
    resume.open_for_run(settings, sp.model_dump(mode="json"), {"kind": "run", "index": curation.index_doc(sp)})
    records = []
    rng = np.random.default_rng(0)
    good = dict(brightness=0.4, dark_fraction=0.0, bright_fraction=0.0, black_frames=0.0, frozen_frames=0.0,
                motion=1.0, piqe=40.0, niqe=5.0)
    for i in range(6):
        meta = {"source_uri": f"v{i}.mp4", "source_id": f"s{i}", "source_clips": 1, "start_frame": 0, "end_frame": 9,
                "scores": {**good, "sharpness": float(50 + 100 * i + rng.random())}}
        records.append(Record(f"k{i}", meta, {"hr.mp4": b"x"}))
    rejected = Record("k9", {"source_uri": "v9.mp4", "source_id": "s9", "source_clips": 1,
                             "scores": {**good, "sharpness": 250.0}})
    records.append(rejected.rejected("filter", "low_detail", "test"))
    writer.write_batch(records, settings)

    def no_scoring(*a, **k):
        raise AssertionError("a build must not score")

    monkeypatch.setattr(datakit.scoring.ClipScorer, "__post_init__", no_scoring)
    idx = open_output(str(out))
    rows = {r["key"]: r for r in idx.index_rows()}
    assert set(rows) == {f"k{i}" for i in range(6)} | {"k9"} and rows["k9"]["reason"] == "low_detail"
    strict = tmp_path / "strict.yaml"
    strict.write_text((REPO / "filters" / "offline.yaml").read_text()
                      .replace("name: offline", "name: strict").replace("min: 90", "min: 300"))

    def planned(prof):
        dest = tmp_path / f"build-{prof}"
        sp_b, filt = curation.with_profile(sp.model_copy(update={"output": str(dest)}), prof)
        s_b = runner.output_settings(sp_b)
        state = resume.open_for_run(s_b, sp_b.model_dump(mode="json"))
        plan = curation.Planner(idx, filt, s_b.root)(state, str(tmp_path / f"plan-{prof}"))
        recs = [r for f in plan.files for r in curation.read_clip_plan(f)]
        assert all(r.meta["filter"]["passed"] and r.meta["scores"] == {k: v for k, v in rows[r.key]["scores"].items() if v is not None}
                   for r in recs)
        return sorted(r.key for r in recs)

    assert planned("offline") == ["k1", "k2", "k3", "k4", "k5", "k9"]       # the stored filter reject comes back
    assert planned(str(strict)) == ["k3", "k4", "k5"]


@pytest.mark.slow
def test_score_and_filter_under_ray(sample_dir, tmp_path, ray_session):
    """The stages run in the real runner: scores reach the manifests, filter rejects reach the
    rejects table with their rule as the reason and their scores kept."""
    tree = {"name": "scoretest", "input": str(sample_dir), "output": str(tmp_path / "out"),
            "stages": [{"stage": "probe"}, {"stage": "split", "fps": 24, "frames": 9, "max_clips_per_source": 1},
                       {"stage": "extract", "height": 96, "preset": "veryfast"},
                       {"stage": "score", "metrics": ["sharpness", "exposure", "frozen"], "concurrency": 1},
                       {"stage": "filter", "profile": "test",
                        "rules": [{"name": "too_bright_for_test", "metric": "brightness", "max": 0.42}]}],
            "shard": {"max_samples": 4}}
    res = runner.run(spec.parse(tree), progress=False)
    rows = list(reader.open_output(res.output).sample_rows())
    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    assert len(rows) + len(rejects) == 3 and rows and rejects
    for r in rows:
        assert r["scores"]["brightness"] <= 0.42 and {"sharpness", "frozen_frames"} <= set(r["scores"])
        assert r["filter"]["passed"] is True
    for r in rejects:
        assert (r["stage"], r["reason"]) == ("filter", "too_bright_for_test")
        assert json.loads(r["json"])["scores"]["brightness"] > 0.42
        assert r["scores"]["brightness"] == json.loads(r["json"])["scores"]["brightness"]   # typed, kept
    assert res.summary["rejects_by_reason"] == {"too_bright_for_test": len(rejects)}
    assert "scores.sharpness" in res.summary["quantiles"]
