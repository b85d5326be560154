# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
r"""Calibration objectives: the per-step error of a frozen-posterior step, estimated from model calls.

Notation. ``x_r`` and ``x_s`` (``r < s``) are coupled noisings of the same clean sequence ``x0`` (one uniform draw per
sequence shared by all times, see :func:`~jys_schedulers.calibration.data.sequence_noise`). ``p_r = p_θ(· | x_r)`` is
the model's clean-token posterior (per position). Every rate below is computed by the process module only:

    R[p, x, t] = process.reverse_rate(process.score_from_x0(p, x, α(t)), x, σ(t)).

**Objective "kl" (default): posterior-KL / frozen-posterior Girsanov cost.** Over one sampler step ``s → u`` the
sampler uses the posterior frozen at the start, ``p_s``, where the true reverse process uses ``p_r`` at every
``r ∈ (u, s]``. Both are CTMCs; by Girsanov's theorem for jump processes the KL between their path laws on ``(u, s]``
is ``∫_u^s D(r, s) dr`` (per position, in nats), with

    D(r, s) = E[ (1/L) Σ_l Σ_{y ≠ x_r^l} φ(R_r(x_r → y), R̂_{r|s}(x_r → y)) ],  φ(a, b) = a log(a/b) - a + b,

    R_r = R[p_r, x_r, r],   R̂_{r|s} = R[p_s, x_r, r]   (same time r, same state x_r, frozen posterior).

``φ`` is the jump term plus the compensator (:func:`~jys_schedulers.processes.generalized_kl`). The interval cost is
``C(s, u) = ∫_u^s D(r, s) dr`` and, by the chain rule of the path KL, the cost of a grid is the sum over its steps:
an upper bound on ``KL(data ‖ sampler) / L`` whenever ``D`` is evaluated on the true process. The insertion gain
matching it (the cost removed by splitting ``s → u`` at ``t``, with the rate frozen on ``(u, t]`` replaced by a fresh
one) is ``G_kl(s, t, u) = (t - u) · D(t, s)``.

- *Absorbing.* On a masked position ``R = σ α/(1-α) · p = c(r) · p`` (``c`` = ``noise_schedule.hazard``) on the
  non-mask tokens, and unmasked positions never move. By the 1-homogeneity of ``φ`` the cost is
  ``D(r, s) = c(r) · E[(1/L) Σ_{l masked in x_r} KL(p_r^l ‖ p_s^l)]`` (METHOD.md §5(b)); masks are nested, so a
  position masked at ``r`` is masked at ``s`` and ``p_s^l`` is a real posterior. Here the Tweedie step *is* the
  frozen-posterior CTMC (a masked position's posterior does not change while it stays masked), so the grid cost is
  the exact path-space KL between the reverse process driven by the model's posteriors and the sampler, per token.
- *Uniform.* The same formula, derived the same way (Girsanov KL of two CTMCs, compensator included), with two
  approximations stated rather than hidden: (i) the Tweedie step's own CTMC would reweight ``p_s`` by
  ``q_{r|0}(x_r | x0) / q_{s|0}(x_s | x0)``; with the exact oracle, that variant picked grids with 10-80% higher KL
  on the log-linear schedule (mixed on cosine), so the frozen posterior is kept; (ii) the two-channel coupled
  noising of ``UniformProcess.add_noise`` keeps a resampled value fixed across times, so ``(x_r, x_s)`` is not
  exactly the forward Markov pair (it omits resamplings between ``r`` and ``s``); with the exact ``D`` of either pair
  law the DP grids' KLs differ by at most 16% (mostly under 2%), neither consistently better. Measured
  (docs/benchmarks.md): on the exact oracle's log-linear problems the calibrated grids beat the uniform grid by
  1.1-8.5x; on the cosine schedule they can lose to it (0.2-1.2x: the calibrated grids keep a long last step, e.g.
  from t = 0.17 at 16 steps); on a trained uniform-state countdown model they lost at 4 and 8 steps (0.5-0.75x).

**Objective "paper": the reference insertion gain** (``jys_reference_notes.md`` §2.3, kept for parity):

    D_ref(r, s) = E[ (1/L) Σ_l Σ_y R_r(x_r → y) · (log(R_r(x_r → y) + 1e-8) - log(R_s(x_s → y) + 1e-8)) ],

    G_ref(s, t, u) = (t - u) · D_ref(t, s),

with ``R_s = R[p_s, x_s, s]`` (the rate of the *start* state at the start time), no compensator, and the sum over
every token (``R_r`` is zero on the current token and on unmasked positions, which is the reference's dropped mask
column). With the DP search it is integrated like ``D``.

**Top-k.** For large vocabularies ``top_k`` keeps, per position, the ``k`` largest entries of the reference vector
``R_r`` (for absorbing: of the posterior ``p_r``) and lumps all other tokens into one category (rates summed, for both
``R_r`` and ``R̂_{r|s}``). ``φ`` is jointly convex and 1-homogeneous, so lumping can only lower the sum: the result is
a lower bound of ``D`` that is exact when the lumped tokens carry the same rate ratio.

All statistics are computed in float64 whatever the model dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..noise_schedules import NoiseSchedule
from ..processes import AbsorbingProcess, DiscreteProcess, generalized_kl, generalized_kl_pairs


OBJECTIVES = ("kl", "paper")
#: Smoothing inside both logarithms of the reference gain.
PAPER_LOG_EPS = 1e-8


@dataclass
class TimeSlice:
    """A batch of noised sequences at one time and the model's posterior there.

    Args:
        t (`float` or `torch.Tensor`): the time (a `(J,)` tensor when `J` slices are stacked along a leading dim).
        x (`torch.LongTensor` of shape `(..., B, L)`): the noised tokens ``x_t``.
        posterior (`torch.Tensor` of shape `(..., B, L, V)`, float64): ``p_θ(x0 | x_t)`` per position.
    """

    t: float | torch.Tensor
    x: torch.LongTensor
    posterior: torch.Tensor


def model_posterior(
    process: DiscreteProcess,
    model_output: torch.Tensor,
    x_t: torch.LongTensor,
    alpha: float | torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """Clean-token posterior ``p_θ(x0 | x_t)`` (float64) from an ``x0`` (logits) or ``score`` (log-score) output."""
    if prediction_type == "x0":
        return process.x0_probs_from_logits(model_output, x_t)
    score = process.model_output_to_score(model_output, x_t, alpha, prediction_type)
    return process.x0_probs_from_score(score, x_t, alpha)


def reverse_rates(
    process: DiscreteProcess,
    noise_schedule: NoiseSchedule,
    posterior: torch.Tensor,
    x: torch.LongTensor,
    t: float | torch.Tensor,
) -> torch.Tensor:
    """``R[p, x, t] = reverse_rate(score_from_x0(p, x, α(t)), x, σ(t))``, shape of ``posterior``.

    ``t`` is a float or a `(J,)` tensor matching a leading dim of ``posterior``.
    """
    t = torch.as_tensor(t, dtype=torch.float64, device=posterior.device)
    score = process.score_from_x0(posterior, x, noise_schedule.alpha(t))
    return process.reverse_rate(score, x, noise_schedule.rate(t))


def lump_top_k(reference: torch.Tensor, other: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``top_k`` largest entries of ``reference`` (last dim) and lump the rest into one last entry.

    Returns ``(reference', other')`` of last size ``top_k + 1``: the kept entries of both, then the sums of the
    remaining entries (clamped at 0 against round-off).
    """
    index = reference.topk(top_k, dim=-1).indices
    kept_ref, kept_other = reference.gather(-1, index), other.gather(-1, index)
    rest_ref = (reference.sum(-1, keepdim=True) - kept_ref.sum(-1, keepdim=True)).clamp_min(0.0)
    rest_other = (other.sum(-1, keepdim=True) - kept_other.sum(-1, keepdim=True)).clamp_min(0.0)
    return torch.cat([kept_ref, rest_ref], -1), torch.cat([kept_other, rest_other], -1)


