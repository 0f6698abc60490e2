"""`datakit reproduce` on real demo outputs: every member re-made from its json, bit for bit."""
import json
import shutil
import tarfile

import pytest
import yaml

from conftest import REPO
from datakit import cli, media, runner, spec, tiny
from datakit.reproduce import ReproduceError, find_sample, reproduce
from outputs import docs

pytestmark = pytest.mark.slow


def _rows(out):
    return docs(out)


def _tar(out, row):
    return out / "shards" / f"{row['shard']}.tar"


@pytest.fixture(scope="module")
def demo_out(sample_dir, tmp_path_factory, ray_session):
    """The demo as shipped (RealBasicVSR degradations), two clips per source."""
    out = tmp_path_factory.mktemp("repro-demo") / "out"
    sp = spec.load(REPO / "pipelines" / "demo.yaml", [f"input={sample_dir}", f"output={out}",
                                                      "split.max_clips_per_source=2", "shard.max_samples=2"])
    runner.run(sp, progress=False)
    return out


@pytest.fixture(scope="module")
def sdedit_out(sample_dir, tmp_path_factory, ray_session):
    """pipelines/smoke.yaml without the captioner: tiny Wan SDEdit on the CPU, three clips of one
    source denoised in one batch, then RealBasicVSR degradations."""
    tmp = tmp_path_factory.mktemp("repro-sdedit")
    tiny.write(tmp / "models", ["wan"])
    tree = yaml.safe_load((REPO / "pipelines" / "smoke.yaml").read_text())
    tree["stages"] = [s for s in tree["stages"] if s["stage"] != "captioner"]
    for s in tree["stages"]:
        if s["stage"] == "sdedit":
            s.update(model=str(tmp / "models" / "wan"), batch_size=3, device="cpu")
        if s["stage"] == "split":
            s["max_clips_per_source"] = 3
    tree["input"], tree["output"] = [str(sample_dir)], str(tmp / "out")
    runner.run(spec.parse(tree, source="smoke.yaml"), progress=False, limit=1)
    return tmp / "out"


