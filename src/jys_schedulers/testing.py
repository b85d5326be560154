# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Ground truth for discrete samplers: an exact denoiser and the exact output law of a sampler (METHOD.md §8).

For a small explicit data distribution ``p0`` (a table of sequences with probabilities), the true clean-token posterior
of every position is

    p(x0_l = v | x_t) ∝ Σ_{x0: x0_l = v} p0(x0) Π_j q_{t|0}(x_t^j | x0^j).

:class:`ExactDenoiser` returns it as ``x0`` logits (or as log concrete scores), so a sampler driven by it makes no
learning error: what remains is the compounding decoding error of parallel decoding. :func:`exact_sampler_distribution`
propagates the full state distribution (all ``V^L`` sequences) through each step's per-position product kernel, exactly
as :meth:`JYSDiscreteScheduler.step_transition` defines it, giving the exact law of the samples and
``KL(p0 ‖ p_sampler)`` for any grid.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch

from .noise_schedules import NoiseSchedule
from .processes import AbsorbingProcess, DiscreteProcess


Denoiser = Callable[[torch.LongTensor, torch.Tensor], torch.Tensor]


def _check_distribution(sequences: torch.Tensor, probs: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(sequences, torch.Tensor) or sequences.dim() != 2 or sequences.dtype.is_floating_point:
        raise ValueError("`sequences` must be an integer tensor of shape (num_sequences, seq_len).")
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.shape != (sequences.shape[0],):
        raise ValueError(f"`probs` must have shape ({sequences.shape[0]},), got {tuple(probs.shape)}.")
    if (probs < 0).any() or not math.isclose(float(probs.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"`probs` must be non-negative and sum to 1, got sum {float(probs.sum())}.")
    if sequences.numel() and (int(sequences.min()) < 0 or int(sequences.max()) >= vocab_size):
        raise ValueError(f"`sequences` token ids must lie in [0, {vocab_size}).")
    return sequences.long(), probs


class ExactDenoiser:
    """
    The exact posterior denoiser of an explicit data distribution, callable as ``(input_ids, t) -> output``.

    Args:
        sequences (`torch.LongTensor` of shape `(K, L)`): the support of the data distribution.
        probs (`torch.Tensor` of shape `(K,)`): their probabilities (sum to 1).
        process (`DiscreteProcess`): the corruption process (absorbing data must not contain the mask id).
        noise_schedule (`NoiseSchedule`): maps times to survival probabilities.
        prediction_type (`str`, defaults to `"x0"`): `"x0"` returns log-posteriors over clean tokens (mask column
            `-inf`); `"score"` returns log concrete scores ``log q_t(y)/q_t(x_t)``.

    States that no data sequence can produce (reachable by an erring sampler) get the posterior of the data sequences
    that disagree with them at the fewest positions, so the oracle is defined everywhere and exact where ``q_t > 0``.
    """

    def __init__(
        self,
        sequences: torch.LongTensor,
        probs: torch.Tensor,
        process: DiscreteProcess,
        noise_schedule: NoiseSchedule,
        prediction_type: str = "x0",
    ):
        self.sequences, self.probs = _check_distribution(sequences, probs, process.vocab_size)
        if isinstance(process, AbsorbingProcess) and (self.sequences == process.mask_token_id).any():
            raise ValueError("`sequences` must not contain the mask token for an absorbing process.")
        if prediction_type not in ("x0", "score"):
            raise ValueError(f"`prediction_type` must be 'x0' or 'score', got {prediction_type!r}.")
        self.process, self.noise_schedule, self.prediction_type = process, noise_schedule, prediction_type
        self.vocab_size = process.vocab_size
        self.seq_len = self.sequences.shape[1]
        self._onehot = torch.nn.functional.one_hot(self.sequences, self.vocab_size).to(torch.float64)  # (K, L, V)
        self.num_calls = 0

    def posterior(self, input_ids: torch.LongTensor, t: torch.Tensor | float) -> torch.Tensor:
        """``p(x0_l = v | x_t)`` of shape `(B, L, V)`, float64."""
        if input_ids.dim() != 2 or input_ids.shape[1] != self.seq_len:
            raise ValueError(f"`input_ids` must have shape (batch, {self.seq_len}), got {tuple(input_ids.shape)}.")
        x_t = input_ids.long().cpu()
        times = torch.as_tensor(t, dtype=torch.float64).cpu().reshape(-1)
        times = times.expand(x_t.shape[0]) if times.numel() == 1 else times
        post = torch.empty(x_t.shape[0], self.seq_len, self.vocab_size, dtype=torch.float64)
        for time in times.unique():
            rows = (times == time).nonzero().squeeze(1)
            kernel = self.process.forward_probs(self.sequences, self.noise_schedule.alpha(time))  # (K, L, V)
            index = x_t[rows].unsqueeze(1).expand(-1, self.sequences.shape[0], -1).unsqueeze(-1)  # (b, K, L, 1)
            lik = kernel.unsqueeze(0).expand(rows.numel(), -1, -1, -1).gather(-1, index).squeeze(-1)  # (b, K, L)
            mismatches = (lik == 0).sum(-1)  # (b, K)
            log_lik = torch.where(lik > 0, lik.log(), torch.zeros_like(lik)).sum(-1) + self.probs.log()
            fewest = torch.where(self.probs > 0, mismatches, self.seq_len + 1).min(-1, keepdim=True).values
            log_lik = torch.where(mismatches == fewest, log_lik, torch.full_like(log_lik, -torch.inf))
            weights = torch.softmax(log_lik, dim=-1)  # (b, K)
            post[rows] = torch.einsum("bk,klv->blv", weights, self._onehot)
        return post.to(input_ids.device)

    def __call__(self, input_ids: torch.LongTensor, t: torch.Tensor | float) -> torch.Tensor:
        self.num_calls += input_ids.shape[0]
        post = self.posterior(input_ids, t)
        if self.prediction_type == "x0":
            return post.log()
        alpha = self.noise_schedule.alpha(torch.as_tensor(t, dtype=torch.float64, device=input_ids.device))
        alpha = alpha.reshape(-1, 1, 1) if alpha.dim() else alpha
        return self.process.score_from_x0(post, input_ids.long(), alpha).log()


def enumerate_states(vocab_size: int, seq_len: int) -> torch.LongTensor:
    """All ``V^L`` sequences, row ``i`` being ``i`` written in base ``V`` (first position most significant)."""
    if vocab_size**seq_len > 2_000_000:
        raise ValueError(f"{vocab_size}^{seq_len} states are too many to enumerate exactly (max 2,000,000).")
    digits = torch.arange(vocab_size**seq_len).unsqueeze(1) // vocab_size ** torch.arange(seq_len - 1, -1, -1)
    return digits % vocab_size


def state_index(sequences: torch.LongTensor, vocab_size: int) -> torch.LongTensor:
    """Inverse of :func:`enumerate_states`."""
    powers = vocab_size ** torch.arange(sequences.shape[-1] - 1, -1, -1, device=sequences.device)
    return (sequences.long() * powers).sum(-1)


def exact_sampler_distribution(
    scheduler,
    denoiser: Denoiser,
    seq_len: int,
    num_inference_steps: int | None = None,
    timesteps: Sequence[float] | None = None,
    schedule: str | None = None,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """
    Exact law of the sequences produced by ``scheduler`` driven by ``denoiser`` (any ``(input_ids, t) -> output``
    callable matching the scheduler's `prediction_type`), over all ``V^L`` states (see :func:`enumerate_states`).

    The grid is chosen as in `scheduler.set_timesteps(num_inference_steps, timesteps=..., schedule=...)`; the scheduler
    passed in is not modified. Cost per step: one denoiser call per reachable state and ``O(states²)`` arithmetic.
    """
    scheduler = copy.deepcopy(scheduler)
    grid_kwargs = {"num_inference_steps": num_inference_steps, "timesteps": timesteps}
    if schedule is not None:
        grid_kwargs["schedule"] = schedule
    scheduler.set_timesteps(**grid_kwargs)
    vocab = scheduler.config.vocab_size
    states = enumerate_states(vocab, seq_len)
    prior = scheduler.process.prior_probs()
    dist = prior[states].prod(-1)  # product prior over positions
    for t in scheduler.timesteps.tolist():
        active = (dist > 0).nonzero().squeeze(1)
        new = torch.zeros_like(dist)
        for start in range(0, active.numel(), chunk_size):
            rows = active[start : start + chunk_size]
            x = states[rows]
            out = denoiser(x, torch.full((x.shape[0],), t, dtype=torch.float64))
            kernel = scheduler.step_transition(out, t, x).probs(x)  # (C, L, V)
            joint = kernel[:, 0, :]
            for pos in range(1, seq_len):  # product over positions, flattened in state order
                joint = (joint.unsqueeze(-1) * kernel[:, pos, None, :]).reshape(x.shape[0], -1)
            new += dist[rows] @ joint
        dist = new
    return dist


def kl_divergence(
    data_sequences: torch.LongTensor, data_probs: torch.Tensor, sampler_probs: torch.Tensor, vocab_size: int
) -> float:
    """``KL(p0 ‖ p_sampler) = Σ_x p0(x) log(p0(x) / p_sampler(x))`` in nats (``inf`` if the sampler misses data)."""
    data_probs = torch.as_tensor(data_probs, dtype=torch.float64)
    q = sampler_probs[state_index(data_sequences, vocab_size)]
    keep = data_probs > 0
    if (q[keep] <= 0).any():
        return math.inf
    return float((data_probs[keep] * (data_probs[keep].log() - q[keep].log())).sum())


def exact_kl(
    scheduler,
    data_sequences: torch.LongTensor,
    data_probs: torch.Tensor,
    denoiser: Denoiser | None = None,
    num_inference_steps: int | None = None,
    timesteps: Sequence[float] | None = None,
    schedule: str | None = None,
) -> float:
    """Exact ``KL(p0 ‖ p_sampler)`` of a grid; ``denoiser`` defaults to the :class:`ExactDenoiser` of the data."""
    if denoiser is None:
        denoiser = ExactDenoiser(
            data_sequences, data_probs, scheduler.process, scheduler.noise_schedule, scheduler.config.prediction_type
        )
    dist = exact_sampler_distribution(
        scheduler, denoiser, data_sequences.shape[1], num_inference_steps, timesteps, schedule
    )
    return kl_divergence(data_sequences, data_probs, dist, scheduler.config.vocab_size)


__all__ = [
    "ExactDenoiser",
    "enumerate_states",
    "state_index",
    "exact_sampler_distribution",
    "kl_divergence",
    "exact_kl",
]
