"""`datakit models tiny` and `datakit sdedit` as users run them (in-process)."""
from __future__ import annotations

import json

import pytest

from datakit import cli, media, tiny
from datakit.samples import sample_paths

pytest.importorskip("diffusers")
CAR = str([p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0])


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def wan_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    assert cli.main(["models", "tiny", str(d), "--only", "wan", "--seed", "1"]) == 0
    assert tiny.is_tiny(d / "wan") and not (d / "captioner").exists()
    return d / "wan"


def test_sdedit_writes_the_clip_and_its_settings(capsys, wan_dir, tmp_path):
    out, params = tmp_path / "x.mp4", tmp_path / "p.json"
    code, stdout, err = run(capsys, "sdedit", CAR, "-o", str(out), "--model", str(wan_dir), "--k", "3",
                            "--frames", "5", "--base", "48x32", "--seed", "4", "--prompt", "a man in a car",
                            "--json", str(params))
    assert code == 0 and "k=3 of N=50" in stdout and "tiny random model" in stdout
    assert "sdedit: " in err and "3step" in err.replace(" ", "")       # the progress bar counted 3 steps
    doc = json.loads(params.read_text())
    assert doc["synthetic_models"] is True and doc["caption"] == "a man in a car"
    rec = doc["sdedit"]
    assert (rec["k"], rec["steps"], rec["seed"], rec["base"]) == (3, 50, 4, {"width": 48, "height": 32, "frames": 5})
    assert media.decode(out.read_bytes()).shape == (5, 32, 48, 3)


@pytest.mark.parametrize("argv, msg", [
    (["--k-range", "3"], "--k-range '3': expected K1,K2"),
    (["--k", "70"], "k range [70, 70] must satisfy"),
    (["--base", "big"], "--base 'big': expected WIDTHxHEIGHT"),
    (["--start", "99"], "past the end"),
    (["--vae-tiling", "big"], "--vae-tiling 'big': expected TILE,STRIDE"),
    (["--vae-tiling", "64,72"], "VAE tile stride 72"),
    (["--memory-budget-gb", "0"], "--memory-budget-gb 0: must be positive"),
])
def test_sdedit_bad_input_fails_with_one_line(capsys, wan_dir, tmp_path, argv, msg):
    code, _, err = run(capsys, "sdedit", CAR, "-o", str(tmp_path / "x.mp4"), "--model", str(wan_dir), *argv)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_sdedit_missing_model_and_unknown_tiny_name(capsys, tmp_path):
    code, _, err = run(capsys, "sdedit", CAR, "-o", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "none"))
    assert code == 2 and "not found" in err
    code, _, err = run(capsys, "models", "tiny", str(tmp_path), "--only", "nosuch")
    assert code == 2 and "no such tiny model" in err and not any(tmp_path.iterdir())


def test_sdedit_refuses_a_clip_that_cannot_fit(capsys, wan_dir, tmp_path):
    code, _, err = run(capsys, "sdedit", CAR, "-o", str(tmp_path / "x.mp4"), "--model", str(wan_dir), "--k", "2",
                       "--frames", "5", "--base", "48x32", "--memory-budget-gb", "0.000001", "-q")
    last = err.strip().splitlines()[-1]          # (libraries may log while the model loads)
    assert code == 1 and last.startswith("datakit: error: SDEdit of one 5-frame 48x32 clip needs about")
    assert "the configured budget (memory_budget_gb) is 1.0 KiB" in last and not (tmp_path / "x.mp4").exists()


def test_a_base_size_beyond_the_model_is_one_line(capsys, wan_dir, tmp_path):
    """The tiny model's rotary tables cover 32 patches a side (512 px): the default base area
    (about 832x480) is beyond it, which used to end in a traceback from inside diffusers."""
    code, _, err = run(capsys, "sdedit", CAR, "-o", str(tmp_path / "x.mp4"), "--model", str(wan_dir),
                       "--frames", "5", "--k", "1")
    assert code == 2 and "Traceback" not in err
    assert "beyond what" in err and "at most 512 px a side" in err and "--base" in err
