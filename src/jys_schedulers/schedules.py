# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Sampling time grids: heuristic grids, validation of stored/custom grids, and the token-quota export.

Convention (used everywhere in this package): an ``N``-step grid is the list of the ``N`` decreasing times
``1 >= t_0 > t_1 > … > t_{N-1} >= t_min`` at which the denoiser is called. Step ``i`` moves from ``t_i`` to
``t_{i+1}``, and the last step moves from ``t_{N-1}`` to clean data (``t = 0``, ``α = 1``): it is the final denoising
step. So ``N`` steps cost exactly ``N`` model calls (the reference code spends ``N + 1``: ``N`` τ-leaping calls plus a
final denoising call at ``t_min``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from .noise_schedules import NoiseSchedule


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_timesteps(timesteps: Sequence[float] | torch.Tensor, t_min: float = 0.0, name: str = "timesteps") -> list[float]:
    """Check a grid and return it as a list of floats.

    It must be a non-empty 1-D sequence of finite numbers, strictly decreasing, inside ``[t_min, 1]`` (and ``> 0``).
    """
    if isinstance(timesteps, torch.Tensor):
        if timesteps.dim() != 1:
            raise ValueError(f"`{name}` must be 1-D, got a tensor of shape {tuple(timesteps.shape)}.")
        if timesteps.is_complex() or timesteps.dtype == torch.bool:
            raise TypeError(f"`{name}` must hold real numbers, got dtype {timesteps.dtype}.")
        values = [float(v) for v in timesteps.detach().cpu().tolist()]
    elif isinstance(timesteps, (list, tuple)):
        if not all(_is_real(v) for v in timesteps):
            bad = next(v for v in timesteps if not _is_real(v))
            raise TypeError(f"`{name}` must hold real numbers, got {bad!r} of type {type(bad).__name__}.")
        values = [float(v) for v in timesteps]
    else:
        raise TypeError(f"`{name}` must be a list of floats or a 1-D tensor, got {type(timesteps).__name__}.")
    if not values:
        raise ValueError(f"`{name}` must contain at least one time.")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"`{name}` must be finite, got {values}.")
    lower = max(float(t_min), 0.0)
    if any(v > 1.0 or v < lower or v <= 0.0 for v in values):
        raise ValueError(f"`{name}` must lie in [{lower:g}, 1] and be > 0, got {values}.")
    if any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"`{name}` must be strictly decreasing, got {values}.")
    return values


def _check_num_steps(num_inference_steps: object) -> int:
    if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool):
        raise TypeError(f"`num_inference_steps` must be an int, got {type(num_inference_steps).__name__}.")
    if num_inference_steps < 1:
        raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}.")
    return num_inference_steps


def uniform_timesteps(num_inference_steps: int, noise_schedule: NoiseSchedule | None = None) -> list[float]:
    """Equal steps in time: ``t_i = 1 - i/N`` (the reference's uniform baseline; equal expected unmasking per step
    under the log-linear schedule). ``noise_schedule`` is accepted for a uniform signature and unused."""
    n = _check_num_steps(num_inference_steps)
    return [1.0 - i / n for i in range(n)]


def cosine_timesteps(num_inference_steps: int, noise_schedule: NoiseSchedule) -> list[float]:
    """MaskGIT's cosine grid: masked fraction ``(1 - α(t_i)) = (1 - α(1)) cos(π i / 2N)``, mapped through the
    schedule's inverse, so few tokens are revealed early and many late. Log-linear: ``t_i = cos(π i / 2N)``."""
    n = _check_num_steps(num_inference_steps)
    top = 1.0 - float(noise_schedule.alpha(1.0))
    fractions = torch.tensor([top * math.cos(0.5 * math.pi * i / n) for i in range(n)], dtype=torch.float64)
    times = noise_schedule.inverse(1.0 - fractions).tolist()
    times[0] = 1.0
    return times


HEURISTIC_GRIDS: dict[str, Callable[[int, NoiseSchedule], list[float]]] = {
    "uniform": uniform_timesteps,
    "cosine": cosine_timesteps,
}


