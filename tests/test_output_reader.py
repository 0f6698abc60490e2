"""The output reader: opening, committed batches only, typed rows, range reads, and one-line errors
for every kind of damage (checked against files really damaged on disk)."""
import json

import pytest
from output_fixture import doc, make_output, write_batch

from datakit import media
from datakit.output import check, reader
from datakit.output.errors import CorruptFile, NotAnOutput


@pytest.fixture
def out(tmp_path):
    root = tmp_path / "out"
    names = make_output(root)
    return root, names


def test_rows_members_and_keys(out):
    root, names = out
    o = reader.open_output(str(root))
    assert o.batches() == sorted(names.values())
    rows = list(o.manifest_rows())
    assert sorted(r["key"] for r in rows) == ["k1", "k2", "k4"]
    by_key = {r["key"]: r for r in rows}
    assert by_key["k1"]["scores"] == {"sharpness": 10.0, "motion": 1.0}
    assert by_key["k4"]["scores"] == {"sharpness": 30.0, "motion": None}
    assert reader.sample_doc(by_key["k2"])["timings"] == {"split": 0.5, "score": 1.0}
    got = o.read_members(by_key["k2"], ["txt", "hr.mp4"])
    assert got["txt"] == b"caption of k2" and media.decode(got["hr.mp4"]).shape == (17, 32, 32, 3)
    assert json.loads(o.read_members(by_key["k1"], ["json"])["json"]) == reader.sample_doc(by_key["k1"])
    samples = {r["key"]: m for r, m in o.samples(["txt"])}
    assert samples == {k: {"txt": f"caption of {k}".encode()} for k in ("k1", "k2", "k4")}
    rejects = sorted(o.reject_rows(["key", "reason", "scores"]), key=lambda r: r["key"])
    assert [(r["key"], r["reason"], r["scores"]["sharpness"]) for r in rejects] == [("k3", "soft", 1.0),
                                                                                   ("k5", "dark", 2.0)]
    assert sorted(reader.batch_keys(str(root))) == sorted(
        [(names["a"], k, "s1", 3) for k in ("k1", "k2", "k3")] + [(names["b"], k, "s2", 3) for k in ("k4", "k5")])
    assert o.count_samples() == 3
    tables = dict(o.manifest_tables(["key", "scores"]))
    assert tables[names["b"]].column_names == ["key", "scores"]


def test_uncommitted_files_are_not_read(out):
    root, names = out
    name = write_batch(root, [doc("k9", "s9")], [])
    (root / "manifests" / f"{name}.parquet").unlink()            # crash before the commit point
    (root / "rejects" / f"{name}.parquet").write_bytes(b"half")
    (root / "manifests" / "x.parquet.tmp-0123").write_bytes(b"half")
    o = reader.open_output(str(root))
    assert name not in o.batches()
    assert "k9" not in {r["key"] for r in o.manifest_rows(["key"])}
    probs = check.check(str(root))
    assert {(p.batch, p.damaged) for p in probs} == {(name, False), ("", False)}
    assert all("interrupted run" in p.line() for p in probs)


@pytest.mark.parametrize("case", ["missing", "file", "plain", "v1", "v3", "badjson"])
def test_not_an_output_says_so_in_one_line(tmp_path, case):
    root = tmp_path / "o"
    if case == "file":
        root.write_text("x")
    elif case != "missing":
        root.mkdir()
        (root / "video.mp4").write_bytes(b"x")
    if case == "v1":
        (root / "config.json").write_text("{}")
    if case in ("v3", "badjson"):
        (root / "meta").mkdir()
        (root / "meta" / "config.json").write_text('{"format_version": 3}' if case == "v3" else "{nope")
    with pytest.raises((NotAnOutput, CorruptFile)) as e:
        reader.open_output(str(root))
    msg = str(e.value)
    assert "\n" not in msg and str(root) in msg
    want = {"missing": "no such folder", "file": "it is a file", "plain": "not a datakit output",
            "v1": "older datakit", "v3": "format 3", "badjson": "meta/config.json: not valid JSON"}[case]
    assert want in msg


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x5A
    path.write_bytes(bytes(data))


def test_damage_is_one_line_naming_the_file(out):
    root, names = out
    man = root / "manifests" / f"{names['a']}.parquet"
    tar = root / "shards" / f"{names['b']}.tar"
    man.write_bytes(man.read_bytes()[:-40])           # the footer cut off
    tar.write_bytes(tar.read_bytes()[:700])           # truncated
    o = reader.open_output(str(root))
    with pytest.raises(CorruptFile) as e:
        list(o.manifest_rows())
    assert str(man) in str(e.value) and "rerun the same command" in str(e.value) and "\n" not in str(e.value)
    rows_b = list(reader.file_rows(str(root / "manifests" / f"{names['b']}.parquet"), None))
    with pytest.raises(CorruptFile, match="truncated"):
        o.read_members(rows_b[0])
    probs = {p.batch: p for p in check.check(str(root))}
    assert set(probs) == set(names.values()) and all(p.damaged for p in probs.values())
    assert probs[names["a"]].file == str(man) and "Parquet" in probs[names["a"]].reason
    assert probs[names["b"]].file == str(tar) and "truncated" in probs[names["b"]].reason


def test_every_byte_flip_in_a_manifest_is_caught_or_harmless(out):
    """Page checksums plus the json column's sha: a flip either raises CorruptFile (one line,
    naming the file) or leaves what the reader returns unchanged."""
    root, names = out
    man = root / "manifests" / f"{names['a']}.parquet"
    good = man.read_bytes()
    want = [(r["key"], r["json"], r["members"]) for r in reader.file_rows(str(man), None)]
    caught = 0
    for at in range(0, len(good), 29):
        _flip(man, at)
        probs = check.check_batch(str(root), names["a"], True)
        try:
            rows = [(r["key"], r["json"], r["members"]) for r in reader.file_rows(str(man), None)]
        except CorruptFile as e:
            assert str(man) in str(e) and "\n" not in str(e)
            assert any(p.file == str(man) for p in probs)
            caught += 1
        else:
            assert rows == want or any(p.file == str(man) for p in probs), f"silent change at byte {at}"
        man.write_bytes(good)
    assert caught > 0


def test_member_sha_mismatch(out):
    root, names = out
    o = reader.open_output(str(root))
    row = next(r for r in o.manifest_rows() if r["key"] == "k4")
    tar = root / "shards" / f"{names['b']}.tar"
    hr = next(m for m in row["members"] if m["name"] == "hr.mp4")
    _flip(tar, hr["offset"] + 3)
    with pytest.raises(CorruptFile, match=r"k4\.hr\.mp4 does not match"):
        o.read_members(row, ["hr.mp4"])
    assert o.read_members(row, ["txt"])["txt"] == b"caption of k4"
    assert check.check(str(root)) == []
    assert [p.batch for p in check.check(str(root), deep=True)] == [names["b"]]
