# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Pieces shared by the benchmark scripts (`benchmark_calibration.py`, `benchmark_quality.py`): problem builders,
pipeline loading and the environment line of a benchmark page. Not part of the library; import it from a sibling
script after putting `scripts/` on `sys.path`."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jys_schedulers import JYSDiscreteScheduler


@dataclass
class Problem:
    """A denoiser with its scheduler, calibration data and a quality measure of a grid (lower is better).

    `quality(grid)` scores a grid with `scheduler`; oracle problems also accept `quality(grid, scheduler=other)` to
    score the same grid with another scheduler of the same process (e.g. the Euler sampler). `extras` holds what a
    benchmark may need beyond that (the oracle's distribution and exact denoiser).
    """

    name: str
    description: str
    denoiser: Callable[[torch.LongTensor, torch.Tensor], torch.Tensor]
    scheduler: JYSDiscreteScheduler
    data: torch.LongTensor
    quality: Callable[..., float]
    quality_name: str
    extras: dict[str, Any] = field(default_factory=dict)


def oracle_problem(
    distribution: str,
    transition: str,
    noise_schedule: str,
    *,
    vocab: int,
    seq_len: int,
    num_samples: int,
    seed: int,
    sampler: str = "tweedie",
) -> Problem:
    """Exact posterior of a small explicit distribution (METHOD.md §8); quality = exact KL(data ‖ sampler).

    The distribution is `make_oracle_distribution(distribution, vocab, seq_len, seed=0)`; the `num_samples` calibration
    sequences are drawn from it with seed `seed + 1`.
    """
    from jys_schedulers.tasks.oracle import make_oracle_distribution, sample_from_distribution
    from jys_schedulers.testing import ExactDenoiser, exact_kl

    dist = make_oracle_distribution(distribution, vocab, seq_len, seed=0)
    if transition == "absorbing":
        sched = JYSDiscreteScheduler(
            vocab_size=vocab + 1, mask_token_id=vocab, noise_schedule=noise_schedule, sampler=sampler
        )
    elif transition == "uniform":
        sched = JYSDiscreteScheduler(vocab_size=vocab, transition="uniform", noise_schedule=noise_schedule, sampler=sampler)
    else:
        raise ValueError(f"`transition` must be 'absorbing' or 'uniform', got {transition!r}.")
    oracle = ExactDenoiser(dist.sequences, dist.probs, sched.process, sched.noise_schedule)
    data = sample_from_distribution(dist.sequences, dist.probs, num_samples, seed=seed + 1)

    def quality(grid: list[float], scheduler: JYSDiscreteScheduler | None = None) -> float:
        return exact_kl(scheduler or sched, dist.sequences, dist.probs, denoiser=oracle, timesteps=grid)

    description = (
        f"exact oracle `{distribution}` (V={vocab}, L={seq_len}), {transition} process, {noise_schedule} "
        f"noise schedule, {sampler.capitalize()} sampler; {num_samples} calibration sequences"
    )
    return Problem(
        f"{distribution}/{transition}/{noise_schedule}",
        description,
        oracle,
        sched,
        data,
        quality,
        "exact KL (nats)",
        {"distribution": dist, "vocab": vocab, "seq_len": seq_len},
    )


def load_pipeline(path: str | os.PathLike | None = None):
    """`(pipe, denoiser, seq_len)` of a saved `DiscreteDiffusionPipeline` folder (default: the bundled countdown model),
    with the progress bar off. `seq_len` is the model's declared `max_seq_len` (or `None`)."""
    from jys_schedulers.assets import assets_path
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline

    folder = Path(path) if path is not None else assets_path("countdown")
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"{folder} is not a pipeline folder (no model_index.json).")
    pipe = DiscreteDiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    denoiser = pipe.denoiser()
    return pipe, denoiser, denoiser.max_seq_len


def environment_line(script: str, command: str) -> str:
    """`Written by <script> on <date>: <machine>, <cpus>, torch <version>, <threads> intra-op threads. Command: ...`."""
    return (
        f"Written by `{script}` on {datetime.date.today().isoformat()}: {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads. "
        f"Command: `{command.strip()}`."
    )


def fmt(x: float) -> str:
    """4 decimals, or scientific notation below 1e-3."""
    return f"{x:.4f}" if x >= 1e-3 else f"{x:.2e}"


__all__ = ["Problem", "oracle_problem", "load_pipeline", "environment_line", "fmt"]
