# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Forward processes, concrete scores, reverse rates and one-step transition laws (METHOD.md §2–4).

Two per-position corruption processes over a vocabulary of ``V`` states:

- :class:`AbsorbingProcess`: ``x_t = MASK`` with probability ``1 - α(t)``, else ``x_0``. Forward generator: rate 1
  (times ``σ(t)``) from every token to ``MASK``.
- :class:`UniformProcess`: ``q_{t|0}(y | x0) = α δ(y, x0) + (1 - α) / V``. Forward generator
  ``Q = 11ᵀ/V - I`` (rate ``σ(t)/V`` between any two states).

Everything a sampler needs goes through the **concrete score** ``s_t(y) = q_t(y) / q_t(x_t)`` of each position
(the ratio for changing that position to ``y``; ``s_t(x_t) = 1``):

- ``x0`` model outputs are turned into scores by ``s(y) = Σ_{x0} p_θ(x0) q_{t|0}(y|x0) / q_{t|0}(x_t|x0)``;
- ``score`` model outputs (SEDD) are log-scores;
- reverse rate ``R_t(x → y) = σ(t) Q(y, x) s(y)`` for ``y ≠ x``;
- Euler τ-leaping: ``P(y) = Δt · R_t(x → y)``;
- Tweedie τ-leaping from ``t`` to ``s`` (``α_s > α_t``): ``P(z) ∝ q_{t|s}(x | z) · [exp(-Δ Q) s](z)`` with
  ``Δ = σ̄(t) - σ̄(s) = log(α_s / α_t)``. This is the exact posterior ``q(x_s | x_t)`` when the score is exact, and
  with ``α_s = 1`` it is the final denoising step ``p(x_0 | x_t)``.

A step's law is returned as a :class:`Transition` in *jump form*: the probability of leaving the current token and
the distribution of the new token given a jump. Parallel decoding applies it independently at every position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Transition:
    """Per-position law of one parallel decoding step.

    Args:
        jump_prob (`torch.Tensor` of shape `(batch_size, seq_len)`, float64):
            Probability that the position leaves its current token.
        target_probs (`torch.Tensor` of shape `(batch_size, seq_len, vocab_size)`, float64):
            Distribution of the new token given a jump; zero at the current token. Rows where ``jump_prob == 0`` are
            unused and unspecified.
        num_clipped (`int`):
            Positions whose jump mass exceeded 1 and was clipped to 1 (only possible with inaccurate scores or
            Euler steps larger than the reverse rate allows).
    """

    jump_prob: torch.Tensor
    target_probs: torch.Tensor
    num_clipped: int = 0

    def probs(self, x_t: torch.LongTensor) -> torch.Tensor:
        """The full per-position kernel ``P(y) = jump · target(y) + (1 - jump) · δ(y, x_t)``, shape `(B, L, V)`."""
        stay = torch.zeros_like(self.target_probs).scatter_(-1, x_t.unsqueeze(-1), 1.0)
        jump = self.jump_prob.unsqueeze(-1)
        return jump * self.target_probs + (1.0 - jump) * stay


def _as_broadcast(a: torch.Tensor | float, like: torch.Tensor, ndim: int) -> torch.Tensor:
    """``a`` (scalar, `(B,)` or `(B, L)`) as float64 on ``like.device``, right-padded with singleton dims to ``ndim``."""
    a = torch.as_tensor(a, dtype=torch.float64, device=like.device)
    if a.dim() > ndim:
        raise ValueError(f"Cannot broadcast a tensor of shape {tuple(a.shape)} to {ndim} dims.")
    return a.reshape(a.shape + (1,) * (ndim - a.dim())) if a.dim() > 0 else a


def _jump_form(weights: torch.Tensor, jump: torch.Tensor, eligible: torch.Tensor) -> Transition:
    """Normalise non-negative jump ``weights`` (zero at the current token) into a :class:`Transition`.

    ``jump`` is clipped to ``[0, 1]`` (clips are counted) and set to 0 where a position is not ``eligible`` or has no
    jump weight; ``target_probs`` rows of such positions are unspecified (zero or unused). NaN weights of an eligible
    position propagate to its ``jump_prob`` so callers can detect invalid model outputs.
    """
    total = weights.sum(-1)
    num_clipped = int((eligible & (jump > 1.0)).sum())
    jump = torch.where(eligible & ~(total <= 0), jump.clamp(0.0, 1.0), torch.zeros_like(jump))
    target = weights / total.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(-1)
    return Transition(jump_prob=jump, target_probs=target, num_clipped=num_clipped)


