"""The `datakit` command as users run it: help, bad input, broken videos, a killed run."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FAST, REPO, cli_env, kill_then_resume
from datakit.console import NATIVE_LINE
from outputs import docs, rejects

DATAKIT = [sys.executable, "-m", "datakit.cli"]


def datakit(*args, timeout=300, **env):
    """``datakit ARGS``; ``env``: extra environment variables."""
    return subprocess.run([*DATAKIT, *args], capture_output=True, text=True, timeout=timeout, env=cli_env(**env),
                          cwd=REPO)


def fast(*args, **env):
    """``datakit run pipelines/demo.yaml ARGS`` with the test overrides."""
    return datakit("run", "pipelines/demo.yaml", *args, *[a for o in FAST for a in ("--set", o)], **env)


def test_every_verb_has_help():
    import argparse

    from datakit import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    verbs = sorted(sub.choices)
    top = datakit("--help").stdout
    assert {"run", "train", "upscale", "cache-latents", "curate", "build", "reproduce"} <= set(verbs)
    for verb in verbs:
        assert verb in top
        r = datakit(verb, "--help")
        assert r.returncode == 0 and "usage: datakit " + verb in r.stdout


def test_bad_invocations_fail_with_one_line(tmp_path):
    r = datakit("run", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and r.stderr.strip().startswith("datakit: error: pipeline spec")
    r = datakit("run", "pipelines/demo.yaml", "--set", "split.frames=20", "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "split.frames: Value error, must be 4k+1" in r.stderr
    r = datakit("run", "pipelines/demo.yaml", "--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "o"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = datakit("stats", str(tmp_path / "nothing"))
    assert r.returncode == 2
    (tmp_path / "a_file").write_text("x")
    r = datakit("run", "pipelines/demo.yaml", "--output", str(tmp_path / "a_file"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "a_file is a file" in r.stderr, r.stderr


def _keys(out):
    return [r["key"] for r in docs(out)]


def _spans(out):
    return sorted((os.path.basename(r["source_uri"]), r["start_frame"], r["end_frame"]) for r in docs(out))


def _made(out):
    """Every clip the job made: its samples and the clips the quality filter turned down."""
    return docs(out) + [x["meta"] for x in rejects(out) if x["stage"] == "filter"]


def _clips(out):
    return sorted((os.path.basename(r["source_uri"]), r["start_frame"], r["end_frame"]) for r in _made(out))


@pytest.mark.slow
def test_broken_and_odd_inputs_become_rejects_or_samples_and_good_clips_all_arrive(sample_dir, tmp_path,
                                                                                   demo_fast_run):
    """One job over broken files, odd but valid files and two of the real clips: each broken file is
    one reject with its reason, each odd file is processed (or in part, with the reason for the rest),
    and every clip of the real ones arrives. The quality filter only tags here: the odd files are
    synthetic test patterns, not footage."""
    from badinputs import make_odd_corpus

    inp = tmp_path / "in"
    corpus = make_odd_corpus(inp)
    good_names = ("bikes.mp4", "carphone_pristine.mp4")
    for name in good_names:
        shutil.copy(sample_dir / name, inp / name)
    out = tmp_path / "out"
    r = fast("--input", str(inp), "--output", str(out), "-q", "--set", "shard.max_samples=3",
             "--set", "filter.action=tag")
    assert r.returncode == 0, r.stderr[-2000:]
    # stderr is a pipe here, as in a log file: Ray's native log lines stay in Ray's logs all the same
    assert not [line for line in r.stderr.splitlines() if NATIVE_LINE.match(line.encode())], r.stderr[-2000:]
    rej_all = [x for x in rejects(out) if x["stage"] != "filter"]
    assert all(x["detail"] for x in rej_all)
    made = _made(out)
    for name, (path, expected) in corpus.items():
        rej = [x for x in rej_all if x["source_uri"] == str(path)]
        got = [x for x in made if x["source_uri"] == str(path)]
        if expected is None:
            assert got and not rej, (name, rej)
        elif expected == "partial":
            assert got or rej, name
            assert all(x["reason"] == "decode_error" for x in rej), (name, rej)
        else:
            assert not got and [x["reason"] for x in rej] == [expected], (name, rej)
    one_frame = next(x for x in rej_all if x["source_uri"].endswith("one_frame.mp4"))
    assert one_frame["stage"] == "split"
    rotated = [x for x in made if x["source_uri"].endswith("rotated.mp4")]
    assert rotated[0]["source"]["rotation"] == 270 and rotated[0]["hr"]["height"] > rotated[0]["hr"]["width"]
    # every clip of the real videos is there: the same spans a run on the samples makes of them
    good = [s for s in _clips(demo_fast_run) if s[0] in good_names]
    assert [s for s in _clips(out) if s[0] in good_names] == good and {s[0] for s in good} == set(good_names)
    assert not [x for x in rej_all if os.path.basename(x["source_uri"]) in good_names]
    v = datakit("verify", str(out), "-q")
    assert v.returncode == 0 and v.stdout.startswith("OK")
    s = datakit("stats", str(out))
    assert "unreadable" in s.stdout and "no_video_stream" in s.stdout


def _run_cmd(inp, out, *extra):
    return [*DATAKIT, "run", "pipelines/demo.yaml", "--input", str(inp), "--output", str(out), "-q",
            "--set", "shard.max_samples=1", *extra, *[a for o in FAST for a in ("--set", o)]]


@pytest.mark.slow
def test_kills_of_the_driver_and_inside_a_writer_resume_to_the_clean_key_set(sample_dir, tmp_path, demo_fast_run):
    clean = demo_fast_run
    want = sorted(_keys(clean))
    assert want and len(rejects(clean)) >= 1          # the filter turns a clip down: rejects get written too

    # the driver (and the local Ray it started) killed once the first batch is committed; the rerun
    # resumes, with a worker killed inside the writer at each point of a commit
    out = tmp_path / "out"
    partial = kill_then_resume(_run_cmd(sample_dir, out), out, ("after_tar", "after_rejects", "before_manifest"),
                               tmp_path, _keys)
    got = _keys(out)
    assert len(got) == len(set(got)) and set(partial) <= set(got) and sorted(got) == want
    assert sorted(x["key"] for x in rejects(out)) == sorted(x["key"] for x in rejects(clean))
    r = subprocess.run(_run_cmd(sample_dir, out), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0 and "wrote 0 samples" in r.stdout, r.stdout + r.stderr[-2000:]
    assert sorted(_keys(out)) == want
    assert datakit("verify", str(out), "-q").returncode == 0


def test_a_rerun_stops_a_killed_runs_leftovers_before_it_reads_the_output(sample_dir, tmp_path, demo_fast_run):
    """A killed driver's Ray workers can outlive it and still commit a batch: the rerun stops them (and
    says so) before it reads what the output holds, so nothing they commit is processed twice. Here the
    output is finished, so the rerun starts no Ray at all, and still cleans up."""
    out = tmp_path / "out"
    shutil.copytree(demo_fast_run, out)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    session = tmp_path / "rt" / "ray" / "session_2026-01-01_00-00-00_000000_1"     # a killed driver's Ray
    session.mkdir(parents=True)
    (session / "datakit-driver.json").write_text(json.dumps({"pid": gone.pid, "create_time": 0.0}))
    leftover = subprocess.Popen(["sleep", "300"], cwd=session)                    # one of its processes
    try:
        r = fast("--input", str(sample_dir), "--output", str(out), "-v", RAY_TMPDIR=str(tmp_path / "rt"))
        assert r.returncode == 0 and "wrote 0 samples" in r.stdout, r.stdout + r.stderr[-3000:]
        assert leftover.wait(timeout=10) == -9
    finally:
        leftover.kill()
    assert not session.exists()
    lines = r.stderr.splitlines()
    cleaned = [i for i, x in enumerate(lines) if f"cleaned up after an earlier datakit run that was killed (pid {gone.pid})" in x]
    listed = [i for i, x in enumerate(lines) if "already complete" in x]
    assert len(cleaned) == 1 and listed and cleaned[0] < listed[0], r.stderr[-3000:]
    assert sorted(_keys(out)) == sorted(_keys(demo_fast_run))


@pytest.mark.slow
def test_a_source_that_keeps_killing_its_worker_rejects_only_itself(sample_dir, tmp_path):
    """carphone crashes its worker in split (a source-level stage), bigbuckbunny in extract (each of its
    clips): each becomes one `task_failed` reject, every clip of bikes arrives."""
    out = tmp_path / "out"
    r = fast("--input", str(sample_dir), "--output", str(out), "-q", "--set", "ray.max_retries=1",
             "--set", "filter.action=tag", "--set", "split.max_clips_per_source=2", timeout=400,
             DATAKIT_FAULT_INJECT="split:carphone,extract:bigbuckbunny")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted((os.path.basename(x["source_uri"]), x["reason"], x["key"] == x["source_id"])
                  for x in rejects(out)) == [("bigbuckbunny.mp4", "task_failed", True),
                                             ("carphone_pristine.mp4", "task_failed", True)]
    assert {s[0] for s in _spans(out)} == {"bikes.mp4"} and len(_spans(out)) == 2
    assert datakit("verify", str(out), "-q").returncode == 0


def test_missing_weights_stop_the_job_before_it_starts(sample_dir, tmp_path):
    r = datakit("run", "pipelines/demo.yaml", "--input", str(sample_dir), "--output", str(tmp_path / "out"),
                "--set", "score.metrics=[musiq]", timeout=120,
                TORCH_HOME=str(tmp_path / "empty_torch_home"), DATAKIT_MODELS=str(tmp_path / "none"))
    assert r.returncode == 2, r.stderr[-1500:]
    assert "the pipeline cannot start" in r.stderr and "musiq" in r.stderr
    assert not list((tmp_path / "out").rglob("*.tar"))


def test_models_reports_what_a_pipeline_needs(tmp_path):
    run = lambda *a: datakit("models", *a, timeout=120,  # noqa: E731
                             TORCH_HOME=str(tmp_path / "th"), DATAKIT_MODELS=str(tmp_path / "dm"))
    r = run("--pipeline", "pipelines/mi2v.yaml")
    assert r.returncode == 1 and "Mask2Former checkpoint" in r.stdout and "MISSING" in r.stdout
    r = run("--pipeline", "pipelines/demo_mi2v.yaml")
    assert r.returncode == 0 and "opencv (no weights)" in r.stdout
    r = run("--json")
    assert r.returncode == 0 and any(row["metric"] == "musiq" and not row["found"] for row in json.loads(r.stdout))
