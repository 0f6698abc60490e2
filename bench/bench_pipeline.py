"""Pipeline benchmark: throughput with 1 and 2 CPUs, per-stage time, peak memory vs input count.

    .venv/bin/python bench/bench_pipeline.py            # writes its section of docs/benchmarks.md

Every figure comes from one invocation on this machine; ratios compare runs made in
the same invocation (the 1-CPU run is the baseline for scaling, the smallest input
count for memory).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from common import ray_free_env, replicate_samples, run_measured, write_section  # noqa: E402


def cpu_stage_spec(dest: Path) -> Path:
    """pipelines/demo.yaml without its actor-pool stages (and what needs them): CPU task stages only."""
    import yaml

    from datakit.stages import STAGES

    tree = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    kept: list[dict] = []
    for st in tree["stages"]:
        cls = STAGES[st["stage"]]
        if not cls.uses_model and all(r in [k["stage"] for k in kept] for r in cls.requires):
            kept.append(st)
    tree["stages"] = kept
    dest.write_text(yaml.safe_dump(tree, sort_keys=False))
    return dest


def job(spec: Path, inp: Path, out: Path, cpus: int, clips: int) -> dict:
    cmd = [sys.executable, "-m", "datakit.cli", "run", str(spec), "--input", str(inp), "--output",
           str(out), "-q", "--set", f"ray.num_cpus={cpus}", "--set", f"split.max_clips_per_source={clips}"]
    res = run_measured(cmd, cwd=REPO, env=ray_free_env())
    if res["returncode"]:
        raise SystemExit(res["stderr"][-3000:])
    summary = json.loads((out / "meta" / "summary.json").read_text())
    res["samples"] = summary["counts"]["samples"]
    res["job_s"] = summary["runs"][-1]["wall_s"]
    res["stages"] = summary["timings_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", type=int, nargs="+", default=[4, 16], help="input counts for the memory figures")
    ap.add_argument("--scaling-inputs", type=int, default=12, help="inputs for the 1 vs 2 CPU runs")
    ap.add_argument("--clips", type=int, default=2, help="clips per input")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cpu_spec = cpu_stage_spec(tmp / "cpu_stages.yaml")
        scale_in = replicate_samples(tmp / "scale", args.scaling_inputs)[0].parent
        scaling = {c: job(cpu_spec, scale_in, tmp / f"out_cpu{c}", c, args.clips) for c in (1, 2)}
        full = {2: job(REPO / "pipelines" / "demo.yaml", scale_in, tmp / "out_full", 2, args.clips)}
        memory = {}
        for n in args.inputs:
            inp = replicate_samples(tmp / f"in{n}", n)[0].parent
            memory[n] = job(REPO / "pipelines" / "demo.yaml", inp, tmp / f"out{n}", 2, args.clips)

    machine = (f"{platform.machine()}, {psutil.cpu_count()} CPU cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU")
    base = scaling[1]
    lines = [
        "## Pipeline: throughput, scaling and memory (`pipelines/demo.yaml`)", "",
        f"Command: `.venv/bin/python bench/bench_pipeline.py` — machine: {machine}. Inputs are the real "
        f"sample clips cycled under distinct names, {args.clips} clips of 17 frames each, HR 128 px high. "
        "Wall times include starting the embedded Ray (several seconds); other processes may share the "
        "cores, so compare rows of one run, not across runs.", "",
        "Scaling of the CPU task stages (the demo without its actor-pool stages: probe, caption, split, "
        "extract, synthetic):", "",
        "| Ray CPUs | inputs | samples | job wall s | clips/s | speed-up vs 1 CPU |",
        "|---|---|---|---|---|---|",
    ]
    for c, r in scaling.items():
        lines.append(f"| {c} | {args.scaling_inputs} | {r['samples']} | {r['job_s']:.1f} | "
                     f"{r['samples'] / r['job_s']:.2f} | {base['job_s'] / r['job_s']:.2f}x |")
    f = full[2]
    lines += ["", f"The whole demo (with the score actor pool and the filter), 2 CPUs: {f['samples']} samples in "
              f"{f['job_s']:.1f} s ({f['samples'] / f['job_s']:.2f} clips/s). Seconds per sample by stage "
              "(a source's probe/split time is shared among its clips):", "",
              "| stage | s/sample | total s |", "|---|---|---|"]
    for st, t in f["stages"].items():
        lines.append(f"| {st} | {t['mean_per_sample']:.3f} | {t['total']:.1f} |")
    first = min(memory)
    lines += ["", "Peak resident memory of the whole process tree (driver, Ray's daemons and workers), 2 CPUs:", "",
              "| inputs | samples | peak RSS MiB | ratio vs smallest |", "|---|---|---|---|"]
    for n, r in memory.items():
        lines.append(f"| {n} | {r['samples']} | {r['peak_rss'] / 2**20:.0f} | "
                     f"{r['peak_rss'] / memory[first]['peak_rss']:.2f} |")
    write_section(args.doc, "pipeline-bench", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
