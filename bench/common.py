"""Shared benchmark helpers: run a command and measure its whole process tree."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (Ray workers included)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_measured(cmd: list[str], cwd: str | Path, env: dict | None = None, interval: float = 0.1,
                 timeout: float = 900) -> dict:
    """Run ``cmd``; return its exit code, wall seconds and peak resident memory of its tree."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    ps = psutil.Process(p.pid)
    peak = 0
    while p.poll() is None:
        peak = max(peak, tree_rss(ps))
        if time.perf_counter() - t0 > timeout:
            p.kill()
            break
        time.sleep(interval)
    out, err = p.communicate()
    return {"returncode": p.returncode, "wall_s": time.perf_counter() - t0, "peak_rss": peak,
            "stdout": out, "stderr": err}


def ray_free_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    return env


def replicate_samples(dest: Path, n: int) -> list[Path]:
    """``n`` input videos: the real sample clips, copied under distinct names, cycled."""
    from datakit.samples import SAMPLES, sample_paths

    dest.mkdir(parents=True, exist_ok=True)
    srcs = sample_paths()
    out = []
    for i in range(n):
        src = srcs[i % len(srcs)]
        target = dest / f"{i:04d}_{src.name}"
        shutil.copyfile(src, target)
        target.with_suffix(".txt").write_text(SAMPLES[src.name])
        out.append(target)
    return out


def write_section(doc: Path, name: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if start in old and end in old:
        new = re.sub(re.escape(start) + r".*?" + re.escape(end) + r"\n?", lambda m: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block
    doc.write_text(new)