def _cli(capsys, *argv):
    code = cli.main(["reproduce", *map(str, argv)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_demo_samples_rebuild_bit_for_bit(demo_out, capsys):
    rows = _rows(demo_out)
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source_id"], r)
    assert len(by_source) == 3                        # one sample of each real clip
    for row in by_source.values():
        s = find_sample(str(demo_out), row["key"])
        rep = reproduce(s.doc, s.config, s.members, s.recorded_sha)
        manifest = {m["name"]: m["sha256"] for m in row["members"]}
        got = {m.name: m for m in rep.members}
        assert rep.stages == ["extract", "synthetic"] and rep.ok(strict=True)
        for name in ("hr.mp4", "lr.mp4"):
            assert got[name].status == "match" and got[name].rebuilt == manifest[name]
        assert got["json"].status == got["txt"].status == "input"
        assert {f.name: f.status for f in rep.fields} == {
            "hr": "match", "lr": "match", "degradations[synthetic]": "match"}
        # the encoder settings that make the bytes are recorded
        assert s.doc["hr"]["threads"] >= 1 and s.doc["hr"]["mbtree"] is False and s.doc["lr"]["threads"] >= 1
    key = rows[0]["key"]
    code, out, err = _cli(capsys, demo_out, key)
    assert code == 0 and not err
    assert f"{key} (pipeline demo" in out and "OK: 2 of 2 rebuilt members match bit for bit" in out
    code, out, _ = _cli(capsys, demo_out, key, "--json")
    rep = json.loads(out)
    assert code == 0 and rep["ok"] and {m["name"]: m["status"] for m in rep["members"]}["lr.mp4"] == "match"


def test_sample_json_with_members_from_a_folder_or_the_shard(demo_out, tmp_path, capsys):
    row = _rows(demo_out)[0]
    key, tar = row["key"], _tar(demo_out, row)
    with tarfile.open(tar) as tf:
        tf.extractall(tmp_path / "unpacked", filter="data")
    js = tmp_path / "unpacked" / f"{key}.json"
    code, out, err = _cli(capsys, js, "--config", demo_out / "meta" / "config.json")
    assert code == 0 and "OK: 2 of 2" in out, err
    code, out, err = _cli(capsys, tar, key)                       # the output's config found above the shard
    assert code == 0 and "OK: 2 of 2" in out, err
    code, out, err = _cli(capsys, js)                              # no config anywhere above
    assert code == 2 and err.count("\n") == 1 and "--config" in err


def _flip_byte(tar, row, name):
    """One byte of a member's data flipped in place (offsets from the manifest; the manifest unchanged)."""
    m = next(m for m in row["members"] if m["name"] == name)
    data = bytearray(tar.read_bytes())
    data[m["offset"] + m["size"] // 2] ^= 0xFF
    tar.write_bytes(bytes(data))


def _nudged_lr(lr_bytes):
    """The stored LR with one pixel one level brighter, re-encoded losslessly: it still decodes."""
    frames = media.decode(lr_bytes)
    frames[0, 0, 0, 0] = frames[0, 0, 0, 0] + 1 if frames[0, 0, 0, 0] < 255 else 254
    return media.encode(frames, 24, lossless=True)


def test_a_tampered_member_is_a_mismatch_with_exit_1(demo_out, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    row = _rows(out)[0]
    key, tar = row["key"], _tar(out, row)
    _flip_byte(tar, row, "lr.mp4")
    code, text, _ = _cli(capsys, out, key)
    assert code == 1 and "FAIL: 1 of 2" in text
    line = next(x for x in text.splitlines() if " lr.mp4 " in x)
    # the stored member is refused; the rebuild still equals what the manifest recorded
    assert line.split()[0] == "mismatch" and "does not match its manifest's sha256" in line
    assert "the rebuilt bytes match the manifest" in line
    # without a manifest (a json and a folder of members), the rebuild itself finds the change
    folder = tmp_path / "members"
    folder.mkdir()
    s = find_sample(str(demo_out), key)
    members = {**s.members, "lr.mp4": _nudged_lr(s.members["lr.mp4"])}
    for name, data in members.items():
        (folder / f"{key}.{name}").write_bytes(data)
    code, text, _ = _cli(capsys, folder / f"{key}.json", "--config", out / "meta" / "config.json")
    assert code == 1 and "max 1 " in text
    rep = reproduce(s.doc, s.config, members)
    lr = next(m for m in rep.members if m.name == "lr.mp4")
    assert lr.status == "mismatch" and lr.max_abs == 1 and 0 < lr.mean_abs < 1e-3 and lr.stored != lr.rebuilt
    assert next(m for m in rep.members if m.name == "hr.mp4").status == "match"


def test_unknown_key_or_missing_target_is_one_line_exit_2(demo_out, capsys):
    code, out, err = _cli(capsys, demo_out, "0123456789abcdef0123456789abcdef")
    assert code == 2 and not out and err.count("\n") == 1
    assert err.startswith("datakit: error: no sample 0123456789abcdef0123456789abcdef in ")
    code, _, err = _cli(capsys, demo_out)
    assert code == 2 and "KEY" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, demo_out / "nothing-here.json")
    assert code == 2 and "not found" in err and err.count("\n") == 1


def test_sdedit_on_the_cpu_rebuilds_bit_for_bit(sdedit_out, capsys):
    """Tiny Wan in float32 on the CPU, three clips (with their own k) denoised as one batch, then
    degraded: the rebuild runs the recorded batch make-up and the final lr.mp4 matches its sha256.
    (Re-made alone, a batched clip can differ by a few levels: transformer calls of another batch
    size round differently.)"""
    rows = _rows(sdedit_out)
    assert len(rows) == 3 and all(r["sdedit"]["batch"] == 3 and r["sdedit"]["device"] == "cpu" for r in rows)
    assert sorted(r["sdedit"]["batch_index"] for r in rows) == [0, 1, 2]
    assert all(r["sdedit"]["batch_k"][r["sdedit"]["batch_index"]] == r["sdedit"]["k"] for r in rows)
    for row in rows:
        s = find_sample(str(sdedit_out), row["key"])
        rep = reproduce(s.doc, s.config, s.members, s.recorded_sha)
        assert rep.stages == ["extract", "sdedit", "synthetic"]
        got = {m.name: m.status for m in rep.members}
        assert got == {"hr.mp4": "match", "lr.mp4": "match", "json": "input", "txt": "input"}
        assert all(f.status == "match" for f in rep.fields), rep.fields
    code, out, _ = _cli(capsys, sdedit_out, rows[0]["key"])
    assert code == 0 and "rebuilt by extract, sdedit, synthetic" in out


def test_sdedit_made_on_a_gpu_reports_the_difference(sdedit_out, tmp_path, capsys):
    """A sample whose SDEdit ran on a GPU: its LR is compared, not required equal. Here the json
    says cuda and the stored LR differs by one level in one pixel: `differs` with the difference,
    exit 0; --strict fails it."""
    key = _rows(sdedit_out)[0]["key"]
    s = find_sample(str(sdedit_out), key)
    doc = json.loads(s.members["json"])
    doc["sdedit"]["device"] = "cuda:0"
    doc["degradations"][0]["params"]["device"] = "cuda:0"
    folder = tmp_path / "m"
    folder.mkdir()
    for name, data in s.members.items():
        (folder / f"{key}.{name}").write_bytes(data)
    (folder / f"{key}.lr.mp4").write_bytes(_nudged_lr(s.members["lr.mp4"]))
    (folder / f"{key}.json").write_text(json.dumps(doc))
    rep = reproduce(doc, s.config, {**s.members, "lr.mp4": (folder / f"{key}.lr.mp4").read_bytes()})
    lr = next(m for m in rep.members if m.name == "lr.mp4")
    assert lr.status == "differs" and lr.max_abs == 1 and "cuda:0" in lr.note and rep.ok() and not rep.ok(strict=True)
    assert {f.name: f.status for f in rep.fields}["sdedit"] == "differs"       # device: cuda:0 -> cpu
    cfg = sdedit_out / "meta" / "config.json"
    code, out, _ = _cli(capsys, folder / f"{key}.json", "--config", cfg)
    assert code == 0 and "differs" in out and "max 1 " in out
    code, _, _ = _cli(capsys, folder / f"{key}.json", "--config", cfg, "--strict")
    assert code == 1


def test_a_moved_source_is_named_and_found_again_with_source(demo_out, tmp_path):
    row = _rows(demo_out)[0]
    s = find_sample(str(demo_out), row["key"])
    moved = tmp_path / "moved.mp4"
    shutil.copy(row["source_uri"], moved)
    doc = {**s.doc, "source_uri": str(tmp_path / "gone.mp4")}
    with pytest.raises(ReproduceError, match=r"extract: cannot re-read .*gone\.mp4.*--source"):
        reproduce(doc, s.config, s.members, s.recorded_sha)
    rep = reproduce(doc, s.config, s.members, s.recorded_sha, source=str(moved))
    assert rep.ok(strict=True) and {m.name: m.status for m in rep.members}["hr.mp4"] == "match"
