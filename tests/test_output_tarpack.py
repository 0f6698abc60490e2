"""Samples packed as tar records: offsets locate each member's data; tarfile and WebDataset read the shard."""
import hashlib
import tarfile

import webdataset as wds

from datakit.output import tarpack


def test_offsets_locate_members_and_readers_agree(tmp_path):
    samples = {"k1": {"hr.mp4": b"x" * 700, "json": b"{}", "txt": b""},
               "k" * 120: {"json": b'{"a": 1}', "txt": "é".encode()}}   # a long name needs a pax header
    data, rows = b"", []
    for key, members in samples.items():
        blob, mrows = tarpack.pack(key, members)
        rows += [(key, {**r, "offset": r["offset"] + len(data)}) for r in mrows]
        data += blob
    data += tarpack.END
    for key, r in rows:
        body = data[r["offset"]:r["offset"] + r["size"]]
        assert body == samples[key][r["name"]]
        assert hashlib.sha256(body).hexdigest() == r["sha256"]
    path = tmp_path / "s.tar"
    path.write_bytes(data)
    with tarfile.open(path) as t:
        assert [m.name for m in t.getmembers()] == [f"{k}.{n}" for k, m in samples.items() for n in m]
    got = {s["__key__"]: {n: s[n] for n in s if not n.startswith("__")}
           for s in wds.WebDataset(f"file:{path}", shardshuffle=False)}
    assert got == samples
    assert tarpack.pack("k1", samples["k1"]) == tarpack.pack("k1", samples["k1"])   # same bytes every time
