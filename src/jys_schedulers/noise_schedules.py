# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Noise schedules for discrete diffusion: total noise, its rate, survival probability and the inverse.

Time runs over ``t ∈ [0, 1]``; ``t = 1`` is (almost) pure noise and ``t = 0`` is data. A schedule is an object with

- ``total_noise(t)``  ``σ̄(t)``, increasing, ``σ̄(0) ≈ 0``;
- ``rate(t)``         ``σ(t) = dσ̄/dt``;
- ``alpha(t)``        survival probability ``α(t) = exp(-σ̄(t))`` (the chance a token is still clean);
- ``inverse(alpha)``  the time ``t`` with ``α(t) = alpha``;
- ``hazard(t)``       ``c(t) = σ(t) α(t) / (1 - α(t)) = d/dt log(1 - α(t))``, the rate at which a masked token is
  revealed by the exact reverse absorbing process; it weights the posterior-KL cost of METHOD.md §5.

All methods accept Python floats or tensors and compute in float64; tensors keep their shape and device.
"""

from __future__ import annotations

import math
from typing import Any

import torch


TensorLike = torch.Tensor | float


def _as_float64(t: TensorLike) -> torch.Tensor:
    """Return ``t`` as a float64 tensor (same device when ``t`` is a tensor)."""
    if isinstance(t, torch.Tensor):
        return t.to(torch.float64)
    return torch.tensor(float(t), dtype=torch.float64)


class NoiseSchedule:
    """Base class: subclasses implement ``total_noise``, ``rate`` and ``inverse``."""

    name: str = ""

    def total_noise(self, t: TensorLike) -> torch.Tensor:
        """``σ̄(t)``."""
        raise NotImplementedError

    def rate(self, t: TensorLike) -> torch.Tensor:
        """``σ(t) = dσ̄/dt``."""
        raise NotImplementedError

    def inverse(self, alpha: TensorLike) -> torch.Tensor:
        """Time ``t`` with ``α(t) = alpha`` (clamped to ``[0, 1]``)."""
        raise NotImplementedError

    def alpha(self, t: TensorLike) -> torch.Tensor:
        """``α(t) = exp(-σ̄(t))``."""
        return torch.exp(-self.total_noise(t))

    def hazard(self, t: TensorLike) -> torch.Tensor:
        """``c(t) = σ(t) α(t) / (1 - α(t))``, computed as ``σ(t) / expm1(σ̄(t))`` for accuracy at small ``t``."""
        return self.rate(t) / torch.expm1(self.total_noise(t))

    def params(self) -> dict[str, Any]:
        """The constructor keyword arguments (JSON-serialisable)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params() == other.params()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params().items()))))


def _check_eps(eps: float, name: str = "eps") -> float:
    if not isinstance(eps, (int, float)) or not 0.0 <= float(eps) < 1.0 or math.isnan(float(eps)):
        raise ValueError(f"`{name}` must be a float in [0, 1), got {eps!r}.")
    return float(eps)


