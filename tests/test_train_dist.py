"""Training on two Ray Train workers (gloo, CPU): DDP and FSDP2 agree, sharded checkpoints resume
exactly and load anywhere, and a stop request ends every worker at the same step with a checkpoint.

Each Ray Train start costs seconds, so the checks share two runs: one worker loop that trains
several configs in turn (``dist_runs.py``), and the real ``datakit train`` command once. Both run in
processes of their own, as users run them: never Ray Train in the test process (see ``dist_runs.py``).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

import train_helpers
from conftest import REPO, cli_env

torch.set_num_threads(1)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    return train_helpers.tiny_models(tmp_path_factory)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, sample_dir, tiny_models, ray_session):
    return train_helpers.corpora(tmp_path_factory, sample_dir, tiny_models)


def test_fsdp_step_equals_ddp_and_sharded_checkpoints_resume(corpora, tiny_models, tmp_path):
    from datakit.train import checkpoint as ckpt
    from datakit.train.infer import load_checkpoint_model
    from datakit.train.trainer import Trainer

    def cfg(name, *over):
        return train_helpers.tiny_config(tiny_models, [corpora["t2v"]], tmp_path / name, "distributed.workers=2",
                                         "stages.0.steps=3", "log_every=1", *over)

    runs = [("ddp", cfg("ddp", "checkpoint.resume=never", "checkpoint.every=100")),
            ("fsdp", cfg("fsdp", "distributed.strategy=fsdp", "checkpoint.resume=never", "checkpoint.every=2")),
            ("resumed", cfg("resumed", "distributed.strategy=fsdp", "checkpoint.every=100",
                            f"checkpoint.resume={tmp_path / 'fsdp' / 'checkpoints' / 'step-00000002'}")),
            ("stopped", cfg("stopped", "distributed.strategy=fsdp", "checkpoint.resume=never", "stages.0.steps=5",
                            "checkpoint.every=100", "model.precision=bf16", "model.gradient_checkpointing=true"))]
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped" / "STOP").write_text("")          # stop after the first step
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"runs": [(n, c.model_dump(mode="json")) for n, c in runs],
                               "result": str(tmp_path / "result-{rank}.json")}))
    r = subprocess.run([sys.executable, str(REPO / "tests" / "dist_runs.py"), str(job)], cwd=REPO, env=cli_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = [json.loads((tmp_path / f"result-{r}.json").read_text()) for r in range(2)]

    ddp, fsdp, resumed, stopped = (res[0][n] for n, _ in runs)
    # sharded: each worker holds about half of the parameters; DDP holds them all
    assert ddp["local_numel"] == ddp["numel"]
    assert fsdp["local_numel"] + res[1]["fsdp"]["local_numel"] == fsdp["numel"] and fsdp["local_numel"] < fsdp["numel"]
    # the same steps: the loss over both workers and the clipped gradient norm agree with DDP
    assert fsdp["loss"] == pytest.approx(ddp["loss"], rel=1e-5)
    assert fsdp["grad_norm"] == pytest.approx(ddp["grad_norm"], rel=1e-4)
    # a checkpoint written by 2 workers resumes on 2 workers to the same next step
    assert (resumed["start"], resumed["step"]) == (2, 3)
    assert resumed["loss"] == pytest.approx(fsdp["loss"][2:], rel=1e-6)
    assert resumed["grad_norm"] == pytest.approx(fsdp["grad_norm"][2:], rel=1e-6)
    # a stop request ends both workers after the same step, with a (sharded) checkpoint of it
    # (that run also shards with bf16 autocast and gradient checkpointing on: the GPU settings, on gloo)
    assert stopped["loss"][0] == pytest.approx(fsdp["loss"][0], rel=5e-2)
    assert stopped["interrupted"] and res[1]["stopped"]["interrupted"]
    assert stopped["step"] == 1 == res[1]["stopped"]["step"]

    d2 = tmp_path / "fsdp" / "checkpoints" / "step-00000002"
    names = sorted(p.name for p in d2.iterdir())
    assert names == ["model-00000-of-00002.safetensors", "model-00001-of-00002.safetensors",
                     "optimizer-00000-of-00002.safetensors", "optimizer-00001-of-00002.safetensors", "trainer.json"]
    assert ckpt.read_info(str(d2))["shards"] == {"count": 2, "dim": 0}
    assert (tmp_path / "stopped" / "checkpoints" / "step-00000001" / "trainer.json").is_file()

    # the sharded step-3 weights, gathered into one model, are DDP's step-3 weights: the update from
    # the initial weights agrees to 1 % (AdamW normalises each gradient element, so elements whose
    # gradient is ~0 move by up to lr either way on summation-order noise: compare the whole update)
    _, merged, _ = load_checkpoint_model(str(tmp_path / "fsdp" / "checkpoints" / "step-00000003"), device="cpu")
    _, plain, _ = load_checkpoint_model(str(tmp_path / "ddp" / "checkpoints" / "step-00000003"), device="cpu")
    _, init, _ = load_checkpoint_model(None, device="cpu", base_model=str(tiny_models / "wan"))
    a, b, w0 = merged.state_dict(), plain.state_dict(), init.state_dict()
    assert a.keys() == b.keys() == w0.keys()
    diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5
    update = sum(float(((b[k] - w0[k]) ** 2).sum()) for k in a) ** 0.5
    assert update > 0 and diff < 1e-2 * update, (diff, update)
    # ... and resume on one worker, optimizer state included
    one = Trainer(train_helpers.tiny_config(tiny_models, [corpora["t2v"]], tmp_path / "one", "stages.0.steps=3",
                                            f"checkpoint.resume={d2}"))
    assert one.step == 2 and set(one.opt.state_dict()["state"]) == set(range(len(list(one.model.parameters()))))
    rec = one.fit()
    assert len(rec) == 1 and rec[0]["loss"] > 0


def test_two_worker_fsdp_run_stops_on_request(corpora, tiny_models, tmp_path):
    """The real `datakit train` on Ray Train: FSDP, reports, sharded checkpoints, and a stop request
    (``OUTPUT/STOP``, what its Ctrl-C handler writes) ending both workers with a checkpoint, exit 130."""
    from datakit.train.control import StopRequest

    out = tmp_path / "ray"
    sets = [f"base_model={tiny_models / 'wan'}", f"data.roots=[{corpora['t2v']}]", "stages.0.steps=200",
            "distributed.workers=2", "distributed.strategy=fsdp", "checkpoint.every=2", "log_every=2"]
    cmd = [sys.executable, "-m", "datakit.cli", "train", str(REPO / "pipelines" / "train_tiny.yaml"), "-q",
           "--output", str(out), *(x for s in sets for x in ("--set", s))]
    p = subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 600
    while p.poll() is None and time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            StopRequest(str(out)).request()
            break
        time.sleep(0.2)
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 130, (stdout, stderr[-3000:])
    said = [x for x in stderr.splitlines() if x.startswith("datakit:")]
    assert len(said) == 1 and "written" in said[0], stderr[-3000:]
    end = int(said[0].split("after step ")[1].split(":")[0])
    assert 3 <= end < 200 and f"step-{end:08d}" in said[0]
    info = json.loads((out / "checkpoints" / f"step-{end:08d}" / "trainer.json").read_text())
    assert info["world_size"] == 2 and info["strategy"] == "fsdp" and info["shards"]["count"] == 2
    recs = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(end))
    assert all(r["items_per_s"] > 0 and r["loss"] > 0 for r in recs)
    assert not (out / "STOP").exists()
