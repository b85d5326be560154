# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Golden-section maximisation of a unimodal function on an open interval (used to split one schedule interval)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


#: ``1/φ = (√5 - 1)/2``: each iteration keeps this share of the bracket.
INV_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass
class LineSearchResult:
    """Best point found by :func:`golden_section_max`.

    Args:
        x (`float`): the best evaluated point (always strictly inside the search interval).
        value (`float`): ``f(x)``.
        evaluations (`list[tuple[float, float]]`): every ``(x, f(x))`` evaluated, in order.
    """

    x: float
    value: float
    evaluations: list[tuple[float, float]] = field(default_factory=list)


def golden_section_max(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    *,
    margin: float = 1e-3,
    rtol: float = 1e-2,
    max_evaluations: int = 20,
) -> LineSearchResult:
    """Maximise ``f`` on the open interval ``(lower, upper)`` by golden-section search.

    The bracket starts at ``[lower + δ, upper - δ]`` with ``δ = margin · (upper - lower)`` (so it is never inverted,
    however small the interval) and holds two interior points; each iteration drops the part beyond the worse one, so
    the bracket shrinks by ``1/φ ≈ 0.618`` per evaluation. It stops when the bracket is narrower than
    ``rtol · (upper - lower)`` or after ``max_evaluations`` evaluations (at least 2, unless ``max_evaluations == 1``,
    which evaluates the midpoint), and returns the best *evaluated* point. For a unimodal ``f`` the maximiser lies
    in the final bracket.

    Args:
        f (`Callable[[float], float]`): the function; a NaN value raises `ValueError`.
        lower, upper (`float`): the open interval, ``lower < upper``.
        margin (`float`, defaults to 1e-3): relative distance of the bracket from the interval ends, in ``[0, 0.5)``.
        rtol (`float`, defaults to 1e-2): stopping width relative to ``upper - lower``.
        max_evaluations (`int`, defaults to 20): cap on the calls of ``f``.
    """
    if not (math.isfinite(lower) and math.isfinite(upper)) or not lower < upper:
        raise ValueError(f"`lower` < `upper` must be finite numbers, got {lower!r}, {upper!r}.")
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"`margin` must lie in [0, 0.5), got {margin!r}.")
    if not rtol > 0.0:
        raise ValueError(f"`rtol` must be > 0, got {rtol!r}.")
    if not isinstance(max_evaluations, int) or isinstance(max_evaluations, bool) or max_evaluations < 1:
        raise ValueError(f"`max_evaluations` must be an int >= 1, got {max_evaluations!r}.")
    evaluations: list[tuple[float, float]] = []

    def evaluate(x: float) -> float:
        value = float(f(x))
        if math.isnan(value):
            raise ValueError(f"The objective is NaN at {x!r}.")
        evaluations.append((x, value))
        return value

    width = upper - lower
    a, b = lower + margin * width, upper - margin * width
    if max_evaluations == 1:
        x = 0.5 * (a + b)
        return LineSearchResult(x, evaluate(x), evaluations)
    c, d = b - INV_GOLDEN * (b - a), a + INV_GOLDEN * (b - a)
    fc, fd = evaluate(c), evaluate(d)
    while b - a > rtol * width and len(evaluations) < max_evaluations:
        if fc >= fd:  # the maximiser lies in [a, d]
            b, d, fd = d, c, fc
            c = b - INV_GOLDEN * (b - a)
            fc = evaluate(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + INV_GOLDEN * (b - a)
            fd = evaluate(d)
    x, value = max(evaluations, key=lambda item: item[1])
    return LineSearchResult(x, value, evaluations)


__all__ = ["INV_GOLDEN", "LineSearchResult", "golden_section_max"]
