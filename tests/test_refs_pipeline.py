"""The demo's mi2v and edit variants end to end under local Ray, offline segmenter, real sample clips."""
import io

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from conftest import REPO
from datakit import media, runner, spec
from datakit.output import reader
from datakit.verify import verify

pytestmark = pytest.mark.slow


def _run(name, inp, out):
    s = spec.load(REPO / "pipelines" / f"{name}.yaml",
                  [f"input={inp}", f"output={out}", "split.max_clips_per_source=1", "shard.max_samples=8"])
    res = runner.run(s, progress=False)
    rows = list(reader.open_output(str(out)).sample_rows())
    tars = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    samples = {s["__key__"]: s for s in wds.WebDataset(tars, shardshuffle=False)}
    return res, rows, samples


def test_demo_mi2v(sample_dir, tmp_path, ray_session):
    res, rows, samples = _run("demo_mi2v", sample_dir, tmp_path / "out")
    assert verify(str(tmp_path / "out")).ok
    assert res.samples_written == len(rows) >= 1 and res.samples_written + res.rejects_written == 3
    assert "carphone_pristine.mp4" in {r["source_uri"].rsplit("/", 1)[-1] for r in rows}
    for r in rows:
        ref = r["refs"]
        assert r["task"] == "mi2v" and ref["segmenter"]["backend"] == "opencv"
        assert not r["start_frame"] <= ref["frame"]["index"] < r["end_frame"]
        names = sorted(m["name"] for m in r["members"])
        assert names == sorted(["hr.mp4", "lr.mp4", "json", "txt"] + [i["member"] for i in ref["ids"]])
        for i in ref["ids"]:
            img = Image.open(io.BytesIO(samples[r["key"]][i["member"]]))
            assert img.size == tuple(i["crop_size"]) and i["area_frac"] >= 0.02
    summary = res.summary
    assert summary["stages"]["id_refs"]["in"] == 3
    assert set(summary["rejects_by_reason"]) <= {"no_id"}


def test_demo_edit(sample_dir, tmp_path, ray_session):
    res, rows, samples = _run("demo_edit", sample_dir, tmp_path / "out")
    assert verify(str(tmp_path / "out")).ok
    assert res.samples_written == len(rows) >= 1 and res.samples_written + res.rejects_written == 3
    assert set(res.summary["rejects_by_reason"]) <= {"no_object", "lost_track"}
    for r in rows:
        s = samples[r["key"]]
        hr, ref, mask = (media.decode(s[k]) for k in ("hr.mp4", "ref.mp4", "mask.mp4"))
        m = mask[..., 0] > 127
        assert hr.shape == ref.shape == mask.shape and hr.shape[0] == r["ref"]["frames"] == r["mask"]["frames"] == 17
        assert set(np.unique(mask)) <= {0, 255} and m.any()
        # ref.mp4 is H.264 like the HR: outside the mask it matches the HR up to coding noise (a
        # second generation at crf 18, plus what the edit spills into neighbouring blocks). Keys
        # hash the source path, so the method and its draws follow the temporary folder: on the
        # same clip, inpaint measured 40 dB and recolor 34.5 to 38 dB. Exactness outside the mask
        # is tested on the lossless variant in test_refs.py.
        diff = (ref.astype(float) - hr.astype(float)) ** 2
        psnr_out = 10 * np.log10(255 ** 2 / diff[~m].mean())
        assert psnr_out > 30 and diff[m].mean() > 4 * diff[~m].mean()
        assert r["refs"]["method"] in ("inpaint", "recolor") and r["refs"]["object"]["label"] == "person"
