# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Global schedule search: candidate times, interval costs by quadrature, and the dynamic program over grids.

With ``G`` candidate times ``1 = T_0 > T_1 > … > T_{G-1} = t_min`` and the estimated integrand
``D[j, i] = D(T_j, T_i)`` (``j > i``, i.e. ``T_j < T_i``), the cost of a step from ``T_i`` to ``T_k`` is the trapezoid
rule on the candidates in between, with ``D(T_i, T_i) = 0``:

    C(T_i, T_k) = Σ_{m=i}^{k-1} (T_m - T_{m+1}) · (D[m, i] + D[m+1, i]) / 2.

The last step of a grid goes to clean data; its cost ends at ``t_min``, which stands for 0 (a virtual end node ``G``
with ``C(T_i, end) = C(T_i, T_{G-1})``). An ``n``-step grid is a path ``0 = b_0 < b_1 < … < b_n = end`` whose call
times are ``T_{b_0}, …, T_{b_{n-1}}``; its cost is ``Σ_k C(T_{b_k}, T_{b_{k+1}})``. The dynamic program

    f_0(0) = 0,   f_n(k) = min_{i < k} f_{n-1}(i) + C(T_i, T_k)

gives the exact minimiser for every step count ``n <= G`` at once in ``O(n_max · G²)``.

:func:`polish_grid` optionally refines a DP grid off the candidate set: coordinate descent of each interior time on the
cost of the bilinearly interpolated ``D`` (no model calls).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

from .line_search import golden_section_max


#: Share of the default candidates spaced geometrically near ``t_min`` (the rest are spaced linearly up to 1).
GEOMETRIC_FRACTION = 0.25

#: Fewest DP candidates used by default, and candidates per step of the largest grid (``default_num_candidates``).
MIN_DEFAULT_CANDIDATES, CANDIDATES_PER_STEP = 128, 4


def default_num_candidates(step_counts: Iterable[int]) -> int:
    """DP candidates when none are given: ``G = max(128, 4 · max(step_counts))``.

    The DP places call times on the candidate lattice, so a grid with more than about ``G / 4`` steps is bound by it.
    Measured on the bundled countdown model at 64 steps: 128 candidates gave a 2.8% error rate, worse than the cosine
    grid; 256 candidates 1.6% (``docs/benchmarks.md``). The DP costs ``G`` model calls per calibration sequence.
    """
    counts = list(step_counts)
    if not counts:
        raise ValueError("`step_counts` must name at least one step count.")
    return max(MIN_DEFAULT_CANDIDATES, CANDIDATES_PER_STEP * max(counts))


def float32_time(t: float, lower: float = 0.0) -> float:
    """``t`` rounded to the nearest float32 (the dtype of ``scheduler.timesteps``), never below ``lower``."""
    value = np.float32(t)
    if float(value) < lower:
        value = np.nextafter(value, np.float32(np.inf))
    return float(value)


def candidate_times(num_candidates: int, t_min: float, geometric_fraction: float = GEOMETRIC_FRACTION) -> list[float]:
    """``G`` decreasing float32-representable candidate times in ``[t_min, 1]``, including 1 and ``t_min``.

    ``n_geo = max(1, round(geometric_fraction · G))`` times are geometric in ``[t_min, 1/n_lin)`` (fine resolution near
    data, where the last steps live) and the other ``n_lin = G - n_geo`` are linear, ``1 - k/n_lin`` for
    ``k = 0 … n_lin-1``, so the spacing never exceeds ``1/n_lin``. With ``G = 128`` and ``t_min = 1e-5``: 96 linear
    times down to 0.0104 and 32 geometric ones below it (ratio about 1.24).
    """
    if not isinstance(num_candidates, int) or isinstance(num_candidates, bool) or num_candidates < 2:
        raise ValueError(f"`num_candidates` must be an int >= 2, got {num_candidates!r}.")
    if not 0.0 <= geometric_fraction < 1.0:
        raise ValueError(f"`geometric_fraction` must lie in [0, 1), got {geometric_fraction!r}.")
    n_geo = max(1, round(geometric_fraction * num_candidates))
    n_lin = num_candidates - n_geo
    if n_lin < 1 or not 0.0 < t_min < 1.0 / n_lin:
        raise ValueError(f"`t_min`={t_min!r} must lie in (0, {1.0 / max(n_lin, 1):g}) for {num_candidates} candidates.")
    linear = [1.0 - k / n_lin for k in range(n_lin)]
    geometric = np.geomspace(t_min, 1.0 / n_lin, n_geo + 1)[:-1][::-1].tolist()
    times = [float32_time(t, lower=t_min) for t in linear + geometric]
    if any(b >= a for a, b in zip(times, times[1:])):
        raise ValueError(
            f"{num_candidates} candidates are too many to be distinct float32 times above t_min={t_min!r}."
        )
    return times


