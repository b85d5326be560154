# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Random draws for discrete samplers: uniforms, categorical sampling and one parallel decoding step.

Categorical sampling is exact by default: Gumbel-max in ratio form, ``argmax_y p(y) / E_y`` with
``E_y ~ Exp(1)`` drawn in float64. The ``"reference"`` precision reproduces the sampler of the JYS/SEDD reference code
(``E = 1e-6 - log(1e-6 + (1 - 1e-6) U)`` with float32 ``U`` and float32 probabilities). Its noise is truncated, which
never samples tokens much less likely than the mode and lowers the effective temperature (arXiv 2409.02908); use it
only to compare with published numbers.

Generators follow diffusers: a single ``torch.Generator`` or a list with one generator per batch row (each row then
depends on its own generator only). Noise is drawn on the generator's device and moved to the target device.
"""

from __future__ import annotations

import torch

from .processes import Transition


SAMPLING_PRECISIONS = ("float64", "reference")
GeneratorLike = torch.Generator | list[torch.Generator] | None


def _normalise_generator(generator: GeneratorLike, batch_size: int) -> GeneratorLike:
    if isinstance(generator, (list, tuple)):
        if len(generator) == 1:
            return generator[0]
        if len(generator) != batch_size:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators; it must have one per batch row ({batch_size})."
            )
        if not all(isinstance(g, torch.Generator) for g in generator):
            raise TypeError("`generator` must be a torch.Generator or a list of torch.Generator.")
        return list(generator)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, a list of them or None, got {type(generator).__name__}.")
    return generator


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    if generator is None or generator.device.type == device.type:
        return device
    if generator.device.type == "cpu":
        return torch.device("cpu")
    raise ValueError(f"Cannot draw a {device} tensor from a generator on {generator.device}.")


def uniform_noise(
    shape: tuple[int, ...],
    generator: GeneratorLike = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``U ~ Uniform[0, 1)`` of ``shape``; with a list of generators, row ``b`` comes from ``generator[b]``."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    shape = tuple(shape)
    generator = _normalise_generator(generator, shape[0] if shape else 1)
    if isinstance(generator, list):
        rows = [
            torch.rand((1,) + shape[1:], generator=g, device=_draw_device(g, device), dtype=dtype) for g in generator
        ]
        return torch.cat(rows).to(device)
    return torch.rand(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype).to(device)


def sample_categorical(
    probs: torch.Tensor, generator: GeneratorLike = None, precision: str = "float64"
) -> torch.LongTensor:
    """Sample an index along the last dim of non-negative (unnormalised) ``probs``.

    ``"float64"``: ``argmax p / E`` with ``E = -log(1 - U) ~ Exp(1)`` in float64 (exact Gumbel-max).
    ``"reference"``: ``argmax p / E`` with ``E = 1e-6 - log(1e-6 + (1 - 1e-6) U)`` in float32 (truncated noise).
    """
    if precision == "float64":
        u = uniform_noise(probs.shape, generator, probs.device, torch.float64)
        exp_noise = (-torch.log1p(-u)).clamp_min(torch.finfo(torch.float64).tiny)
        return (probs.to(torch.float64) / exp_noise).argmax(-1)
    if precision == "reference":
        u = uniform_noise(probs.shape, generator, probs.device, torch.float32)
        exp_noise = 1e-6 - torch.log(1e-6 + (1.0 - 1e-6) * u)
        return (probs.to(torch.float32) / exp_noise).argmax(-1)
    raise ValueError(f"`precision` must be one of {SAMPLING_PRECISIONS}, got {precision!r}.")


def sample_transition(
    transition: Transition, x_t: torch.LongTensor, generator: GeneratorLike = None, precision: str = "float64"
) -> torch.LongTensor:
    """Draw ``x_s`` from a :class:`~jys_schedulers.processes.Transition`, independently at every position.

    ``"float64"`` draws in two stages, a Bernoulli(``jump_prob``) per position and then the new token from
    ``target_probs`` on the positions that jump (the same law as the full kernel, with far fewer draws).
    ``"reference"`` samples the full kernel ``transition.probs(x_t)`` in one truncated-noise draw, as the reference.
    """
    if precision == "reference":
        return sample_categorical(transition.probs(x_t), generator, precision).to(x_t.dtype)
    if precision != "float64":
        raise ValueError(f"`precision` must be one of {SAMPLING_PRECISIONS}, got {precision!r}.")
    generator = _normalise_generator(generator, x_t.shape[0])
    jumps = uniform_noise(tuple(x_t.shape), generator, x_t.device) < transition.jump_prob
    x_s = x_t.clone()
    if isinstance(generator, list):
        for b, g in enumerate(generator):
            if jumps[b].any():
                x_s[b][jumps[b]] = sample_categorical(transition.target_probs[b][jumps[b]], g).to(x_t.dtype)
    elif jumps.any():
        x_s[jumps] = sample_categorical(transition.target_probs[jumps], generator).to(x_t.dtype)
    return x_s


__all__ = ["SAMPLING_PRECISIONS", "uniform_noise", "sample_categorical", "sample_transition"]