class LogLinearSchedule(NoiseSchedule):
    """Log-linear schedule (MDLM/SEDD default): ``σ̄(t) = -log(1 - (1-ε) t)``, so ``α(t) = 1 - (1-ε) t``.

    ``σ(t) = (1-ε) / (1 - (1-ε) t)``, ``t(α) = (1 - α) / (1 - ε)``; the masking probability is linear in ``t``.

    Args:
        eps (`float`, defaults to 1e-3): keeps ``α(1) = ε > 0`` so ``σ̄(1)`` is finite.
    """

    name = "loglinear"

    def __init__(self, eps: float = 1e-3):
        self.eps = _check_eps(eps)

    def total_noise(self, t: TensorLike) -> torch.Tensor:
        return -torch.log1p(-(1.0 - self.eps) * _as_float64(t))

    def rate(self, t: TensorLike) -> torch.Tensor:
        return (1.0 - self.eps) / (1.0 - (1.0 - self.eps) * _as_float64(t))

    def alpha(self, t: TensorLike) -> torch.Tensor:
        return 1.0 - (1.0 - self.eps) * _as_float64(t)

    def inverse(self, alpha: TensorLike) -> torch.Tensor:
        return ((1.0 - _as_float64(alpha)) / (1.0 - self.eps)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        return {"eps": self.eps}


class LinearSchedule(NoiseSchedule):
    """Total noise linear in time (MDLM's ``LinearNoise``): ``σ̄(t) = σ_min + t (σ_max - σ_min)``.

    ``σ(t) = σ_max - σ_min``, ``α(t) = exp(-σ̄(t))``, ``t(α) = (-log α - σ_min) / (σ_max - σ_min)``.
    (A schedule linear in ``α`` is the log-linear one.)

    Args:
        sigma_min (`float`, defaults to 0.0), sigma_max (`float`, defaults to 10.0).
    """

    name = "linear"

    def __init__(self, sigma_min: float = 0.0, sigma_max: float = 10.0):
        if not 0.0 <= float(sigma_min) < float(sigma_max) < float("inf"):
            raise ValueError(
                f"`sigma_min`/`sigma_max` must satisfy 0 <= sigma_min < sigma_max < inf, got {sigma_min!r}, {sigma_max!r}."
            )
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def total_noise(self, t: TensorLike) -> torch.Tensor:
        return self.sigma_min + _as_float64(t) * (self.sigma_max - self.sigma_min)

    def rate(self, t: TensorLike) -> torch.Tensor:
        return torch.full_like(_as_float64(t), self.sigma_max - self.sigma_min)

    def inverse(self, alpha: TensorLike) -> torch.Tensor:
        return ((-torch.log(_as_float64(alpha)) - self.sigma_min) / (self.sigma_max - self.sigma_min)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class CosineSchedule(NoiseSchedule):
    """Cosine schedule (MDLM's ``CosineNoise``): ``α(t) = ε + (1-ε) cos(π t / 2)``, ``σ̄(t) = -log α(t)``.

    ``σ(t) = (1-ε) (π/2) sin(π t/2) / α(t)``, ``t(α) = (2/π) arccos((α - ε) / (1 - ε))``.

    Args:
        eps (`float`, defaults to 1e-3): the floor ``α(1) = ε``.
    """

    name = "cosine"

    def __init__(self, eps: float = 1e-3):
        self.eps = _check_eps(eps)

    def alpha(self, t: TensorLike) -> torch.Tensor:
        return self.eps + (1.0 - self.eps) * torch.cos(0.5 * math.pi * _as_float64(t))

    def total_noise(self, t: TensorLike) -> torch.Tensor:
        return -torch.log(self.alpha(t))

    def rate(self, t: TensorLike) -> torch.Tensor:
        t = _as_float64(t)
        return (1.0 - self.eps) * 0.5 * math.pi * torch.sin(0.5 * math.pi * t) / self.alpha(t)

    def hazard(self, t: TensorLike) -> torch.Tensor:
        # c = -α'/(1-α) with 1-α = (1-ε)(1 - cos(πt/2)) = 2(1-ε) sin²(πt/4): exact at small t.
        t = _as_float64(t)
        return 0.5 * math.pi * torch.sin(0.5 * math.pi * t) / (2.0 * torch.sin(0.25 * math.pi * t) ** 2)

    def inverse(self, alpha: TensorLike) -> torch.Tensor:
        x = ((_as_float64(alpha) - self.eps) / (1.0 - self.eps)).clamp(-1.0, 1.0)
        return (2.0 / math.pi * torch.arccos(x)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        return {"eps": self.eps}


class GeometricSchedule(NoiseSchedule):
    """Geometric schedule (SEDD's ``GeometricNoise``): ``σ̄(t) = σ_min^{1-t} σ_max^t``.

    ``σ(t) = σ̄(t) log(σ_max / σ_min)``, ``t(α) = log(-log α / σ_min) / log(σ_max / σ_min)``.
    Note ``α(0) = exp(-σ_min) < 1``: the final denoising step still maps to clean data (see ``processes``).

    Args:
        sigma_min (`float`, defaults to 1e-4), sigma_max (`float`, defaults to 20.0).
    """

    name = "geometric"

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0):
        if not 0.0 < float(sigma_min) < float(sigma_max) < float("inf"):
            raise ValueError(
                f"`sigma_min`/`sigma_max` must satisfy 0 < sigma_min < sigma_max < inf, got {sigma_min!r}, {sigma_max!r}."
            )
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def total_noise(self, t: TensorLike) -> torch.Tensor:
        t = _as_float64(t)
        return self.sigma_min ** (1.0 - t) * self.sigma_max**t

    def rate(self, t: TensorLike) -> torch.Tensor:
        return self.total_noise(t) * math.log(self.sigma_max / self.sigma_min)

    def inverse(self, alpha: TensorLike) -> torch.Tensor:
        sigma_bar = -torch.log(_as_float64(alpha))
        return (torch.log(sigma_bar / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)).clamp(0.0, 1.0)

    def params(self) -> dict[str, Any]:
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


NOISE_SCHEDULES: dict[str, type[NoiseSchedule]] = {
    cls.name: cls for cls in (LogLinearSchedule, LinearSchedule, CosineSchedule, GeometricSchedule)
}


def get_noise_schedule(name: str, **params: Any) -> NoiseSchedule:
    """Build a schedule by name (``"loglinear"``, ``"linear"``, ``"cosine"``, ``"geometric"``) with its parameters."""
    if name not in NOISE_SCHEDULES:
        raise ValueError(f"`noise_schedule` must be one of {sorted(NOISE_SCHEDULES)}, got {name!r}.")
    cls = NOISE_SCHEDULES[name]
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"Invalid parameters {params!r} for noise schedule {name!r}: {err}") from None


__all__ = [
    "NoiseSchedule",
    "LogLinearSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "GeometricSchedule",
    "NOISE_SCHEDULES",
    "get_noise_schedule",
]
