"""The countdown task of the Jump Your Steps paper: data generator and error metrics.

A countdown sample is a concatenation of runs ``k, k-1, ..., 0`` with every ``k`` drawn
uniformly from ``0..num_digits-1``, truncated to ``seq_len`` tokens (METHOD.md §8; the JYS
paper uses ``seq_len = 256``, ``num_digits = 32``).

Two metrics are provided:

* :func:`countdown_error_rate` -- the intended rule. Token ``x_i`` (``i >= 1``) is an error when
  its predecessor is non-zero and ``x_i != x_{i-1} - 1``. The per-sample error rate is the
  number of errors divided by ``L`` (all tokens; the first token has no predecessor and is
  always correct because any digit may start a run). This is the reference code's
  denominator, so the two metrics differ only in the rule, and a rate over the ``L - 1``
  transitions is ``rate * L / (L - 1)``.
* :func:`countdown_error_rate_reference` -- a compatibility metric that reproduces the
  reference code's ``check_err`` exactly, including its defect: after checking a token whose
  predecessor was non-zero it resets the predecessor to 0, so only about every other
  transition is verified (METHOD.md §7). Use it only to compare with published numbers.

Token conventions: data tokens are ``0..num_digits-1``; absorbing models append the mask as
id ``num_digits`` (vocabulary ``num_digits + 1``); uniform models use ``num_digits`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..validation import check_int

__all__ = [
    "TRANSITIONS",
    "CountdownTask",
    "generate_countdown",
    "countdown_error_rate",
    "countdown_error_rate_reference",
    "expected_random_error_rate",
    "expected_random_error_rate_reference",
]

TRANSITIONS = ("absorbing", "uniform")


def _check_transition(transition: object) -> str:
    if transition not in TRANSITIONS:
        raise ValueError(f"`transition` must be one of {TRANSITIONS}, got {transition!r}.")
    return str(transition)


def _check_samples(samples: object, name: str = "samples") -> torch.Tensor:
    if not isinstance(samples, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of integer tokens with shape (N, L), got {type(samples).__name__}.")
    if samples.dtype.is_floating_point or samples.dtype.is_complex or samples.dtype == torch.bool:
        raise TypeError(f"`{name}` must hold integer tokens, got dtype {samples.dtype}.")
    if samples.dim() != 2 or samples.shape[1] < 1:
        raise ValueError(
            f"`{name}` must have shape (N, L) with L >= 1, got shape {tuple(samples.shape)} "
            "(use samples.unsqueeze(0) for a single sequence)."
        )
    return samples.long()


def generate_countdown(
    num_samples: int,
    seq_len: int = 256,
    num_digits: int = 32,
    seed: int = 0,
) -> torch.Tensor:
    """Draw ``num_samples`` countdown sequences, shape ``(num_samples, seq_len)``, dtype long.

    Each row is ``k_1, k_1-1, ..., 0, k_2, k_2-1, ..., 0, ...`` truncated to ``seq_len``, with
    ``k_j ~ Uniform{0..num_digits-1}`` i.i.d. Randomness comes from a CPU ``torch.Generator``
    seeded with ``seed`` (the reference used unseeded Python ``random``), so the output is a
    pure function of the arguments.

    Vectorised: a row never needs more than ``seq_len`` runs (every run has length
    ``k + 1 >= 1``), so ``seq_len`` starts are drawn per row, run ends are their cumulative
    lengths, and the run holding position ``p`` is found by ``searchsorted``; the token is
    ``k_run - (p - run_start)``.
    """
    check_int("num_samples", num_samples)
    check_int("seq_len", seq_len)
    check_int("num_digits", num_digits)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {seed!r}.")
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, num_digits, (num_samples, seq_len), generator=gen, dtype=torch.long)
    run_ends = torch.cumsum(starts + 1, dim=1)  # exclusive end position of each run
    positions = torch.arange(seq_len, dtype=torch.long).expand(num_samples, seq_len).contiguous()
    run_index = torch.searchsorted(run_ends, positions, right=True)
    run_start = torch.gather(run_ends - (starts + 1), 1, run_index)
    return torch.gather(starts, 1, run_index) - (positions - run_start)


def countdown_error_rate(samples: torch.Tensor, num_digits: int | None = 32) -> torch.Tensor:
    """Intended countdown error rate per sample, shape ``(N,)``, float32.

    For ``x`` of length ``L``::

        err_0 = [x_0 invalid]
        err_i = [x_i invalid] or ([x_{i-1} valid and != 0] and [x_i != x_{i-1} - 1]),  i >= 1
        rate  = (1 / L) * sum_i err_i

    The denominator is ``L`` (all tokens, the first counted correct unless invalid), the same
    as the reference metric, so both metrics share a scale; divide by ``(L-1)/L`` to get a rate
    per transition. "Invalid" means outside ``0..num_digits-1`` (e.g. a mask token left by an
    unfinished sampler): it is always an error and, as a predecessor, constrains nothing.
    Pass ``num_digits=None`` to apply the bare rule with no range check.

    Valid countdowns score 0. A uniformly random sequence over ``V`` digits scores
    ``(L-1)/L * ((V-1)/V)**2`` in expectation (≈0.9348 for L=256, V=32); see
    :func:`expected_random_error_rate`.
    """
    x = _check_samples(samples)
    if num_digits is not None:
        check_int("num_digits", num_digits)
        valid = (x >= 0) & (x < num_digits)
    else:
        valid = torch.ones_like(x, dtype=torch.bool)
    err = ~valid
    prev, cur = x[:, :-1], x[:, 1:]
    constrained = valid[:, :-1] & (prev != 0)
    err[:, 1:] |= constrained & (cur != prev - 1)
    return err.float().mean(dim=1)


def countdown_error_rate_reference(samples: torch.Tensor) -> torch.Tensor:
    """The reference code's countdown metric, reproduced exactly (compatibility only), ``(N,)``.

    Reference recursion, one boolean ``ok_i`` per token, state ``prev``::

        ok_0 = True, prev = x_0
        for i >= 1:  if prev == 0: ok_i = True;                  prev = x_i
                     else:         ok_i = (prev - 1 == x_i);     prev = 0   # the quirk
        error = 1 - mean(ok)

    Vectorised form: the token at ``i`` is checked exactly when the streak of consecutive
    non-zero tokens ending at ``i-1`` has odd length ``c``; then ``prev = x_{i-1}``. So
    ``ok_i = (c_i even) or (x_i == x_{i-1} - 1)``. Example: ``[5,9,9,9,9,9]`` gives
    ``[T,F,T,F,T,F]`` → 0.5 (the intended rule gives 5/6). Random sequences score ≈0.48.
    No range check: any integers are accepted, as in the reference.
    """
    x = _check_samples(samples)
    n, length = x.shape
    idx = torch.arange(length, dtype=torch.long).expand(n, length)
    neg = torch.full_like(x, -1)
    last_zero = torch.cummax(torch.where(x == 0, idx, neg), dim=1).values
    streak = idx - last_zero  # consecutive non-zeros ending at (and including) position i
    ok = torch.ones_like(x, dtype=torch.bool)
    checked = (streak[:, :-1] % 2) == 1
    ok[:, 1:] = ~checked | (x[:, 1:] == x[:, :-1] - 1)
    return 1.0 - ok.float().mean(dim=1)


def expected_random_error_rate(seq_len: int = 256, num_digits: int = 32) -> float:
    """Expected :func:`countdown_error_rate` of i.i.d. uniform tokens: ``(L-1)/L * ((V-1)/V)**2``.

    Each transition is an error when the predecessor is non-zero (prob. ``(V-1)/V``) and the
    token misses the single allowed value (prob. ``(V-1)/V``, independent).
    """
    check_int("seq_len", seq_len)
    check_int("num_digits", num_digits)
    q = (num_digits - 1) / num_digits
    return (seq_len - 1) / seq_len * q * q


def expected_random_error_rate_reference(seq_len: int = 256, num_digits: int = 32) -> float:
    """Expected :func:`countdown_error_rate_reference` of i.i.d. uniform tokens.

    With ``c_i = P(token i is checked)``: ``c_0 = 0``, ``c_{i+1} = (1 - c_i) * (V-1)/V`` (a free
    token leads to a check iff it is non-zero; a checked token is always followed by a free
    one). A checked token fails with probability ``(V-1)/V``, so the expectation is
    ``(V-1)/V * sum_{i<L} c_i / L`` (≈0.4766 for L=256, V=32; the stationary limit is
    ``q**2/(1+q)`` with ``q = (V-1)/V``).
    """
    check_int("seq_len", seq_len)
    check_int("num_digits", num_digits)
    q = (num_digits - 1) / num_digits
    c, total = 0.0, 0.0
    for _ in range(seq_len):
        total += c
        c = (1.0 - c) * q
    return q * total / seq_len


@dataclass(frozen=True)
class CountdownTask:
    """Countdown task settings and token conventions.

    Data tokens are ``0..num_digits-1``. ``vocab_size("uniform") = num_digits``;
    ``vocab_size("absorbing") = num_digits + 1`` with ``mask_token_id = num_digits``.
    """

    seq_len: int = 256
    num_digits: int = 32

    def __post_init__(self) -> None:
        check_int("seq_len", self.seq_len)
        check_int("num_digits", self.num_digits, 2)

    @property
    def num_data_tokens(self) -> int:
        """Number of data tokens (``num_digits``)."""
        return self.num_digits

    @property
    def mask_token_id(self) -> int:
        """Mask id for absorbing models: the first id after the data tokens (``num_digits``)."""
        return self.num_digits

    def vocab_size(self, transition: str = "absorbing") -> int:
        """Model vocabulary: ``num_digits + 1`` for ``"absorbing"``, ``num_digits`` for ``"uniform"``."""
        return self.num_digits + (1 if _check_transition(transition) == "absorbing" else 0)

    def sample(self, num_samples: int, seed: int = 0) -> torch.Tensor:
        """Countdown data, ``(num_samples, seq_len)`` long; see :func:`generate_countdown`."""
        return generate_countdown(num_samples, self.seq_len, self.num_digits, seed)

    def error_rate(self, samples: torch.Tensor) -> torch.Tensor:
        """Intended per-sample error rate ``(N,)`` (denominator ``L``); see :func:`countdown_error_rate`."""
        x = _check_samples(samples)
        if x.shape[1] != self.seq_len:
            raise ValueError(f"`samples` must have length seq_len={self.seq_len}, got shape {tuple(x.shape)}.")
        return countdown_error_rate(x, self.num_digits)

    def error_rate_reference(self, samples: torch.Tensor) -> torch.Tensor:
        """Reference-compatible (quirky) per-sample error rate ``(N,)``; see :func:`countdown_error_rate_reference`."""
        x = _check_samples(samples)
        if x.shape[1] != self.seq_len:
            raise ValueError(f"`samples` must have length seq_len={self.seq_len}, got shape {tuple(x.shape)}.")
        return countdown_error_rate_reference(x)
