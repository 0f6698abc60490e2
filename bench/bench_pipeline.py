"""Pipeline benchmark: throughput (1 vs 2 CPUs, 1 vs 2 Ray nodes), per-stage time, what the
driver receives per sample, and the driver's peak memory for 10^3 and 10^6 listed inputs.

    .venv/bin/python bench/bench_pipeline.py            # writes its section of docs/benchmarks.md

Every figure comes from one invocation on this machine; ratios compare runs made in
the same invocation (the 1-CPU run is the baseline for scaling, one node for nodes, the
encoded media of the samples for driver bytes, the smallest listing for memory).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
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


def job(spec: Path, inp: Path, out: Path, cpus: int | None, clips: int, address: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "datakit.cli", "run", str(spec), "--input", str(inp), "--output",
           str(out), "-q", "--set", f"split.max_clips_per_source={clips}"]
    cmd += ["--address", address] if address else ["--set", f"ray.num_cpus={cpus}"]
    res = run_measured(cmd, cwd=REPO, env=ray_free_env())
    if res["returncode"]:
        raise SystemExit(res["stderr"][-3000:])
    res["load"] = os.getloadavg()[0]
    from datakit.output.reader import open_output

    summary = json.loads((out / "meta" / "summary.json").read_text())
    run = summary["runs"][-1]
    res["samples"] = summary["counts"]["samples"]
    res["records"] = run["samples_written"] + run["rejects_written"]
    res["job_s"] = run["wall_s"]
    res["stages"] = summary["timings_s"]
    res["driver_bytes"] = run["driver_bytes"]
    # what the driver received per sample before the writers moved into the workers: every member
    res["media_bytes"] = sum(m["size"] for r in open_output(str(out)).manifest_rows(["members"])
                             for m in r["members"])
    return res


# ---------------------------------------------------------------- Ray nodes on this machine

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """``ray start`` nodes on this machine: a head and workers with the given CPUs each."""

    def __init__(self, cpus: list[int], tmp: Path):
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        ray = str(Path(sys.executable).parent / "ray")
        common = ["--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
        for i, n in enumerate(cpus):
            args = ([f"--head", f"--port={self.port}", "--include-dashboard=false"] if i == 0
                    else [f"--address={self.address}"])
            log = open(tmp / f"node{i}.log", "w")
            self.procs.append(subprocess.Popen([ray, "start", *common, *args, f"--num-cpus={n}"], env=ray_free_env(),
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            if i == 0:
                time.sleep(3)
        self._wait(len(cpus))

    def _wait(self, n: int, timeout: float = 120) -> None:
        code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                "print(sum(1 for x in ray.nodes() if x['Alive']))")
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = subprocess.run([sys.executable, "-c", code, self.address], env=ray_free_env(), capture_output=True,
                               text=True)
            if r.returncode == 0 and r.stdout.strip() == str(n):
                return
            time.sleep(1)
        self.stop()
        raise SystemExit(f"Ray cluster at {self.address} did not reach {n} nodes")

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


# ---------------------------------------------------------------- the driver up to listing and planning

_PLAN = """
import sys, tempfile
from datakit import ingest, spec as specmod
from datakit.output import resume
from datakit.runner import output_settings
mode, lst, out = sys.argv[1:4]
sp = specmod.load("pipelines/demo.yaml", [f"input={lst}", f"output={out}"])
if mode == "plan":        # what `datakit run` does before Ray starts: open the output, plan the inputs
    settings = output_settings(sp)
    state = resume.open_for_run(settings, sp.model_dump(mode="json"))
    plan = ingest.plan(sp.input, resume.plan_dir(state.root), is_done=None)
    print(plan.listed, len(plan.files))
else:                     # the earlier driver: every source record in memory
    recs = ingest.list_sources(sp.input)
    print(len(recs), 0)
