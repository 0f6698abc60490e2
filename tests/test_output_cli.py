"""`stats`, `verify`, `inspect` on outputs that are not outputs, damaged ones and odd ones, as
a person runs them: one line and exit 2 for the wrong folder, no traceback, no progress bar first."""
import subprocess
import sys

import pytest

from conftest import REPO
from datakit import cli, summary
from output_fixture import make_output, reject, write_batch, write_config

VERBS = {"stats": [], "verify": [], "inspect": ["--html", "HTML"]}


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _not_outputs(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "clip.mp4").write_bytes(b"x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text('{"format_version": 1}')
    return {"missing": "no such folder", "afile": "it is a file", "plain": "not a datakit output",
            "old": "older datakit"}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_not_an_output_is_one_line_and_exit_2(capsys, tmp_path, verb):
    for name, want in _not_outputs(tmp_path).items():
        extra = [str(tmp_path / "html") if a == "HTML" else a for a in VERBS[verb]]
        code, out, err = run(capsys, verb, str(tmp_path / name), *extra)
        assert code == 2 and out == "", (verb, name, out)
        assert err.count("\n") == 1 and want in err and str(tmp_path / name) in err, (verb, name, err)
        assert "Traceback" not in err and "%" not in err            # no progress bar drawn first


def test_not_an_output_in_a_fresh_process(tmp_path):
    """The same through the installed entry point: nothing but the one line on stderr."""
    (tmp_path / "plain").mkdir()
    r = subprocess.run([sys.executable, "-m", "datakit.cli", "verify", str(tmp_path / "plain")], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"datakit: error: {tmp_path / 'plain'} is not a datakit output (no meta/config.json); "
        "give the --output folder of a `datakit run`"]


def test_corrupt_manifest_names_the_file(capsys, tmp_path):
    root = tmp_path / "out"
    names = make_output(root)
    summary.write(str(root))
    man = root / "manifests" / f"{names['a']}.parquet"
    man.write_bytes(man.read_bytes()[:-50])
    tar = root / "shards" / f"{names['b']}.tar"
    tar.write_bytes(tar.read_bytes()[:1000])
    for verb in ("stats", "inspect"):
        extra = ["--html", str(tmp_path / "html")] if verb == "inspect" else []
        code, _, err = run(capsys, verb, str(root), *extra, "-q" if verb == "inspect" else "--json")
        assert code == 2 and err.count("\n") == 1 and str(man) in err and "rerun the same command" in err, err
    code, out, err = run(capsys, "verify", str(root), "-q")
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert code == 1 and "Traceback" not in err
    assert any(str(man) in f and "unreadable Parquet" in f for f in fails)
    assert any(str(tar) in f and "truncated" in f for f in fails)
    assert out.splitlines()[-1].startswith(f"{len(fails)} problems:")


def test_verify_ok_and_stats_by_verdict(capsys, tmp_path):
    root = tmp_path / "out"
    make_output(root)
    summary.write(str(root))
    code, out, err = run(capsys, "verify", str(root), "-q")
    assert code == 0 and out.strip() == "OK: 2 batches, 3 samples, 9 members checked"
    code, out, _ = run(capsys, "stats", str(root))
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip().startswith("scores.sharpness"))
    assert lines[i].split()[:3] == ["scores.sharpness", "kept", "3"]
    assert lines[i + 1].split()[:2] == ["rejected", "2"]
    assert float(lines[i + 1].split()[2]) == 1.0 and float(lines[i].split()[-1]) == 30.0


def test_stats_with_everything_rejected_still_shows_scores(capsys, tmp_path):
    root = tmp_path / "out"
    write_config(root)
    write_batch(root, [], [reject("r1", sharpness=4.0, motion=1.0), reject("r2", sharpness=6.0)])
    code, out, _ = run(capsys, "stats", str(root))
    assert code == 0 and "samples 0" in out and "rejects 2" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("scores.sharpness")).split()
    assert row[:3] == ["scores.sharpness", "rejected", "2"] and float(row[3]) == 4.0 and float(row[-1]) == 6.0
    s = summary.build(str(root))
    assert s["quantiles"]["scores.motion"] == {"kept": {}, "rejected": {
        "min": 1.0, "p05": 1.0, "p25": 1.0, "p50": 1.0, "p75": 1.0, "p95": 1.0, "max": 1.0, "count": 1, "mean": 1.0}}
    code, out, _ = run(capsys, "verify", str(root), "-q")
    assert code == 1 and "meta/summary.json is missing" in out       # no run finished here
    summary.write(str(root))
    assert run(capsys, "verify", str(root), "-q")[0] == 0