def interval_costs(times: list[float], divergence: torch.Tensor) -> torch.Tensor:
    """Step costs ``C`` of shape `(G + 1, G + 1)` by the trapezoid rule (module docstring); ``C[i, G]`` ends at 0.

    ``divergence[j, i] = D(T_j, T_i)`` for ``j > i`` (other entries are ignored). Infeasible steps (``k <= i``) are
    ``+inf``.
    """
    g = len(times)
    t = torch.tensor(times, dtype=torch.float64)
    d = torch.tril(divergence.to(torch.float64), diagonal=-1)  # D[m, i] for m > i; D(T_i, T_i) = 0
    width = (t[:-1] - t[1:]).unsqueeze(1)  # (G-1, 1): T_m - T_{m+1}
    segment = width * (d[:-1] + d[1:]) / 2.0  # (G-1, G): piece [T_{m+1}, T_m] of column i
    segment = torch.tril(segment)  # keep m >= i
    cumulative = segment.cumsum(0)  # cumulative[m, i] = C(T_i, T_{m+1})
    costs = torch.full((g + 1, g + 1), math.inf, dtype=torch.float64)
    later = torch.arange(g).unsqueeze(1) > torch.arange(g).unsqueeze(0)  # [k, i]: k > i
    inner = torch.full((g, g), math.inf, dtype=torch.float64)
    inner[:, 1:] = torch.where(later[1:].T, cumulative.T, torch.full_like(cumulative.T, math.inf))
    costs[:g, :g] = inner
    costs[: g - 1, g] = inner[: g - 1, g - 1]
    costs[g - 1, g] = 0.0
    return costs


def optimal_grids(
    times: list[float], costs: torch.Tensor, step_counts: Iterable[int]
) -> dict[int, tuple[list[float], float]]:
    """Minimum-cost grids for each step count by dynamic programming over the candidate graph.

    Returns ``{n: (call times, cost)}``; ``n`` must lie in ``[1, G]``. Ties go to the earliest (noisiest) predecessor.
    """
    g = len(times)
    counts = sorted(set(step_counts))
    if not counts or counts[0] < 1 or counts[-1] > g:
        raise ValueError(f"`nfe` values must lie in [1, {g}] (the number of candidates), got {counts}.")
    best = torch.full((g + 1,), math.inf, dtype=torch.float64)
    best[0] = 0.0
    back: list[torch.Tensor] = []
    out: dict[int, tuple[list[float], float]] = {}
    for n in range(1, counts[-1] + 1):
        best, arg = (best.unsqueeze(1) + costs).min(0)
        back.append(arg)
        if n in counts:
            path = [g]
            for pointers in reversed(back):
                path.append(int(pointers[path[-1]]))
            path.reverse()
            out[n] = ([times[k] for k in path[:-1]], float(best[g]))
    return out