"""


def plan_memory(tmp: Path, n: int, mode: str) -> dict:
    """Peak RSS of a driver process that lists ``n`` inputs (a list file) and plans them."""
    real = replicate_samples(tmp / "one", 1)[0]
    lst = tmp / f"list{n}.txt"
    with open(lst, "w") as f:       # n distinct names for copies of one small clip (listing never opens them)
        for i in range(n):
            f.write(f"{real.parent}/copy-{i:07d}.mp4\n")
    res = run_measured([sys.executable, "-c", _PLAN, mode, str(lst), str(tmp / f"plan_out_{mode}_{n}")],
                       cwd=REPO, env={**ray_free_env(), "PYTHONPATH": str(REPO)}, interval=0.05)
    if res["returncode"]:
        raise SystemExit(res["stderr"][-3000:])
    listed, files = map(int, res["stdout"].split())
    assert listed == n, (listed, n)
    return {"peak_rss": res["peak_rss"], "wall_s": res["wall_s"], "files": files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listed", type=int, nargs="+", default=[1000, 1000000],
                    help="listed input counts for the driver-memory figures")
    ap.add_argument("--in-memory-listed", type=int, nargs="+", default=[1000, 100000],
                    help="the same for the earlier in-memory listing (kept smaller: it grows with the list)")
    ap.add_argument("--scaling-inputs", type=int, default=12, help="inputs for the 1 vs 2 CPU and node runs")
    ap.add_argument("--clips", type=int, default=2, help="clips per input")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = ap.parse_args()
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cpu_spec = cpu_stage_spec(tmp / "cpu_stages.yaml")
        scale_in = replicate_samples(tmp / "scale", args.scaling_inputs)[0].parent
        scaling = {c: job(cpu_spec, scale_in, tmp / f"out_cpu{c}", c, args.clips) for c in (1, 2)}
        nodes = {}
        for label, cpus in (("1 node x 2 CPUs", [2]), ("2 nodes x 1 CPU", [1, 1])):
            cluster = Cluster(cpus, tmp)
            try:
                nodes[label] = job(cpu_spec, scale_in, tmp / f"out_nodes{len(cpus)}", None, args.clips,
                                   address=cluster.address)
            finally:
                cluster.stop()
        full = job(REPO / "pipelines" / "demo.yaml", scale_in, tmp / "out_full", 2, args.clips)
        memory = {n: plan_memory(tmp / f"plan{n}", n, "plan") for n in args.listed}
        in_memory = {n: plan_memory(tmp / f"mem{n}", n, "list") for n in args.in_memory_listed}
    loads.append(os.getloadavg()[0])

    machine = (f"{platform.machine()}, {psutil.cpu_count()} CPU cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU")
    base = scaling[1]
    lines = [
        "## Pipeline: throughput, scaling, driver traffic and memory (`pipelines/demo.yaml`)", "",
        f"Command: `.venv/bin/python bench/bench_pipeline.py` — machine: {machine}, shared with other "
        f"work while it ran (1-minute load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end, on "
        f"{psutil.cpu_count()} cores), so the runs are kept short, timings carry that noise, and only rows of "
        "one run compare. Inputs are the real "
        f"sample clips cycled under distinct names, {args.clips} clips of 17 frames each, HR 128 px high. "
        "Wall times include starting Ray (several seconds).", "",
        "Scaling of the CPU task stages (the demo without its actor-pool stages: probe, caption, split, "
        "extract, synthetic, then the writer), embedded Ray:", "",
        "| Ray CPUs | inputs | samples | job wall s | clips/s | speed-up vs 1 CPU | load avg after |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, r in scaling.items():
        lines.append(f"| {c} | {args.scaling_inputs} | {r['samples']} | {r['job_s']:.1f} | "
                     f"{r['samples'] / r['job_s']:.2f} | {base['job_s'] / r['job_s']:.2f}x | {r['load']:.1f} |")
    one = nodes["1 node x 2 CPUs"]
    lines += ["", "The same job on Ray nodes started with `ray start` on this machine (`--address`), the same "
              "2 CPUs in total; with two nodes the workers of each node write their own batches:", "",
              "| cluster | samples | job wall s | clips/s | vs 1 node | load avg after |", "|---|---|---|---|---|---|"]
    for label, r in nodes.items():
        lines.append(f"| {label} | {r['samples']} | {r['job_s']:.1f} | {r['samples'] / r['job_s']:.2f} | "
                     f"{one['job_s'] / r['job_s']:.2f}x | {r['load']:.1f} |")
    f = full
    lines += ["", f"The whole demo (with the score actor pool and the filter), 2 CPUs: {f['samples']} samples in "
              f"{f['job_s']:.1f} s ({f['samples'] / f['job_s']:.2f} clips/s). Seconds per sample by stage "
              "(a source's probe/split time is shared among its clips):", "",
              "| stage | s/sample | total s |", "|---|---|---|"]
    for st, t in f["stages"].items():
        lines.append(f"| {st} | {t['mean_per_sample']:.3f} | {t['total']:.1f} |")
    per = f["driver_bytes"] / max(1, f["records"])
    media = f["media_bytes"] / max(1, f["samples"])
    lines += ["", "What the driver receives: the writers' status rows (Arrow bytes, counted by the driver as "
              "they arrive), against the encoded members of the samples (what reached the driver when it "
              "wrote every shard itself):", "",
              "| | bytes per record | ratio |", "|---|---|---|",
              f"| status rows to the driver (whole demo) | {per:.0f} | {per / media:.4f} |",
              f"| encoded members of a sample (HR, LR at 128 px; earlier design) | {media:.0f} | 1 |"]
    first = min(memory)
    lines += ["", "Peak resident memory of the driver process up to listing and planning (opening the "
              "output, listing a list file of N names, sorting and de-duplicating them, writing plan files), "
              "against the earlier in-memory listing (every source record held by the driver). The names "
              "are copies of one small clip's path; listing never opens them:", "",
              "| listed inputs | planning: peak RSS MiB | s | ratio vs smallest | in-memory listing: peak RSS MiB |",
              "|---|---|---|---|---|"]
    for n in sorted(set(memory) | set(in_memory)):
        m, im = memory.get(n), in_memory.get(n)
        plan_cells = (f"{m['peak_rss'] / 2**20:.0f} | {m['wall_s']:.1f} | {m['peak_rss'] / memory[first]['peak_rss']:.2f}"
                      if m else "– | – | –")
        mem_cell = f"{im['peak_rss'] / 2**20:.0f}" if im else "–"
        lines.append(f"| {n:,} | {plan_cells} | {mem_cell} |")
    write_section(args.doc, "pipeline-bench", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
