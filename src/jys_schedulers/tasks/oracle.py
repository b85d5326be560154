"""Small explicit data distributions for the exact oracle (METHOD.md §8).

Each builder returns an :class:`OracleDistribution` ``(sequences, probs)``: ``sequences`` is a
``(K, L)`` long tensor of distinct sequences over data tokens ``0..V-1`` (rows in
lexicographic order) and ``probs`` a ``(K,)`` float64 tensor of positive probabilities summing
to 1. The table *is* the distribution ``p0``, so the true posterior
``p(x0_l = v | x_t)`` can be computed exactly and the only error left in a sampler is its
compounding decoding error.

Most builders put strong dependencies between positions, so decoding several positions in
parallel from the factorised per-position posteriors is badly wrong; ``"product"`` is the
control, on which parallel decoding is exact. :func:`total_correlation` measures how
dependent a table is: ``TC = sum_l H(X_l) - H(X)`` nats (0 iff the positions are independent).

Registry ``ORACLE_DISTRIBUTIONS`` (name → ``builder(vocab_size, seq_len, seed)``):

* ``"all_equal"``: ``V`` modes ``(a, a, ..., a)`` with seeded Dirichlet(1) weights. Knowing
  any one token fixes all others: ``TC = (L-1) H(a)``.
* ``"markov"``: a sticky, near-deterministic first-order chain. ``x_0`` uniform;
  ``P(x_{l+1} = y | x_l = x) = rho [y = pi(x)] + (1 - rho) / V`` with a seeded permutation
  ``pi`` and ``rho = 0.9``. Full support (``V**L`` rows).
* ``"sparse"``: ``K = min(4 V, V**L)`` distinct random sequences with seeded Dirichlet(1)
  weights. Support need not be enumerable (no ``V**L`` limit).
* ``"monotone"``: uniform over non-decreasing sequences ``x_0 <= x_1 <= ... <= x_{L-1}``
  (``C(V+L-1, L)`` rows).
* ``"sum_mod"``: uniform over sequences with ``sum_l x_l ≡ 0 (mod V)`` (``V**(L-1)`` rows).
  Every ``L-1`` positions are independent and uniform, yet the last one is fixed by the rest:
  ``TC = log V``, invisible to any pairwise statistic.
* ``"product"``: independent positions, each with its own seeded Dirichlet(1) marginal.
  ``TC = 0``. Full support (``V**L`` rows).

Enumerated supports are limited to ``MAX_ORACLE_SUPPORT = 100_000`` rows.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, NamedTuple

import torch

from ..validation import check_int

__all__ = [
    "MAX_ORACLE_SUPPORT",
    "MARKOV_STICKINESS",
    "OracleDistribution",
    "ORACLE_DISTRIBUTIONS",
    "make_oracle_distribution",
    "all_equal_distribution",
    "markov_distribution",
    "sparse_distribution",
    "monotone_distribution",
    "sum_mod_distribution",
    "product_distribution",
    "enumerate_sequences",
    "total_correlation",
    "sample_from_distribution",
]

MAX_ORACLE_SUPPORT = 100_000
MARKOV_STICKINESS = 0.9


class OracleDistribution(NamedTuple):
    """An explicit distribution: distinct ``sequences`` ``(K, L)`` long and ``probs`` ``(K,)`` float64."""

    sequences: torch.Tensor
    probs: torch.Tensor


def _check_args(vocab_size: object, seq_len: object, seed: object) -> tuple[int, int, int]:
    v = check_int("vocab_size", vocab_size, 2)
    length = check_int("seq_len", seq_len, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {seed!r}.")
    return v, length, seed


def _check_support(size: int, description: str, vocab_size: int, seq_len: int) -> None:
    if size > MAX_ORACLE_SUPPORT:
        raise ValueError(
            f"support of {description} has {size} sequences for vocab_size={vocab_size}, seq_len={seq_len}; "
            f"at most MAX_ORACLE_SUPPORT={MAX_ORACLE_SUPPORT} is allowed: lower `vocab_size` or `seq_len`."
        )


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dirichlet(k: int, gen: torch.Generator) -> torch.Tensor:
    """Dirichlet(1,...,1) weights: normalised i.i.d. Exp(1) draws, float64 (never zero)."""
    u = torch.rand(k, generator=gen, dtype=torch.float64).clamp_min(1e-300)
    e = -torch.log(u)
    return e / e.sum()


def _finish(sequences: torch.Tensor, probs: torch.Tensor) -> OracleDistribution:
    """Sort rows lexicographically and renormalise in float64."""
    seq = sequences.long()
    k, length = seq.shape
    order = torch.arange(k)
    for col in range(length - 1, -1, -1):  # stable sorts from the last key to the first
        order = order[torch.sort(seq[order, col], stable=True).indices]
    p = probs.to(torch.float64)[order]
    return OracleDistribution(seq[order].contiguous(), p / p.sum())


def enumerate_sequences(vocab_size: int, seq_len: int) -> torch.Tensor:
    """All ``vocab_size**seq_len`` sequences in lexicographic order, ``(V**L, L)`` long.

    Row ``r`` holds the base-``V`` digits of ``r`` (most significant first).
    """
    v, length, _ = _check_args(vocab_size, seq_len, 0)
    _check_support(v**length, "the full product space", v, length)
    codes = torch.arange(v**length, dtype=torch.long)
    powers = v ** torch.arange(length - 1, -1, -1, dtype=torch.long)
    return (codes[:, None] // powers[None, :]) % v


def all_equal_distribution(vocab_size: int, seq_len: int, seed: int = 0) -> OracleDistribution:
    """``V`` constant sequences ``(a,...,a)`` with Dirichlet(1) weights seeded by ``seed``."""
    v, length, seed = _check_args(vocab_size, seq_len, seed)
    seqs = torch.arange(v, dtype=torch.long)[:, None].expand(v, length)
    return _finish(seqs, _dirichlet(v, _generator(seed)))


def markov_distribution(
    vocab_size: int, seq_len: int, seed: int = 0, stickiness: float = MARKOV_STICKINESS
) -> OracleDistribution:
    """Sticky first-order Markov chain over all ``V**L`` sequences.

    ``p(x) = (1/V) * prod_{l>=1} T[x_{l-1}, x_l]`` with
    ``T[x, y] = stickiness * [y = pi(x)] + (1 - stickiness) / V`` and ``pi`` a permutation of
    ``0..V-1`` drawn with ``seed``.
    """
    v, length, seed = _check_args(vocab_size, seq_len, seed)
    if not isinstance(stickiness, (int, float)) or isinstance(stickiness, bool) or not 0.0 <= stickiness < 1.0:
        raise ValueError(f"`stickiness` must be a float in [0, 1), got {stickiness!r}.")
    _check_support(v**length, "'markov'", v, length)
    perm = torch.randperm(v, generator=_generator(seed))
    trans = torch.full((v, v), (1.0 - stickiness) / v, dtype=torch.float64)
    trans[torch.arange(v), perm] += stickiness
    seqs = enumerate_sequences(v, length)
    logp = torch.full((seqs.shape[0],), -math.log(v), dtype=torch.float64)
    if length > 1:
        logp = logp + torch.log(trans[seqs[:, :-1], seqs[:, 1:]]).sum(dim=1)
    return _finish(seqs, torch.exp(logp))


def sparse_distribution(vocab_size: int, seq_len: int, seed: int = 0, num_sequences: int | None = None) -> OracleDistribution:
    """``K`` distinct uniformly drawn sequences with Dirichlet(1) weights (all seeded).

    ``K = num_sequences`` or, by default, ``min(4 * V, V**L)``. The full space is never
    enumerated, so ``V**L`` may be huge.
    """
    v, length, seed = _check_args(vocab_size, seq_len, seed)
    space = v**length
    k = min(4 * v, space) if num_sequences is None else check_int("num_sequences", num_sequences, 1)
    if k > space:
        raise ValueError(f"`num_sequences`={k} exceeds the number of distinct sequences V**L={space}.")
    _check_support(k, "'sparse'", v, length)
    gen = _generator(seed)
    seqs = torch.empty((0, length), dtype=torch.long)
    while seqs.shape[0] < k:
        draw = torch.randint(0, v, (2 * k, length), generator=gen, dtype=torch.long)
        pool = torch.cat([seqs, draw])
        # keep first occurrences in draw order so the result depends only on the seed
        uniq, inverse = torch.unique(pool, dim=0, return_inverse=True)
        first = torch.full((uniq.shape[0],), pool.shape[0], dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(pool.shape[0]), reduce="amin")
        seqs = pool[torch.sort(first).values][:k]
    return _finish(seqs, _dirichlet(k, gen))


def monotone_distribution(vocab_size: int, seq_len: int, seed: int = 0) -> OracleDistribution:
    """Uniform over non-decreasing sequences (``C(V+L-1, L)`` rows). ``seed`` is unused."""
    v, length, _ = _check_args(vocab_size, seq_len, seed)
    _check_support(math.comb(v + length - 1, length), "'monotone'", v, length)
    rows = list(itertools.combinations_with_replacement(range(v), length))
    seqs = torch.tensor(rows, dtype=torch.long).reshape(len(rows), length)
    return _finish(seqs, torch.ones(len(rows), dtype=torch.float64))


def sum_mod_distribution(vocab_size: int, seq_len: int, seed: int = 0) -> OracleDistribution:
    """Uniform over sequences with ``sum(x) % V == 0`` (``V**(L-1)`` rows). ``seed`` is unused."""
    v, length, _ = _check_args(vocab_size, seq_len, seed)
    _check_support(v ** (length - 1), "'sum_mod'", v, length)
    if length == 1:
        seqs = torch.zeros((1, 1), dtype=torch.long)
    else:
        head = enumerate_sequences(v, length - 1)
        seqs = torch.cat([head, (-head.sum(dim=1, keepdim=True)) % v], dim=1)
    return _finish(seqs, torch.ones(seqs.shape[0], dtype=torch.float64))


def product_distribution(vocab_size: int, seq_len: int, seed: int = 0) -> OracleDistribution:
    """Independent positions (control): ``p(x) = prod_l m_l(x_l)``, ``m_l ~ Dirichlet(1)`` seeded."""
    v, length, seed = _check_args(vocab_size, seq_len, seed)
    _check_support(v**length, "'product'", v, length)
    gen = _generator(seed)
    marginals = torch.stack([_dirichlet(v, gen) for _ in range(length)])  # (L, V)
    seqs = enumerate_sequences(v, length)
    logp = torch.log(marginals[torch.arange(length)[None, :], seqs]).sum(dim=1)
    return _finish(seqs, torch.exp(logp))


ORACLE_DISTRIBUTIONS: dict[str, Callable[[int, int, int], OracleDistribution]] = {
    "all_equal": all_equal_distribution,
    "markov": markov_distribution,
    "sparse": sparse_distribution,
    "monotone": monotone_distribution,
    "sum_mod": sum_mod_distribution,
    "product": product_distribution,
}


def make_oracle_distribution(name: str, vocab_size: int, seq_len: int, seed: int = 0) -> OracleDistribution:
    """Build the registered distribution ``name`` over data tokens ``0..vocab_size-1``."""
    if name not in ORACLE_DISTRIBUTIONS:
        raise ValueError(f"`name` must be one of {sorted(ORACLE_DISTRIBUTIONS)}, got {name!r}.")
    return ORACLE_DISTRIBUTIONS[name](vocab_size, seq_len, seed)


def _check_table(sequences: object, probs: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(sequences, torch.Tensor) or sequences.dim() != 2 or sequences.shape[0] < 1:
        shape = tuple(sequences.shape) if isinstance(sequences, torch.Tensor) else type(sequences).__name__
        raise ValueError(f"`sequences` must be a (K, L) integer tensor with K >= 1, got {shape}.")
    if sequences.dtype.is_floating_point or sequences.dtype.is_complex or sequences.dtype == torch.bool:
        raise TypeError(f"`sequences` must hold integer tokens, got dtype {sequences.dtype}.")
    if not isinstance(probs, torch.Tensor) or probs.shape != (sequences.shape[0],):
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValueError(f"`probs` must be a tensor of shape ({sequences.shape[0]},), got {shape}.")
    p = probs.to(torch.float64)
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError("`probs` must be finite and non-negative.")
    total = float(p.sum())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"`probs` must sum to 1 (tolerance 1e-6), got {total!r}.")
    return sequences.long(), p


def _entropy(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * torch.log(p)).sum())


def total_correlation(sequences: torch.Tensor, probs: torch.Tensor) -> float:
    """Total correlation ``TC = sum_l H(X_l) - H(X)`` in nats (multi-information).

    ``H(X) = -sum_x p(x) log p(x)`` over the table (duplicate rows are merged first) and
    ``H(X_l)`` is the entropy of position ``l``'s marginal. ``TC >= 0``, with equality iff the
    positions are independent; it is the KL between ``p`` and the product of its marginals,
    i.e. the error of sampling all positions in one parallel step from exact marginals.
    """
    seqs, p = _check_table(sequences, probs)
    uniq, inverse = torch.unique(seqs, dim=0, return_inverse=True)
    joint = torch.zeros(uniq.shape[0], dtype=torch.float64).index_add_(0, inverse, p)
    marginal_sum = 0.0
    for col in range(seqs.shape[1]):
        values, inv = torch.unique(seqs[:, col], return_inverse=True)
        marginal_sum += _entropy(torch.zeros(values.shape[0], dtype=torch.float64).index_add_(0, inv, p))
    return max(marginal_sum - _entropy(joint), 0.0)


def sample_from_distribution(
    sequences: torch.Tensor, probs: torch.Tensor, num_samples: int, seed: int = 0
) -> torch.Tensor:
    """Draw ``num_samples`` i.i.d. rows of the table (with replacement), ``(num_samples, L)`` long."""
    seqs, p = _check_table(sequences, probs)
    check_int("num_samples", num_samples, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {seed!r}.")
    idx = torch.multinomial(p, num_samples, replacement=True, generator=_generator(seed))
    return seqs[idx]
