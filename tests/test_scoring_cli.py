"""`datakit score`, `datakit models` and the retired `datakit refilter` as users run them (in-process)."""
from __future__ import annotations

import json

import pytest


from datakit import cli
from datakit.samples import sample_paths
from datakit.scoring import weights

CAR = str([p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0])


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_score_prints_scores_and_the_profile_verdict(capsys):
    code, out, err = run(capsys, "score", CAR, "--num-frames", "17", "--profile", "offline")
    assert code == 0 and "scoring 17 frames (176x144" in err
    assert "score: 100%" in err and "7/7" in err                        # one progress step per metric
    assert "sharpness" in out and "niqe" in out and out.strip().splitlines()[-1].startswith("profile offline: ")
    code, out, _ = run(capsys, "score", CAR, "--num-frames", "9", "--metrics", "sharpness,frozen", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["frames"] == 9 and set(doc["scores"]) == {"sharpness", "frozen_frames"}


@pytest.mark.parametrize("argv, msg", [
    (["--metrics", "vmaf"], "unknown metric(s) vmaf"),
    (["--metrics", "dover"], "DOVER.pth not found; looked in"),
    (["--profile", "nope"], "filter profile 'nope' not found"),
    (["--num-frames", "0"], "--num-frames"),
])
def test_score_bad_input_fails_with_one_line(capsys, tmp_path, monkeypatch, argv, msg):
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    code, out, err = run(capsys, "score", CAR, *argv)
    assert code == 2 and err.startswith("datakit: error: ") and msg in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "score", str(tmp_path / "missing.mp4"))
    assert code == 2 and "missing.mp4" in err


def test_models_reports_where_weights_are_looked_for(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "models" / "dover").mkdir(parents=True)
    (tmp_path / "models" / "dover" / "DOVER-Mobile.pth").write_bytes(b"x")
    code, out, _ = run(capsys, "models", "--json")
    rows = {r["metric"]: r for r in json.loads(out)}
    assert code == 0 and rows["dover (dover_mobile)"]["found"] == str(tmp_path / "models" / "dover" / "DOVER-Mobile.pth")
    assert rows["dover (dover)"]["found"] is None and rows["niqe"]["found"]
    assert rows["musiq"]["looked_in"] == [str(tmp_path / "torch" / "hub" / "pyiqa" / weights.MUSIQ_FILE)]
    code, out, _ = run(capsys, "models")
    assert code == 0 and "MISSING, looked in" in out and "found " + str(tmp_path / "models") in out


def test_models_says_where_to_get_every_backend(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DATAKIT_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    code, out, _ = run(capsys, "models", "--json")
    rows = json.loads(out)
    backends = {r["backend"] for r in rows}
    assert {"pyiqa", "DOVER", "Q-Align", "Mask2Former", "Wan 2.1 (SDEdit)", "LLaVA 1.5 (captioner)"} <= backends
    for r in rows:
        assert r["source"] and r["files"] and r["licence"] and r["get"], r
    q = next(r for r in rows if r["backend"] == "Q-Align")
    assert "hf download q-future/one-align --local-dir" in q["get"] and str(tmp_path / "models") in q["files"]
    assert "trust_remote_code" in q["file"] and "non-commercial" in q["licence"]
    musiq = next(r for r in rows if r["metric"] == "musiq")
    assert musiq["get"].endswith(str(tmp_path / "torch" / "hub" / "pyiqa")) and "chaofengc" in musiq["source"]
    code, out, _ = run(capsys, "models")
    assert code == 0 and "get:     hf download" in out and "licence:" in out


def test_models_tiny_help_prints_its_usage_once(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["models", "tiny", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.count("usage:") == 1 and out.startswith("usage: datakit models tiny ")


def test_refilter_is_retired_build_replaces_it(capsys):
    """Keep-lists are gone: another profile is applied by `datakit build --index` (tests/test_curation.py)."""
    with pytest.raises(SystemExit) as e:
        cli.main(["refilter", "out", "offline"])
    assert e.value.code == 2 and "invalid choice: 'refilter'" in capsys.readouterr().err


def test_every_new_verb_has_help(capsys):
    for verb in ("score", "models", "curate", "build"):
        with pytest.raises(SystemExit) as e:
            cli.main([verb, "--help"])
        assert e.value.code == 0 and f"usage: datakit {verb}" in capsys.readouterr().out
