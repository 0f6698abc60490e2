"""`datakit refs IN --frame N -o DIR`: crops of one frame, one-line errors on bad input."""
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from datakit.cli import main
from datakit.samples import sample_paths

CARPHONE = str([p for p in sample_paths() if p.name == "carphone_pristine.mp4"][0])


def test_refs_verb_writes_crops_overlay_and_json(tmp_path, capsys):
    assert main(["refs", CARPHONE, "--frame", "10", "-o", str(tmp_path / "o"), "--background", "0,0,0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ref_00.png  person") and "1 ID crops from frame 10" in out
    doc = json.loads((tmp_path / "o" / "refs.json").read_text())
    assert doc["frame"]["index"] == 10 and doc["frame"]["time_s"] == pytest.approx(10 / 29.97, abs=1e-3)
    assert doc["segmenter"]["backend"] == "opencv" and doc["ids"][0]["member"] == "ref_00.png"
    crop = np.array(Image.open(tmp_path / "o" / "ref_00.png"))
    x0, y0, x1, y1 = doc["ids"][0]["crop_box"]
    assert crop.shape == (y1 - y0, x1 - x0, 3) and (crop == 0).all(axis=-1).any()
    for name in ("frame.png", "overlay.png"):
        assert Image.open(tmp_path / "o" / name).size == (176, 144)


def test_refs_verb_on_an_image_and_when_nothing_qualifies(tmp_path, capsys):
    img = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(img)
    assert main(["refs", str(img), "-o", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "ref_00.png").is_file()
    assert main(["refs", str(img), "-o", str(tmp_path / "b"), "--min-area", "0.9"]) == 1
    err = capsys.readouterr().err
    assert "no usable ID in frame 0" in err and "dropped 1 too_small" in err
    assert (tmp_path / "b" / "overlay.png").is_file() and not (tmp_path / "b" / "ref_00.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--frame", "5000"], "frame 5000 is outside"),
    (["--min-area", "2"], "--min-area must be within 0..1"),
    (["--background", "1,2"], "expected R,G,B"),
    (["--segmenter", "mask2former", "--model", "/nonexistent/m2f"], "checkpoint '/nonexistent/m2f' not found"),
    (["--classes", "giraffe"], "person and cat"),
])
def test_refs_verb_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    assert main(["refs", CARPHONE, "-o", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("datakit: error: ") and message in err and "\n" not in err