def frozen_posterior_divergence(
    process: DiscreteProcess,
    noise_schedule: NoiseSchedule,
    reference: TimeSlice,
    frozen_posterior: torch.Tensor,
    top_k: int | None = None,
) -> torch.Tensor:
    """Per-sequence ``(1/L) Σ_l Σ_y φ(R_r, R̂_{r|s})`` of objective ``"kl"`` (its expectation is ``D(r, s)``).

    ``reference`` holds ``x_r`` and ``p_r`` at time ``r``; ``frozen_posterior`` is ``p_s`` (same shape). Returns shape
    `(..., B)`. ``top_k`` lumps all but the ``k`` largest reference rates per position (a lower bound).
    """
    frozen_posterior = frozen_posterior.expand_as(reference.posterior)
    rate = reverse_rates(process, noise_schedule, reference.posterior, reference.x, reference.t)
    frozen = reverse_rates(process, noise_schedule, frozen_posterior, reference.x, reference.t)
    if top_k is not None:
        rate, frozen = lump_top_k(rate, frozen, top_k)
    return generalized_kl(rate, frozen).mean(-1)


def paper_divergence(
    process: DiscreteProcess, noise_schedule: NoiseSchedule, reference: TimeSlice, start: TimeSlice
) -> torch.Tensor:
    """Per-sequence ``(1/L) Σ_l Σ_y R_r (log(R_r + 1e-8) - log(R_s + 1e-8))`` of objective ``"paper"``, `(..., B)`.

    ``R_r`` is the rate at ``(x_r, r)``, ``R_s`` the rate at the start state and time ``(x_s, s)``.
    """
    rate = reverse_rates(process, noise_schedule, reference.posterior, reference.x, reference.t)
    start_rate = reverse_rates(process, noise_schedule, start.posterior, start.x, start.t)
    return (rate * (torch.log(rate + PAPER_LOG_EPS) - torch.log(start_rate + PAPER_LOG_EPS))).sum(-1).mean(-1)


