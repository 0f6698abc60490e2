"""Trainer benchmark on CPU: loader throughput against what the training step consumes.

    .venv/bin/python bench/bench_train.py           # writes its section of docs/benchmarks.md

Builds small t2v corpora from the real sample clips with ``pipelines/demo.yaml`` (21-frame
clips, the stage-1 length; HR 128 and 256 px high), then measures, in this process:

* the loader alone: items/s (decode HR and LR windows, bilinear LR upscale to HR size,
  crop) with 0 (in-process), 1 and 2 loader processes;
* the training step alone, on items already in memory: VAE + text encoding and forward +
  backward + AdamW of the tiny random Wan 2.1 model (``datakit.tiny``), items/s;
* both together: a short run with 2 loader processes, items/s and the share of step time
  spent waiting for data;
* the same three with the latent cache (``datakit cache-latents``, bf16): the loader reads
  stored latents instead of decoding video, the step skips the VAE and text encoder for HR,
  LR and caption; plus the time to write the cache.

The ratio that matters is loader items/s (one process) over what the step consumes: the
loader must feed at least twice what the step takes.

The tiny model is far cheaper than a real one, so on real hardware the step is the
bottleneck by orders of magnitude; the point here is what one loader process delivers
per CPU core. GPU step time is not measured by this script.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from common import ray_free_env, run_measured, write_section  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def build_corpus(samples: Path, out: Path, height: int, frames: int, clips: int) -> None:
    cmd = [sys.executable, "-m", "datakit.cli", "run", str(REPO / "pipelines" / "demo.yaml"), "--input",
           str(samples), "--output", str(out), "-q", "--set", f"split.frames={frames}", "--set",
           f"split.max_clips_per_source={clips}", "--set", f"extract.height={height}", "--set",
           "extract.allow_upscale=true"]
    res = run_measured(cmd, cwd=REPO, env=ray_free_env())
    if res["returncode"]:
        raise SystemExit(res["stderr"][-3000:])


def config(models: Path, root: Path, output: Path, frames: int, steps: int, cached: bool = False):
    from datakit.train import config as tc

    return tc.load(REPO / "pipelines" / "train_tiny.yaml", [
        f"base_model={models / 'wan'}", f"data.roots=[{root}]", f"output={output}", "data.crop=null",
        f"stages.0.frames={frames}", f"stages.0.steps={steps}", "checkpoint.every=100000",
        "checkpoint.resume=never", "log_every=100000", f"data.latent_cache.use={str(cached).lower()}"])


def loader_rate(cfg, index, workers: int, n: int, source=None) -> float:
    from datakit.train.data import make_loader

    it = iter(make_loader(cfg, index, start=0, stop=n + 1, workers=workers, source=source))
    next(it)                                   # process start-up and first decode excluded
    t0 = time.perf_counter()
    k = sum(1 for _ in it)
    return k / (time.perf_counter() - t0)


def step_rate(trainer, items: list[dict]) -> dict:
    enc_t, step_t = 0.0, 0.0
    trainer.train_step([items[0]])             # warm-up
    for it in items:
        t0 = time.perf_counter()
        e = trainer.encode(it)
        t1 = time.perf_counter()
        loss = trainer.loss_of(e)
        loss.backward()
        trainer.opt.step()
        trainer.opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        enc_t += t1 - t0
        step_t += t2 - t1
    n = len(items)
    return {"items_per_s": n / (enc_t + step_t), "encode_s": enc_t / n, "fwd_bwd_s": step_t / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heights", type=int, nargs="+", default=[128, 256], help="HR heights of the corpora")
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--clips", type=int, default=2, help="clips per sample video")
    ap.add_argument("--items", type=int, default=24, help="items per loader measurement")
    ap.add_argument("--steps", type=int, default=12, help="training steps per step/fit measurement")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--from-json", type=Path, default=None, help="render the section from an earlier --json file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from datakit import samples, tiny
    from datakit.train import trainer as tr
    from datakit.train.cache import build_cache
    from datakit.train.data import Sampler, build_index, load_item

    torch.set_num_threads(args.threads)
    results = {}
    if args.from_json:
        results = {int(k): v | {m: v[m] | {"loader": {int(w): x for w, x in v[m]["loader"].items()}}
                                for m in ("pixels", "cache")}
                   for k, v in json.loads(args.from_json.read_text()).items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.from_json:
            samples.write_samples(tmp / "samples")
            tiny.write(tmp / "models", ["wan"])
        for h in ([] if args.from_json else args.heights):
            root = tmp / f"corpus{h}"
            build_corpus(tmp / "samples", root, h, args.frames, args.clips)
            cfg = config(tmp / "models", root, tmp / f"run{h}", args.frames, args.steps)
            index = build_index(cfg.data.roots)
            r = {"samples": sum(len(v) for v in index.values())}
            r["hr_size"] = list(load_item(Sampler(cfg, index).plan(0), cfg)["hr"].shape[1:3])
            t0 = time.perf_counter()
            made = build_cache(cfg)
            r["cache_write"] = {"write_s_per_sample": (time.perf_counter() - t0) / max(1, made["samples"]),
                          "mib_per_sample": made["bytes"] / 2 ** 20 / max(1, made["samples"])}
            for mode, c in (("pixels", cfg), ("cache", config(tmp / "models", root, tmp / f"run{h}c", args.frames,
                                                                args.steps, cached=True))):
                t = tr.Trainer(c, loader_workers=0)
                m = {"loader": {w: loader_rate(c, index, w, args.items, t.cache) for w in (0, 1, 2)}}
                s = Sampler(c, t.index)
                items = [t.load_item(s.plan(i)) for i in range(args.steps)]
                m["step"] = step_rate(t, items)
                t2 = tr.Trainer(c, loader_workers=2)
                hist = t2.fit()
                wall = sum(x["step_s"] for x in hist[1:])
                m["fit"] = {"items_per_s": (len(hist) - 1) / wall,
                            "data_wait": sum(x["data_s"] for x in hist[1:]) / wall}
                r[mode] = m
            r["frames"] = args.frames
            results[h] = r
            print(h, json.dumps(r, default=str), flush=True)

    import yaml

    demo = yaml.safe_load((REPO / "pipelines" / "demo.yaml").read_text())
    lr_stage = next((st for st in demo["stages"] if st["stage"] == "synthetic"), {})
    lr_desc = f"LR by its `{lr_stage.get('profile', '?')}` x{lr_stage.get('scale', '?')} degradations"
    machine = (f"{platform.machine()}, {psutil.cpu_count()} CPU cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, no GPU")
    lines = [
        "## Trainer: loader throughput vs the training step, with and without the latent cache (CPU)", "",
        f"Command: `.venv/bin/python bench/bench_train.py` — machine: {machine}; torch threads in the "
        f"training process: {args.threads}. Corpora: `pipelines/demo.yaml` on the real sample clips, "
        f"{args.frames}-frame clips (the stage-1 length), HR height set per row, {lr_desc} (stored losslessly); "
        "items are whole frames (no crop). `cache`: the same items from `datakit cache-latents` (bf16 latents of "
        "HR and upscaled LR, caption embeddings), written in the same run. "
        "The model is the tiny random Wan 2.1 (`datakit models tiny`): the step figures are the tiny "
        "model's (VAE and text encoding, forward, backward, AdamW on the CPU), not a real model's. Other "
        "processes may share the cores: compare rows of one run.", "",
        "| HR height x frames (first item's width) | samples | items from | loader items/s, in-process | 1 process "
        "| 2 processes | step alone items/s (encode s + fwd/bwd s) | loader (1 process) / step | loader + step "
        "items/s | data wait |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h, r in results.items():
        hh, ww = r["hr_size"]
        for mode in ("pixels", "cache"):
            m = r[mode]
            ld, st, ft = m["loader"], m["step"], m["fit"]
            lines.append(f"| {hh} x {r['frames']} ({ww}) | {r['samples']} | {mode} | {ld[0]:.2f} | {ld[1]:.2f} | "
                         f"{ld[2]:.2f} | {st['items_per_s']:.2f} ({st['encode_s']:.3f} + {st['fwd_bwd_s']:.3f}) | "
                         f"{ld[1] / st['items_per_s']:.1f}x | {ft['items_per_s']:.2f} | "
                         f"{100 * ft['data_wait']:.0f} % |")
    feeds = {(h, m): r[m]["loader"][1] / r[m]["step"]["items_per_s"] for h, r in results.items()
             for m in ("pixels", "cache")}
    worst_wait = max(r[m]["fit"]["data_wait"] for r in results.values() for m in ("pixels", "cache"))
    speed = {h: r["cache"]["fit"]["items_per_s"] / r["pixels"]["fit"]["items_per_s"] for h, r in results.items()}
    cache_cost = "; ".join(f"{h} px: {r['cache_write']['write_s_per_sample']:.2f} s and "
                           f"{r['cache_write']['mib_per_sample']:.2f} MiB per sample" for h, r in results.items())
    lines += ["", "Loader items/s count items ready for the step (decoded, LR-upscaled and cut; or read from the "
              "cache). One loader process feeds "
              + ", ".join(f"{v:.1f}x" for v in feeds.values()) + " what the step consumes (rows in order); "
              + ("at least twice everywhere" if min(feeds.values()) >= 2 else
                 "below twice in some row: give the loader more processes (data.workers)")
              + f". With 2 loader processes the training loop waited for data {100 * worst_wait:.0f} % of its time "
              "at most. Training from the cache ran at " + ", ".join(f"{v:.1f}x" for v in speed.values())
              + " the items/s of training from pixels (loader + step, per height). Writing the cache: "
              + cache_cost + ".", "",
              "GPU step time at a realistic model size (Wan 2.1 1.3B or 14B, bf16 autocast, gradient "
              "checkpointing, 21 and 77 frames) is `bench/gpu_check.py`'s; this script measures on the CPU."]
    write_section(args.doc, "train-bench", "\n".join(lines))
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, default=str, indent=2))


if __name__ == "__main__":
    main()
