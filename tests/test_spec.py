import pytest

from datakit import spec

BASE = {
    "name": "t", "input": "x", "output": "y",
    "stages": [{"stage": "probe"}, {"stage": "split", "frames": 21}, {"stage": "extract"},
               {"stage": "synthetic"}],
}


def _tree():
    import copy
    return copy.deepcopy(BASE)


def test_all_shipped_pipelines_load():
    from conftest import REPO
    paths = [p for p in sorted((REPO / "pipelines").glob("*.yaml")) if not p.name.startswith("train_")]
    assert {"demo.yaml", "t2v.yaml", "mi2v.yaml", "edit.yaml", "smoke.yaml"} <= {p.name for p in paths}
    for path in paths:                      # train_*.yaml are trainer configs, not corpus jobs
        s = spec.load(path)
        assert s.stages[0].stage == "probe", path


def test_errors_name_the_field_and_the_allowed_values():
    t = _tree()
    t["stages"][1]["frames"] = 20
    with pytest.raises(spec.SpecError, match=r"stages\[1\]\.split\.frames: .*4k\+1"):
        spec.parse(t)
    t = _tree()
    t["stages"].append({"stage": "sharpen"})
    with pytest.raises(spec.SpecError, match=r"unknown stage 'sharpen'; allowed: probe, caption, split"):
        spec.parse(t)
    t = _tree()
    t["task"] = "i2v"
    with pytest.raises(spec.SpecError, match=r"task: .*'t2v', 'mi2v' or 'edit'"):
        spec.parse(t)
    t = _tree()
    t["stages"][2]["hieght"] = 5
    with pytest.raises(spec.SpecError, match=r"stages\[2\]\.extract\.hieght: unknown field"):
        spec.parse(t)
    t = _tree()
    t["shard"] = {"prefix": "a.b"}
    with pytest.raises(spec.SpecError, match="shard.prefix"):
        spec.parse(t)


def test_stage_order_is_checked():
    t = _tree()
    t["stages"] = [{"stage": "probe"}, {"stage": "extract"}, {"stage": "split"}]
    with pytest.raises(spec.SpecError, match="'extract' must come after split"):
        spec.parse(t)
    t = _tree()
    t["stages"].append({"stage": "probe"})
    with pytest.raises(spec.SpecError, match="appears twice"):
        spec.parse(t)


def test_overrides_address_stages_by_name_and_paths():
    s = spec.parse(_tree(), ["split.frames=17", "shard.max_samples=3", "input=[a, b]", "extract.crf=20"])
    assert s.stages[1].frames == 17 and s.shard.max_samples == 3 and s.input == ["a", "b"]
    assert s.stages[2].crf == 20
    with pytest.raises(spec.SpecError, match="no 'caption' stage"):
        spec.parse(_tree(), ["caption.required=true"])
    with pytest.raises(spec.SpecError, match="expected key=value"):
        spec.parse(_tree(), ["split.frames"])


def test_config_hash_ignores_resources_and_paths():
    a = spec.parse(_tree())
    b = spec.parse(_tree(), ["split.num_cpus=2", "output=z", "input=q", "extract.batch_size=4", "shard.max_samples=1"])
    c = spec.parse(_tree(), ["split.frames=17"])
    assert a.config_hash() == b.config_hash() != c.config_hash()


def test_actor_pools_that_starve_the_task_stages_are_refused():
    from datakit.runner import check_resources

    t = _tree()
    t["stages"].insert(3, {"stage": "score", "metrics": ["sharpness"], "concurrency": 2})
    s = spec.parse(t)
    problems = check_resources(s, cpus=2, gpus=0)
    assert len(problems) == 1 and "score: 2 x 1.0 CPU" in problems[0] and "lower `concurrency`" in problems[0]
    assert check_resources(spec.parse(t, ["score.concurrency=1"]), cpus=2, gpus=0) == []
    assert "GPUs" in check_resources(spec.parse(t, ["score.concurrency=1", "score.num_gpus=1"]), 2, 0)[0]


def test_sdedit_must_precede_synthetic_when_both_are_present():
    t = _tree()
    t["stages"].append({"stage": "sdedit", "model": "m"})
    with pytest.raises(spec.SpecError, match="'synthetic' must come after sdedit"):
        spec.parse(t)
    t = _tree()
    t["stages"].insert(3, {"stage": "sdedit", "model": "m"})
    assert spec.parse(t).stage_names()[3:] == ["sdedit", "synthetic"]
