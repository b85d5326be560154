# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Calibration data: per-sequence coupled noise, batching and sharding across processes, counted model calls.

- Every calibration sequence ``n`` (its global index in ``data``) gets its own generator seeded by ``(seed, n)``
  (through :class:`numpy.random.SeedSequence`), which draws the coupled uniforms of ``process.add_noise`` once for all
  times. Results therefore do not depend on the batch size used for model calls, nor on how sequences are sharded.
- Global batch ``k`` holds sequences ``[k·B, (k+1)·B)``; with ``P`` processes, process ``p`` takes the ``p``-th of
  ``P`` contiguous parts of it (possibly empty). Statistics are summed across processes with ``accelerator.reduce``.
- A *sequence-forward* is one model call on one sequence; :class:`CountingDenoiser` counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..processes import AbsorbingProcess, DiscreteProcess
from .objectives import model_posterior


Denoiser = Callable[[torch.LongTensor, torch.Tensor], torch.Tensor]


def sequence_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed for calibration sequence ``index`` under the run's ``seed``."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def sequence_noise(
    seed: int, indices: torch.Tensor, seq_len: int, channels: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Coupled uniforms for the sequences ``indices``: shape `(B, L)` (one channel) or `(B, L, channels)`, float64."""
    shape = (seq_len,) if channels == 1 else (seq_len, channels)
    rows = [
        torch.rand(shape, generator=torch.Generator().manual_seed(sequence_seed(seed, int(n))), dtype=torch.float64)
        for n in indices.tolist()
    ]
    empty = torch.empty((0, *shape), dtype=torch.float64)
    return (torch.stack(rows) if rows else empty).to(device)


@dataclass
class LocalBatch:
    """This process's part of one global calibration batch."""

    index: int
    sequence_ids: torch.Tensor  # global indices, (b,)
    x0: torch.LongTensor  # (b, L) on the calibration device
    noise: torch.Tensor  # (b, L) or (b, L, 2), float64


class CalibrationData:
    """Clean calibration sequences split into global batches and sharded over the accelerator's processes.

    Args:
        data (`torch.LongTensor` of shape `(N, L)`): clean sequences (validated by the caller).
        batch_size (`int`): sequences per global batch (all processes together).
        seed (`int`): seeds the per-sequence noise.
        process (`DiscreteProcess`): gives the number of noise channels.
        accelerator (`accelerate.Accelerator`, *optional*): the process group; ``None`` means one process.
        device (`torch.device`): where model inputs live.
    """

    def __init__(self, data, batch_size, seed, process: DiscreteProcess, accelerator=None, device=None):
        self.data, self.batch_size, self.seed, self.process = data, batch_size, seed, process
        self.accelerator = accelerator
        self.rank = 0 if accelerator is None else accelerator.process_index
        self.world = 1 if accelerator is None else accelerator.num_processes
        self.device = torch.device(device) if device is not None else data.device
        self.num_sequences, self.seq_len = data.shape
        self.num_batches = -(-self.num_sequences // batch_size)
        self._noise: dict[int, torch.Tensor] = {}

    def local_batch(self, index: int) -> LocalBatch:
        """Sequences of global batch ``index`` handled by this process, with their coupled noise.

        The noise is drawn once per batch and kept (as much memory as this process's share of ``data``, per noise
        channel, in float64), since the interval searches pass over the data once per probe.
        """
        ids = torch.arange(index * self.batch_size, min((index + 1) * self.batch_size, self.num_sequences))
        ids = torch.tensor_split(ids, self.world)[self.rank]
        if index not in self._noise:
            self._noise[index] = sequence_noise(self.seed, ids, self.seq_len, self.process.noise_channels, self.device)
        return LocalBatch(index, ids, self.data[ids].to(self.device), self._noise[index])

    def batches(self, start: int = 0) -> Iterator[LocalBatch]:
        for index in range(start, self.num_batches):
            yield self.local_batch(index)

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum of ``tensor`` over processes (identity for one process); returned on the CPU."""
        if self.world == 1:
            return tensor.cpu()
        return self.accelerator.reduce(tensor.to(self.accelerator.device), reduction="sum").cpu()


class CountingDenoiser:
    """Calls the denoiser at one time for a batch, validates its output and returns the posterior; counts forwards.

    Inputs are noised with ``process.add_noise(x0, α(t), noise)``; the time is passed as a float32 `(B,)` tensor, the
    dtype of ``scheduler.timesteps`` (calibration times are float32-representable, so model and statistics agree).
    """

    def __init__(self, denoiser: Denoiser, scheduler):
        self.denoiser, self.scheduler = denoiser, scheduler
        self.process: DiscreteProcess = scheduler.process
        self.noise_schedule = scheduler.noise_schedule
        self.prediction_type: str = scheduler.config.prediction_type
        self.sequence_forwards = 0

    def noised(self, batch: LocalBatch, t: float) -> torch.LongTensor:
        return self.process.add_noise(batch.x0, self.noise_schedule.alpha(t), batch.noise)

    def posterior(self, x_t: torch.LongTensor, t: float) -> torch.Tensor:
        """``p_θ(x0 | x_t)`` (float64) from one model call on the whole batch at time ``t``."""
        times = torch.full((x_t.shape[0],), t, dtype=torch.float32, device=x_t.device)
        with torch.no_grad():
            output = self.denoiser(x_t, times)
        self.sequence_forwards += x_t.shape[0]
        expected = (*x_t.shape, self.process.vocab_size)
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(
                f"`denoiser` must return a tensor of shape {expected} (batch, seq_len, vocab_size), got {shape}."
            )
        if not output.dtype.is_floating_point:
            raise ValueError(f"`denoiser` must return floating-point outputs, got dtype {output.dtype}.")
        if torch.isnan(output).any() or torch.isposinf(output).any():
            raise ValueError(f"`denoiser` returned NaN or +inf at t={t!r}.")
        alpha = float(self.noise_schedule.alpha(t))
        return model_posterior(self.process, output, x_t, alpha, self.prediction_type)


def check_data(data: object, process: DiscreteProcess, seq_len: int | None, world: int) -> torch.LongTensor:
    """Validate the calibration sequences (see :func:`~jys_schedulers.calibration.calibrate`)."""
    if not isinstance(data, torch.Tensor) or data.dim() != 2:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"`data` must be a LongTensor of shape (num_sequences, seq_len), got {shape}.")
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise ValueError(f"`data` must hold integer token ids, got dtype {data.dtype}.")
    num, length = data.shape
    if seq_len is not None and length != seq_len:
        relation = "shorter" if length < seq_len else "longer"
        raise ValueError(
            f"`data` sequences have length {length}, {relation} than the model's sequence length `seq_len`={seq_len}."
        )
    if num < max(world, 1):
        raise ValueError(f"`data` has {num} sequences, fewer than the {world} process(es) that share it.")
    vocab = process.vocab_size
    if int(data.min()) < 0 or int(data.max()) >= vocab:
        low, high = int(data.min()), int(data.max())
        raise ValueError(f"`data` token ids must lie in [0, {vocab}), got range [{low}, {high}].")
    if isinstance(process, AbsorbingProcess) and bool((data == process.mask_token_id).any()):
        raise ValueError(f"`data` must be clean sequences, but it contains the mask token {process.mask_token_id}.")
    return data.long()


__all__ = ["sequence_seed", "sequence_noise", "LocalBatch", "CalibrationData", "CountingDenoiser", "check_data"]