class DiscreteProcess:
    """Common interface of the corruption processes. ``vocab_size`` counts every state, the mask included."""

    name: str = ""

    def __init__(self, vocab_size: int):
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 2:
            raise ValueError(f"`vocab_size` must be an int >= 2, got {vocab_size!r}.")
        self.vocab_size = vocab_size

    # -- forward process ------------------------------------------------------------------------------------------
    noise_channels: int = 1

    def add_noise(self, x0: torch.LongTensor, alpha: torch.Tensor | float, noise: torch.Tensor) -> torch.LongTensor:
        """Corrupt ``x0`` to survival level ``alpha`` (scalar, `(B,)` or `(B, L)`) with coupled uniform ``noise``."""
        raise NotImplementedError

    def forward_probs(self, x0: torch.LongTensor, alpha: torch.Tensor | float) -> torch.Tensor:
        """``q_{t|0}(· | x0)`` per position, shape `(*x0.shape, V)`, float64."""
        raise NotImplementedError

    def prior_probs(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Law of one position at ``t = 1`` (the sampler's starting point), shape `(V,)`, float64."""
        raise NotImplementedError

    # -- model outputs --------------------------------------------------------------------------------------------
    def x0_probs_from_logits(self, logits: torch.Tensor, x_t: torch.LongTensor) -> torch.Tensor:
        """Normalised ``p_θ(x0 | x_t)`` (float64) from ``x0`` logits."""
        raise NotImplementedError

    def score_from_x0(self, p_x0: torch.Tensor, x_t: torch.LongTensor, alpha: torch.Tensor | float) -> torch.Tensor:
        """Concrete score ``s(y) = Σ_{x0} p(x0) q_{t|0}(y|x0) / q_{t|0}(x_t|x0)`` (float64, ``s(x_t) = 1``)."""
        raise NotImplementedError

    def score_from_log_score(self, log_score: torch.Tensor, x_t: torch.LongTensor) -> torch.Tensor:
        """Scores from a model's log-scores (SEDD); the entry of the current token is set to 1."""
        score = log_score.to(torch.float64).exp()
        return score.scatter(-1, x_t.unsqueeze(-1), 1.0)

    def model_output_to_score(
        self, model_output: torch.Tensor, x_t: torch.LongTensor, alpha: torch.Tensor | float, prediction_type: str
    ) -> torch.Tensor:
        """Concrete score from an ``x0`` (logits) or ``score`` (log-scores) model output."""
        if prediction_type == "x0":
            return self.score_from_x0(self.x0_probs_from_logits(model_output, x_t), x_t, alpha)
        if prediction_type == "score":
            return self.score_from_log_score(model_output, x_t)
        raise ValueError(f"`prediction_type` must be 'x0' or 'score', got {prediction_type!r}.")

    # -- reverse process ------------------------------------------------------------------------------------------
    def reverse_rate(self, score: torch.Tensor, x_t: torch.LongTensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``R_t(x_t → y)`` for ``y ≠ x_t`` (0 at ``y = x_t``), shape `(B, L, V)`."""
        raise NotImplementedError

    def euler(
        self, score: torch.Tensor, x_t: torch.LongTensor, sigma: torch.Tensor | float, dt: torch.Tensor | float
    ) -> Transition:
        """Euler τ-leaping: ``P(y) = dt · R_t(x_t → y)`` for ``y ≠ x_t``; jump mass above 1 is clipped."""
        rate = self.reverse_rate(score, x_t, sigma)
        jump = rate.sum(-1) * _as_broadcast(dt, rate, x_t.dim())
        return _jump_form(rate, jump, self._eligible(x_t))

    def tweedie(
        self, score: torch.Tensor, x_t: torch.LongTensor, alpha_t: torch.Tensor | float, alpha_s: torch.Tensor | float
    ) -> Transition:
        """Tweedie τ-leaping from survival ``alpha_t`` to ``alpha_s >= alpha_t`` (``alpha_s = 1``: final denoise)."""
        raise NotImplementedError

    def x0_probs_from_score(
        self, score: torch.Tensor, x_t: torch.LongTensor, alpha: torch.Tensor | float
    ) -> torch.Tensor:
        """The clean-token posterior implied by a score: the Tweedie step to ``α = 1``, as a full kernel."""
        return self.tweedie(score, x_t, alpha, 1.0).probs(x_t)

    def _eligible(self, x_t: torch.LongTensor) -> torch.Tensor:
        """Positions that may change in the reverse process."""
        return torch.ones_like(x_t, dtype=torch.bool)


class AbsorbingProcess(DiscreteProcess):
    """Absorbing (masking) process with the mask token ``mask_token_id`` (METHOD.md §2).

    Reverse rate on a masked position ``R(mask → y) = σ(t) s(y)``, where for an ``x0`` model
    ``s(y) = α/(1-α) p_θ(y)``; unmasked positions never change. Tweedie:
    ``P(unmask to y) = (α_s/α_t - 1) s(y) = (α_s - α_t)/(1 - α_t) p_θ(y)``.
    """

    name = "absorbing"

    def __init__(self, vocab_size: int, mask_token_id: int):
        super().__init__(vocab_size)
        if not isinstance(mask_token_id, int) or isinstance(mask_token_id, bool) or not 0 <= mask_token_id < vocab_size:
            raise ValueError(f"`mask_token_id` must be an int in [0, {vocab_size}), got {mask_token_id!r}.")
        self.mask_token_id = mask_token_id

    def add_noise(self, x0, alpha, noise):
        """``x_t = MASK where noise < 1 - α else x0``; the same ``noise`` at two times gives nested masks."""
        alpha = _as_broadcast(alpha, noise, noise.dim())
        return torch.where(noise.to(torch.float64) < 1.0 - alpha, torch.full_like(x0, self.mask_token_id), x0)

    def forward_probs(self, x0, alpha):
        alpha = _as_broadcast(alpha, x0, x0.dim() + 1)
        onehot = torch.nn.functional.one_hot(x0, self.vocab_size).to(torch.float64)
        mask = torch.zeros_like(onehot)
        mask[..., self.mask_token_id] = 1.0
        return alpha * onehot + (1.0 - alpha) * mask

    def prior_probs(self, device=None):
        probs = torch.zeros(self.vocab_size, dtype=torch.float64, device=device)
        probs[self.mask_token_id] = 1.0
        return probs

    def _eligible(self, x_t):
        return x_t == self.mask_token_id

    def x0_probs_from_logits(self, logits, x_t):
        """``softmax`` over the non-mask tokens on masked positions; unmasked positions copy ``x_t`` through."""
        logits = logits.to(torch.float64, copy=True)
        logits[..., self.mask_token_id] = -torch.inf
        probs = torch.softmax(logits, dim=-1)
        return self._copy_through(probs, x_t)

    def _copy_through(self, rows: torch.Tensor, x_t: torch.LongTensor) -> torch.Tensor:
        """Overwrite, in place, the rows of unmasked positions with the one-hot of their token."""
        unmasked = ~self._eligible(x_t).unsqueeze(-1)
        return rows.masked_fill_(unmasked, 0.0).scatter_add_(-1, x_t.unsqueeze(-1), unmasked.to(rows.dtype))

    def score_from_x0(self, p_x0, x_t, alpha):
        """On masked positions ``s(y) = α/(1-α) p(y)`` and ``s(mask) = 1``; unmasked rows are the one-hot of
        ``x_t`` (given copy-through posteriors, as :meth:`x0_probs_from_logits` returns)."""
        ratio = _as_broadcast(alpha, p_x0, p_x0.dim())
        return (ratio / (1.0 - ratio) * p_x0).scatter_(-1, x_t.unsqueeze(-1), 1.0)

    def score_from_log_score(self, log_score, x_t):
        score = super().score_from_log_score(log_score, x_t)
        return self._copy_through(score, x_t)

    def _token_weights(self, score, x_t):
        """Scores of the non-mask tokens (the mask column zeroed); only masked positions' rows are ever used."""
        weights = score.clone()
        weights[..., self.mask_token_id] = 0.0
        return weights

    def reverse_rate(self, score, x_t, sigma):
        rate = _as_broadcast(sigma, score, score.dim()) * self._token_weights(score, x_t)
        return rate.masked_fill_(~self._eligible(x_t).unsqueeze(-1), 0.0)

    def tweedie(self, score, x_t, alpha_t, alpha_s):
        weights = self._token_weights(score, x_t)
        factor = _as_broadcast(alpha_s, weights, x_t.dim()) / _as_broadcast(alpha_t, weights, x_t.dim()) - 1.0
        return _jump_form(weights, factor * weights.sum(-1), self._eligible(x_t))


class UniformProcess(DiscreteProcess):
    """Uniform-state process: ``q_{t|0}(y | x0) = α δ(y, x0) + (1 - α)/V`` (METHOD.md §2).

    With ``b = (1-α)/V`` and ``q(x_t | x0) = b + α δ(x0, x_t)``, an ``x0`` model gives
    ``s(y) = α p(y)/q(x_t|y) + b Σ_{x0} p(x0)/q(x_t|x0)``. Reverse rate ``R(x → y) = σ(t)/V · s(y)``.
    Tweedie with ``r = α_s/α_t``: ``P(z) ∝ [δ(x_t,z)/r + (1 - 1/r)/V] · max(0, r s(z) + (1 - r)/V Σ_y s(y))``.
    """

    name = "uniform"
    noise_channels = 2

    def add_noise(self, x0, alpha, noise):
        """``noise[..., 0] < 1 - α`` decides a resample; ``floor(noise[..., 1] · V)`` is the shared new value."""
        if noise.shape != (*x0.shape, 2):
            raise ValueError(f"`noise` must have shape {(*x0.shape, 2)} for the uniform process, got {tuple(noise.shape)}.")
        alpha = _as_broadcast(alpha, noise, x0.dim())
        resample = noise[..., 0].to(torch.float64) < 1.0 - alpha
        value = (noise[..., 1].to(torch.float64) * self.vocab_size).long().clamp_(0, self.vocab_size - 1)
        return torch.where(resample, value, x0)

    def forward_probs(self, x0, alpha):
        alpha = _as_broadcast(alpha, x0, x0.dim() + 1)
        onehot = torch.nn.functional.one_hot(x0, self.vocab_size).to(torch.float64)
        return alpha * onehot + (1.0 - alpha) / self.vocab_size

    def prior_probs(self, device=None):
        return torch.full((self.vocab_size,), 1.0 / self.vocab_size, dtype=torch.float64, device=device)

    def x0_probs_from_logits(self, logits, x_t):
        return torch.softmax(logits.to(torch.float64), dim=-1)

    def score_from_x0(self, p_x0, x_t, alpha):
        alpha = _as_broadcast(alpha, p_x0, p_x0.dim())
        b = (1.0 - alpha) / self.vocab_size
        q_x = b + alpha * torch.nn.functional.one_hot(x_t, self.vocab_size).to(torch.float64)  # q(x_t | x0 = ·)
        inv_sum = (p_x0 / q_x).sum(-1, keepdim=True)
        score = alpha * p_x0 / q_x + b * inv_sum
        return score.scatter(-1, x_t.unsqueeze(-1), 1.0)

    def reverse_rate(self, score, x_t, sigma):
        rate = _as_broadcast(sigma, score, score.dim()) / self.vocab_size * score
        return rate.scatter(-1, x_t.unsqueeze(-1), 0.0)

    def tweedie(self, score, x_t, alpha_t, alpha_s):
        r = _as_broadcast(alpha_s, score, score.dim()) / _as_broadcast(alpha_t, score, score.dim())
        staggered = (r * score + (1.0 - r) / self.vocab_size * score.sum(-1, keepdim=True)).clamp_min(0.0)
        back = torch.zeros_like(score) + (1.0 - 1.0 / r) / self.vocab_size
        back = back + torch.zeros_like(score).scatter_(-1, x_t.unsqueeze(-1), 1.0) / r
        probs = staggered * back
        probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-300)
        weights = probs.scatter_(-1, x_t.unsqueeze(-1), 0.0)
        return _jump_form(weights, weights.sum(-1), self._eligible(x_t))


def generalized_kl(p: torch.Tensor, q: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Generalised KL divergence of non-negative vectors, ``Σ_y φ(p_y, q_y)`` with ``φ(a, b) = a log(a/b) - a + b``.

    It is the Girsanov (path-space) KL rate between two CTMCs that jump with rates ``p`` and ``q``: the jump term
    ``a log(a/b)`` plus the compensator ``b - a``. It equals ``KL(p ‖ q)`` when both sum to 1, is ``>= 0`` with
    equality iff ``p == q``, and is 1-homogeneous: ``generalized_kl(c p, c q) = c · generalized_kl(p, q)``. Terms with
    ``a = 0`` contribute ``b`` (``0 log 0 = 0``); ``a > 0, b = 0`` gives ``+inf``. Inputs broadcast; float64.
    """
    p, q = p.to(torch.float64), q.to(torch.float64)
    p, q = torch.broadcast_tensors(p, q)
    return (torch.xlogy(p, p) - torch.xlogy(p, q) - p + q).sum(dim)


def generalized_kl_pairs(p: torch.Tensor, q: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`generalized_kl` for all pairs of rows at once, weighted over positions.

    ``out[..., j, i] = Σ_l w[..., j, l] · generalized_kl(p[..., j, l, :], q[..., i, l, :])`` for ``p`` of shape
    `(..., J, L, V)`, ``q`` of shape `(..., I, L, V)` and ``weights`` of shape `(..., J, L)` (default 1). The sum is
    expanded as ``Σ w (Σ p log p - Σ p log q - Σ p + Σ q)`` so that the cross term is one matrix product: cost
    ``O(J·I·L·V)`` multiply-adds and ``O((J + I)·L·V)`` logarithms. Zeros of ``q`` are floored at the smallest positive
    float64 (``log = -708``), so ``a > 0, b = 0`` gives a large finite value instead of ``+inf``. Weights must be
    non-negative; the result is clamped at 0 against the round-off of the expanded form.
    """
    p, q = p.to(torch.float64), q.to(torch.float64)
    w = torch.ones(p.shape[:-1], dtype=torch.float64, device=p.device) if weights is None else weights.to(torch.float64)
    self_term = (w * (torch.xlogy(p, p) - p).sum(-1)).sum(-1)  # (..., J)
    log_q = torch.log(q.clamp_min(torch.finfo(torch.float64).tiny))
    cross = (w.unsqueeze(-1) * p).flatten(-2) @ log_q.flatten(-2).transpose(-1, -2)  # (..., J, I)
    mass_q = w @ q.sum(-1).transpose(-1, -2)  # (..., J, I)
    return (self_term.unsqueeze(-1) - cross + mass_q).clamp_min(0.0)


PROCESSES = {"absorbing": AbsorbingProcess, "uniform": UniformProcess}


def get_process(transition: str, vocab_size: int, mask_token_id: int | None = None) -> DiscreteProcess:
    """Build the process named ``transition`` (``"absorbing"`` needs ``mask_token_id``; ``"uniform"`` forbids it)."""
    if transition == "absorbing":
        if mask_token_id is None:
            raise ValueError("`mask_token_id` is required when `transition='absorbing'`.")
        return AbsorbingProcess(vocab_size, mask_token_id)
    if transition == "uniform":
        if mask_token_id is not None:
            raise ValueError(
                f"`mask_token_id` must be None when `transition='uniform'` (no mask state), got {mask_token_id!r}."
            )
        return UniformProcess(vocab_size)
    raise ValueError(f"`transition` must be one of {sorted(PROCESSES)}, got {transition!r}.")


__all__ = [
    "Transition",
    "DiscreteProcess",
    "AbsorbingProcess",
    "UniformProcess",
    "PROCESSES",
    "get_process",
    "generalized_kl",
    "generalized_kl_pairs",
]
