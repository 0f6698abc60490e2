"""The ODE solver ``datakit upscale`` samples with: a diffusers scheduler in flow-matching mode.

The paper samples with 50 PNDM steps (§4.1.1). diffusers' ``PNDMScheduler`` is the
pseudo-linear multistep solver for DDPM noise/v-prediction models on a β schedule; it has no
flow-matching mode and cannot step the flow velocity a Wan-based UniMMVSR predicts. So the
solver is configurable (``inference.sampler`` in the training config, ``--sampler`` on the
command line) and defaults to the base model's own scheduler (for Wan 2.1
``UniPCMultistepScheduler`` with flow sigmas: a multistep solver like PNDM, and the one the
T2V model is sampled with), at the paper's timestep shift (``inference.shift``, 1.0).

Any diffusers scheduler that can run in flow mode is accepted:

* classes with ``use_flow_sigmas`` / ``flow_shift`` (UniPC, DPM-Solver++, DEIS, SA-Solver):
  built with ``use_flow_sigmas=True``, ``prediction_type="flow_prediction"`` and the shift as
  ``flow_shift``;
* the ``FlowMatch*`` classes (Euler, Heun, ...): the shift as ``shift``.

The scheduler starts from the base model's scheduler config (``num_train_timesteps`` etc.),
then the sampler's ``settings``, then the flow settings above, which always win.
"""
from __future__ import annotations

import inspect

from .config import SamplerConfig


class SamplerError(ValueError):
    """A configured sampler is not a diffusers scheduler that can step a flow-matching model."""


def _flow_kind(cls) -> str:
    params = inspect.signature(cls.__init__).parameters
    if "use_flow_sigmas" in params and "flow_shift" in params:
        return "flow_sigmas"
    if cls.__name__.startswith("FlowMatch") and "shift" in params:
        return "flow_match"
    raise SamplerError(f"inference.sampler.scheduler {cls.__name__}: no flow-matching mode (the model predicts a "
                       "flow velocity); use one with use_flow_sigmas (UniPCMultistepScheduler, "
                       "DPMSolverMultistepScheduler, ...) or a FlowMatch* scheduler")


def scheduler_class(name: str, base_config: dict):
    """The diffusers class named ``name`` (``base``: the class of the base model's scheduler)."""
    import diffusers

    cls_name = base_config.get("_class_name") if name == "base" else name
    cls = getattr(diffusers, cls_name or "", None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise SamplerError(f"inference.sampler.scheduler {name!r}: not a diffusers scheduler class")
    return cls


def scheduler_config(sampler: SamplerConfig, base_config: dict, shift: float) -> tuple[type, dict]:
    """(class, constructor config) of the configured sampler at timestep shift ``shift``."""
    cls = scheduler_class(sampler.scheduler, base_config)
    kind = _flow_kind(cls)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in sampler.settings if k not in params)
    if unknown:
        raise SamplerError(f"inference.sampler.settings: {cls.__name__} has no setting(s) {', '.join(unknown)}")
    cfg = {k: v for k, v in base_config.items() if not k.startswith("_") and k in params}
    cfg.update(sampler.settings)
    if kind == "flow_sigmas":
        cfg.update(use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=float(shift))
    else:
        cfg.update(shift=float(shift))
    return cls, cfg


def make_sampler(sampler: SamplerConfig, base_config: dict, steps: int, shift: float, device=None):
    """A fresh scheduler of the configured class with ``set_timesteps(steps)`` done."""
    cls, cfg = scheduler_config(sampler, base_config, shift)
    sched = cls.from_config(cfg)
    sched.set_timesteps(steps, device=device)
    return sched


def describe(scheduler) -> dict:
    """Class and the settings that decide the trajectory, for the run's record."""
    c = scheduler.config
    keys = ("prediction_type", "use_flow_sigmas", "flow_shift", "shift", "solver_order", "algorithm_type",
            "solver_type", "num_train_timesteps")
    return {"class": type(scheduler).__name__, **{k: c[k] for k in keys if k in c}}