def heuristic_timesteps(name: str, num_inference_steps: int, noise_schedule: NoiseSchedule) -> list[float]:
    """A named heuristic grid (``"uniform"`` or ``"cosine"``)."""
    if name not in HEURISTIC_GRIDS:
        raise ValueError(f"`schedule` must be one of {sorted(HEURISTIC_GRIDS)} (or 'jys'), got {name!r}.")
    return HEURISTIC_GRIDS[name](num_inference_steps, noise_schedule)


def step_boundaries(timesteps: Sequence[float]) -> list[float]:
    """The ``N + 1`` step boundaries ``[t_0, …, t_{N-1}, 0]`` of an ``N``-step grid."""
    return [float(t) for t in timesteps] + [0.0]


def _parse_step_count(key: object) -> int | None:
    """``16`` or ``"16"`` -> 16; anything else -> None."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    return None


def validate_schedule_dict(schedules: Mapping[object, object] | None, t_min: float = 0.0) -> dict[str, list[float]]:
    """Check a ``{step count: grid}`` mapping (e.g. ``jys_schedules`` from a hand-edited config) and normalise it to
    ``{"N": [floats]}`` sorted by ``N``. Keys must be positive integers (or their decimal strings) and each grid must
    hold exactly ``N`` valid times."""
    if schedules is None:
        return {}
    if not isinstance(schedules, Mapping):
        raise TypeError(f"`jys_schedules` must be a mapping from step count to a list of times, got {type(schedules).__name__}.")
    out: dict[int, list[float]] = {}
    for key, grid in schedules.items():
        n = _parse_step_count(key)
        if n is None or n < 1:
            raise ValueError(f"`jys_schedules` keys must be positive step counts, got {key!r}.")
        if not isinstance(grid, (list, tuple)):
            raise TypeError(f"`jys_schedules[{key!r}]` must be a list of floats, got {type(grid).__name__}.")
        times = validate_timesteps(grid, t_min=t_min, name=f"jys_schedules[{key!r}]")
        if len(times) != n:
            raise ValueError(f"`jys_schedules[{key!r}]` must hold exactly {n} times, got {len(times)}.")
        if n in out:
            raise ValueError(f"`jys_schedules` has two grids for {n} steps.")
        out[n] = times
    return {str(n): out[n] for n in sorted(out)}


def masked_fraction(timesteps: Sequence[float], noise_schedule: NoiseSchedule) -> list[float]:
    """Expected masked fraction at each step boundary, normalised to 1 at ``t_0``: ``(1-α(t))/(1-α(t_0))``, ending at 0."""
    bounds = torch.tensor(step_boundaries(timesteps), dtype=torch.float64)
    masked = 1.0 - noise_schedule.alpha(bounds)
    masked[-1] = 0.0
    return (masked / masked[0]).tolist()


def timesteps_to_token_quota(timesteps: Sequence[float], seq_len: int, noise_schedule: NoiseSchedule) -> list[int]:
    """Integer tokens to reveal per step for an absorbing model (METHOD.md §10).

    Step ``i`` reveals ``k_i ≈ L (m_i - m_{i+1})`` tokens, where ``m`` is :func:`masked_fraction`. The cumulative sums are
    rounded (``round(L (1 - m_{i+1}))``), so the quotas are non-negative and sum to exactly ``L``; LLaDA-style samplers
    that "transfer k tokens per step" can use them in place of an even split.
    """
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise ValueError(f"`seq_len` must be a positive int, got {seq_len!r}.")
    times = validate_timesteps(timesteps)
    cumulative = [round(seq_len * (1.0 - m)) for m in masked_fraction(times, noise_schedule)]
    return [b - a for a, b in zip(cumulative, cumulative[1:])]


__all__ = [
    "validate_timesteps",
    "uniform_timesteps",
    "cosine_timesteps",
    "HEURISTIC_GRIDS",
    "heuristic_timesteps",
    "step_boundaries",
    "validate_schedule_dict",
    "masked_fraction",
    "timesteps_to_token_quota",
]