def pair_divergence(
    objective: str,
    process: DiscreteProcess,
    noise_schedule: NoiseSchedule,
    reference: TimeSlice,
    start: TimeSlice,
    top_k: int | None = None,
) -> torch.Tensor:
    """Per-sequence integrand of ``objective`` for the pair ``(r, s)`` = ``(reference, start)``, shape `(..., B)`."""
    if objective == "kl":
        return frozen_posterior_divergence(process, noise_schedule, reference, start.posterior, top_k)
    if objective == "paper":
        return paper_divergence(process, noise_schedule, reference, start)
    raise ValueError(f"`objective` must be one of {list(OBJECTIVES)}, got {objective!r}.")


# ------------------------------------------------------------------------------------------ all pairs of one batch
def _chunk_size(per_item: int, budget: int = 1 << 22) -> int:
    """How many stacked items of ``per_item`` elements fit in a temporary of ``budget`` float64 entries."""
    return max(1, budget // max(per_item, 1))


class PairSums:
    """Σ over a batch of the per-sequence integrand ``D(T_j, T_i)`` for every pair of candidates ``j > i``.

    Candidates are fed one at a time with :meth:`add`, from the cleanest (index ``G-1``) to the noisiest (index 0), so
    every new time is the *start* ``s`` of the pairs it closes with the (cleaner) times already seen. :meth:`finish`
    returns the `(G, G)` float64 matrix ``S[j, i]`` (zero for ``j <= i``). Subclasses choose what to keep per time.
    """

    def __init__(self, process: DiscreteProcess, noise_schedule: NoiseSchedule, num_candidates: int):
        self.process, self.noise_schedule = process, noise_schedule
        self.sums = torch.zeros(num_candidates, num_candidates, dtype=torch.float64)

    def add(self, index: int, time_slice: TimeSlice) -> None:
        raise NotImplementedError

    def finish(self) -> torch.Tensor:
        return self.sums


class _StreamingPairs(PairSums):
    """Keeps what each (cleaner) reference time needs and closes pairs as soon as their start time arrives."""

    def __init__(self, process, noise_schedule, num_candidates, top_k=None):
        super().__init__(process, noise_schedule, num_candidates)
        self.top_k = top_k
        self.refs: list[tuple[int, TimeSlice]] = []  # (index, slice), cleanest first

    def add(self, index, time_slice):
        if self.refs:
            per_ref = time_slice.posterior.numel()
            size = _chunk_size(per_ref)
            for start in range(0, len(self.refs), size):
                chunk = self.refs[start : start + size]
                values = self._pair_values([ref for _, ref in chunk], time_slice)  # (J, B)
                rows = torch.tensor([j for j, _ in chunk])
                self.sums[rows, index] += values.sum(-1).cpu()
        self.refs.append((index, time_slice))

    @staticmethod
    def _stack(refs: list[TimeSlice]) -> TimeSlice:
        times = torch.tensor([float(r.t) for r in refs], dtype=torch.float64, device=refs[0].posterior.device)
        return TimeSlice(times, torch.stack([r.x for r in refs]), torch.stack([r.posterior for r in refs]))

    def _pair_values(self, refs: list[TimeSlice], start: TimeSlice) -> torch.Tensor:
        raise NotImplementedError


class GenericKLPairs(_StreamingPairs):
    """Objective ``"kl"`` from its definition (:func:`frozen_posterior_divergence`), for any process."""

    def _pair_values(self, refs, start):
        stacked = self._stack(refs)
        return frozen_posterior_divergence(self.process, self.noise_schedule, stacked, start.posterior, self.top_k)


class PaperPairs(_StreamingPairs):
    """Objective ``"paper"`` (:func:`paper_divergence`)."""

    def _pair_values(self, refs, start):
        stacked = self._stack(refs)
        return paper_divergence(self.process, self.noise_schedule, stacked, start)


class AbsorbingKLPairs(PairSums):
    """Objective ``"kl"`` for the absorbing process, ``D(r, s) = c(r) (1/L) Σ_{l masked in x_r} KL(p_r^l ‖ p_s^l)``.

    Without ``top_k`` the posteriors of all candidates are kept and every pair is computed at :meth:`finish` with
    :func:`~jys_schedulers.processes.generalized_kl_pairs` (one matrix product per sequence). With ``top_k`` each time
    keeps only its ``k`` largest posterior entries per position (memory ``O(G·B·L·k)``) and pairs are closed as the
    noisier times arrive (lumped as in :func:`lump_top_k`).
    """

    def __init__(self, process: AbsorbingProcess, noise_schedule, num_candidates, top_k=None):
        super().__init__(process, noise_schedule, num_candidates)
        self.top_k = top_k
        self.masked: dict[int, torch.Tensor] = {}  # (B, L) float64 weights: masked in x_r
        self.hazard: dict[int, float] = {}
        self.posteriors: dict[int, torch.Tensor] = {}  # full: (B, L, V) with the mask column zeroed
        self.kept: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # top-k: (index, values, total)

    def _token_probs(self, time_slice: TimeSlice) -> torch.Tensor:
        probs = time_slice.posterior.clone()
        probs[..., self.process.mask_token_id] = 0.0
        return probs

    def add(self, index, time_slice):
        probs = self._token_probs(time_slice)
        self.masked[index] = (time_slice.x == self.process.mask_token_id).to(torch.float64)
        self.hazard[index] = float(self.noise_schedule.hazard(float(time_slice.t)))
        if self.top_k is None:
            self.posteriors[index] = probs
            return
        closed = sorted(self.kept)
        size = _chunk_size(probs.shape[0] * probs.shape[1] * (self.top_k + 1) * 4)
        for start in range(0, len(closed), size):
            rows = closed[start : start + size]
            index_k = torch.stack([self.kept[j][0] for j in rows])  # (J, B, L, k)
            kept_ref = torch.stack([self.kept[j][1] for j in rows])
            ref = torch.cat([kept_ref, torch.stack([self.kept[j][2] for j in rows])], -1)
            kept_frozen = probs.expand(len(rows), *probs.shape).gather(-1, index_k)
            rest = (probs.sum(-1, keepdim=True) - kept_frozen.sum(-1, keepdim=True)).clamp_min(0.0)
            frozen = torch.cat([kept_frozen, rest], -1)
            weights = torch.stack([self.masked[j] for j in rows])
            hazard = torch.tensor([self.hazard[j] for j in rows], dtype=torch.float64, device=probs.device)
            values = hazard[:, None] * (weights * generalized_kl(ref, frozen)).mean(-1)  # (J, B)
            self.sums[torch.tensor(rows), index] += values.sum(-1).cpu()
        top = probs.topk(self.top_k, dim=-1)
        rest = (probs.sum(-1, keepdim=True) - top.values.sum(-1, keepdim=True)).clamp_min(0.0)
        self.kept[index] = (top.indices, top.values, rest)

    def finish(self):
        if self.top_k is not None:
            return self.sums
        order = sorted(self.posteriors)  # candidate indices, noisiest first
        probs = torch.stack([self.posteriors[i] for i in order], 1)  # (B, G, L, V)
        weights = torch.stack([self.masked[i] for i in order], 1)  # (B, G, L)
        hazard = torch.tensor([self.hazard[i] for i in order], dtype=torch.float64, device=probs.device)
        seq_len = probs.shape[2]
        size = _chunk_size(probs[0].numel() * 3)
        total = torch.zeros(len(order), len(order), dtype=torch.float64, device=probs.device)
        for start in range(0, probs.shape[0], size):
            chunk = slice(start, start + size)
            total += generalized_kl_pairs(probs[chunk], probs[chunk], weights[chunk]).sum(0)
        total = hazard[:, None] * total / seq_len
        position = torch.tensor(order)
        later = position[:, None] > position[None, :]  # j > i
        self.sums[position[:, None], position[None, :]] += torch.where(later.to(total.device), total, 0.0).cpu()
        return self.sums


def make_pair_sums(
    objective: str, process: DiscreteProcess, noise_schedule: NoiseSchedule, num_candidates: int, top_k: int | None
) -> PairSums:
    """The :class:`PairSums` of ``objective`` (the absorbing ``"kl"`` one uses the matrix-product fast path)."""
    if objective == "paper":
        return PaperPairs(process, noise_schedule, num_candidates)
    if isinstance(process, AbsorbingProcess):
        return AbsorbingKLPairs(process, noise_schedule, num_candidates, top_k)
    return GenericKLPairs(process, noise_schedule, num_candidates, top_k)


__all__ = [
    "OBJECTIVES",
    "PAPER_LOG_EPS",
    "TimeSlice",
    "model_posterior",
    "reverse_rates",
    "lump_top_k",
    "frozen_posterior_divergence",
    "paper_divergence",
    "pair_divergence",
    "PairSums",
    "GenericKLPairs",
    "PaperPairs",
    "AbsorbingKLPairs",
    "make_pair_sums",
]
