"""Ray Train on two workers (gloo, CPU) in a process of its own, for ``test_train_dist``.

``python tests/dist_runs.py JOB.json`` starts a local Ray, trains each config of the job's ``runs``
in turn on one worker group and writes what each worker saw to ``result`` (``{rank}`` in the name).
The tests never run Ray Train in their own process: after it, a later in-process Ray call there could
wait forever (``ray.cluster_resources()``, seen in the test process only, never in a `datakit` command).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def train_runs(config: dict) -> None:
    """Ray Train worker loop: train each config of ``config["runs"]`` in turn on this worker group."""
    import ray.train
    import torch

    from datakit.train.config import TrainConfig
    from datakit.train.control import StopRequest
    from datakit.train.trainer import Trainer

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    out = {}
    for name, doc in config["runs"]:
        cfg = TrainConfig.model_validate(doc)
        t = Trainer(cfg, rank=rank, world=world, device="cpu")
        start = t.step
        hist = t.fit(stop=StopRequest(cfg.output))
        out[name] = {"start": start, "step": t.step, "interrupted": t.interrupted,
                     "loss": [r["loss"] for r in hist], "grad_norm": [r["grad_norm"] for r in hist],
                     "local_numel": sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel()
                                        for p in t.model.parameters()),
                     "numel": sum(p.numel() for p in t.model.parameters())}
        torch.distributed.barrier()
    Path(config["result"].format(rank=rank)).write_text(json.dumps(out))


def main(job_file: str) -> int:
    from datakit.rayinit import init_ray
    from datakit.train.config import TrainConfig
    from datakit.train.trainer import ray_trainer

    job = json.loads(Path(job_file).read_text())
    init_ray(num_cpus=2)
    trainer, _ = ray_trainer(TrainConfig.model_validate(job["runs"][0][1]), loop=train_runs, loop_config=job)
    result = trainer.fit()
    if result.error is not None:
        print(f"training failed: {result.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