def interpolated_cost(times: list[float], divergence: torch.Tensor) -> Callable[[float, float], float]:
    """``C(s, u)`` for any ``t_min <= u < s <= 1`` from ``D`` interpolated bilinearly between candidates.

    ``D(r, s)`` is bilinear in ``(r, s)`` on the candidate grid, with ``D(T_i, T_i) = 0`` and ``D(r, s) = 0`` for
    ``r >= s``; the integral over ``r`` is the trapezoid rule on ``u``, ``s`` and the candidates between them (exact for
    the interpolant away from the diagonal). ``u = t_min`` stands for 0, as in :func:`interval_costs`.
    """
    ascending = np.asarray(times[::-1], dtype=np.float64)  # T_{G-1} … T_0
    d = torch.tril(divergence.to(torch.float64), diagonal=-1).numpy()[::-1, ::-1]  # d[a, b] = D at ascending (a, b)
    position = np.arange(len(ascending), dtype=np.float64)

    def column(s: float) -> np.ndarray:
        """``D(T, s)`` at every candidate ``T`` (ascending), linear in the position of ``s``."""
        x = float(np.interp(s, ascending, position))
        lo = min(int(np.floor(x)), len(ascending) - 2)
        w = x - lo
        return (1.0 - w) * d[:, lo] + w * d[:, lo + 1]

    def cost(s: float, u: float) -> float:
        values = column(s)
        inside = (ascending > u) & (ascending < s)
        nodes = np.concatenate([[u], ascending[inside], [s]])
        heights = np.concatenate([[np.interp(u, ascending, values)], values[inside], [0.0]])
        return float(np.sum(np.diff(nodes) * (heights[1:] + heights[:-1]) / 2.0))

    return cost


def _path_cost(cost: Callable[[float, float], float], grid: list[float], t_end: float) -> float:
    bounds = list(grid) + [t_end]
    return math.fsum(cost(s, u) for s, u in zip(bounds, bounds[1:]))


def grid_cost(times: list[float], divergence: torch.Tensor, grid: list[float]) -> float:
    """Cost ``Σ_k C(t_k, t_{k+1})`` of any grid (last step to ``t_min``) on the interpolated ``D``
    (:func:`interpolated_cost`); equals the DP cost for grids made of candidates."""
    return _path_cost(interpolated_cost(times, divergence), grid, times[-1])


def polish_grid(
    times: list[float], divergence: torch.Tensor, grid: list[float], sweeps: int = 5
) -> tuple[list[float], float]:
    """Coordinate descent of the interior times of ``grid`` on :func:`interpolated_cost` (no model calls).

    Each interior time ``t_k`` moves to the golden-section minimiser of ``C(t_{k-1}, t_k) + C(t_k, t_{k+1})`` on
    ``(t_{k+1}, t_{k-1})`` (rounded to float32) when that lowers the cost; ``sweeps`` passes at most. The first time (1)
    and the end (``t_min``, standing for 0) stay fixed. Returns the grid and its interpolated cost.
    """
    cost = interpolated_cost(times, divergence)
    t_end = times[-1]
    current = list(grid)
    value = _path_cost(cost, current, t_end)
    for _ in range(sweeps):
        before = value
        for k in range(1, len(current)):
            left, right = current[k - 1], current[k + 1] if k + 1 < len(current) else t_end

            def local(t: float) -> float:
                return -(cost(left, t) + cost(t, right))

            found = golden_section_max(local, right, left, rtol=1e-4, max_evaluations=40)
            candidate = float32_time(found.x)
            if right < candidate < left:
                trial = current[:k] + [candidate] + current[k + 1 :]
                trial_value = _path_cost(cost, trial, t_end)
                if trial_value < value:
                    current, value = trial, trial_value
        if value >= before - 1e-15 * max(abs(before), 1.0):
            break
    return current, value


__all__ = [
    "GEOMETRIC_FRACTION",
    "float32_time",
    "candidate_times",
    "interval_costs",
    "optimal_grids",
    "interpolated_cost",
    "grid_cost",
    "polish_grid",
]
