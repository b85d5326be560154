# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""The three schedule searches, each resumable unit by unit.

- ``"dp"``: one pass over the calibration data; per batch, one model call per candidate time and sequence
  (``G`` sequence-forwards per sequence in total), the pair sums of ``D`` over all candidate pairs, then
  :mod:`~jys_schedulers.calibration.grid` (quadrature + dynamic program) for every step count at once.
  Unit of work: a calibration batch.
- ``"hierarchical"`` (the paper's breakdown): start from the one-step grid ``[1]`` (its interval ends at ``t_min``,
  standing for 0); each level splits every interval ``(s, u)`` at the maximiser of the insertion gain
  ``(t - u) · D(t, s)`` (``D`` of the objective), so ``K`` levels give ``2^K`` nested steps. A step count ``n`` that is
  not a power of two takes the full levels below it and, from the next level, only the ``n - 2^{K-1}`` splits with
  the largest gains (so every grid stays nested). Unit of work: an interval.
- ``"greedy"``: insert the single best split over all current intervals, repeatedly; grids are nested and any step
  count is reached exactly. Unit of work: an interval.

For the last two, each probe time ``t`` costs one model call per calibration sequence at ``t`` plus one at the interval
start ``s`` (the start posteriors are kept in memory with ``cache_posteriors=True``, which removes the second call
after the first probe of every start time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import CalibrationData, CountingDenoiser
from .grid import float32_time, interval_costs, optimal_grids, polish_grid
from .line_search import golden_section_max
from .objectives import TimeSlice, make_pair_sums, pair_divergence
from .state import CalibrationState


SEARCHES = ("dp", "hierarchical", "greedy")


@dataclass
class SearchOutcome:
    """Grids per step count, JSON-serialisable details, and the sequence-forwards of all completed units."""

    grids: dict[int, list[float]]
    details: dict[str, Any] = field(default_factory=dict)
    sequence_forwards: int = 0
    resumed: bool = False
    divergence: torch.Tensor | None = None  # DP: the estimated D(T_j, T_i)


def _reduced_forwards(caller: CountingDenoiser, data: CalibrationData, before: int) -> int:
    """Sequence-forwards since ``before`` on this process, summed over all processes."""
    delta = torch.tensor([float(caller.sequence_forwards - before)], dtype=torch.float64)
    return int(data.reduce_sum(delta)[0])


# -------------------------------------------------------------------------------------------------------------- DP
def run_dp(
    caller: CountingDenoiser,
    data: CalibrationData,
    times: list[float],
    objective: str,
    top_k: int | None,
    step_counts: list[int],
    state: CalibrationState,
    progress: bool,
    polish: bool = False,
) -> SearchOutcome:
    """Accumulate ``Σ D(T_j, T_i)`` over the calibration data, then solve the DP for every step count.

    With ``polish`` each DP grid is refined by :func:`~jys_schedulers.calibration.grid.polish_grid`.
    """
    g = len(times)
    saved = state.load()
    sums = torch.zeros(g, g, dtype=torch.float64)
    count = forwards = done = 0
    if saved is not None:
        sums = torch.tensor(saved["sums"], dtype=torch.float64)
        count, forwards, done = int(saved["count"]), int(saved["sequence_forwards"]), int(saved["batches_done"])
    bar = tqdm(total=data.num_batches, initial=done, desc="calibration batches", disable=not progress)
    for batch in data.batches(done):
        before = caller.sequence_forwards
        local = torch.zeros(g, g, dtype=torch.float64)
        if batch.sequence_ids.numel():
            pairs = make_pair_sums(objective, caller.process, caller.noise_schedule, g, top_k)
            for index in reversed(range(g)):  # cleanest first: each new time closes its pairs with the cleaner ones
                t = times[index]
                x_t = caller.noised(batch, t)
                pairs.add(index, TimeSlice(t, x_t, caller.posterior(x_t, t)))
            local = pairs.finish()
        extra = torch.tensor([batch.sequence_ids.numel(), caller.sequence_forwards - before], dtype=torch.float64)
        total = data.reduce_sum(torch.cat([local.flatten(), extra]))
        sums += total[: g * g].view(g, g)
        count += int(total[-2])
        forwards += int(total[-1])
        done = batch.index + 1
        state.save({"batches_done": done, "count": count, "sequence_forwards": forwards, "sums": sums.tolist()})
        bar.update(1)
    bar.close()
    divergence = sums / count
    grids = optimal_grids(times, interval_costs(times, divergence), step_counts)
    per_count = {str(n): {"bound": cost} for n, (_, cost) in sorted(grids.items())}
    if polish:
        for n, (grid, _) in grids.items():
            polished, cost = polish_grid(times, divergence, grid)
            grids[n] = (polished, cost)
            per_count[str(n)]["polished_bound"] = cost
    details = {"candidates": list(times), "step_counts": per_count}
    return SearchOutcome({n: grid for n, (grid, _) in grids.items()}, details, forwards, saved is not None, divergence)


# ---------------------------------------------------------------------------------------- hierarchical / greedy
class ProbeEvaluator:
    """``D(r, s)`` of the objective averaged over all calibration sequences (one streaming pass per call)."""

    def __init__(
        self,
        caller: CountingDenoiser,
        data: CalibrationData,
        objective: str,
        top_k: int | None,
        cache_posteriors: bool,
    ):
        self.caller, self.data, self.objective, self.top_k = caller, data, objective, top_k
        self.cache_posteriors = cache_posteriors
        self._starts: dict[tuple[float, int], TimeSlice] = {}

    def _slice(self, batch, t: float, cache: bool) -> TimeSlice:
        key = (t, batch.index)
        if key in self._starts:
            return self._starts[key]
        x_t = self.caller.noised(batch, t)
        time_slice = TimeSlice(t, x_t, self.caller.posterior(x_t, t))
        if cache:
            self._starts[key] = time_slice
        return time_slice

    def divergence(self, r: float, s: float) -> float:
        """Mean over the calibration data of the objective's integrand at ``(r, s)``, ``r < s``."""
        local = torch.zeros(2, dtype=torch.float64)
        for batch in self.data.batches():
            if not batch.sequence_ids.numel():
                continue
            start = self._slice(batch, s, self.cache_posteriors)
            reference = self._slice(batch, r, cache=False)
            values = pair_divergence(
                self.objective, self.caller.process, self.caller.noise_schedule, reference, start, self.top_k
            )
            local += torch.stack([values.sum().cpu(), torch.tensor(float(values.numel()), dtype=torch.float64)])
        total = self.data.reduce_sum(local)
        return float(total[0] / total[1])


def _next_float32(t: float) -> float:
    return float(np.nextafter(np.float32(t), np.float32(np.inf)))


def solve_interval(
    evaluator: ProbeEvaluator, s: float, u: float, *, margin: float, rtol: float, max_evaluations: int
) -> dict[str, Any]:
    """Best split ``t ∈ (u, s)`` of the insertion gain ``(t - u) · D(t, s)`` by golden-section search.

    Probe times are rounded to float32 (the dtype of ``scheduler.timesteps``); a rounded probe outside ``(u, s)`` scores
    ``-inf`` and repeated rounded probes are not re-evaluated. Returns ``{"time", "gain", "evaluations"}`` with
    ``time = gain = None`` when no float32 time lies strictly inside the interval.
    """
    if _next_float32(u) >= s:
        return {"time": None, "gain": None, "evaluations": 0}
    values: dict[float, float] = {}

    def gain(t: float) -> float:
        t32 = float32_time(t)
        if not u < t32 < s:
            return -math.inf
        if t32 not in values:
            values[t32] = (t32 - u) * evaluator.divergence(t32, s)
        return values[t32]

    result = golden_section_max(gain, u, s, margin=margin, rtol=rtol, max_evaluations=max_evaluations)
    if not values:  # every probe rounded onto an end of the interval
        return {"time": None, "gain": None, "evaluations": 0}
    best = float32_time(result.x)
    return {"time": best, "gain": values[best], "evaluations": len(values)}


class _IntervalSolutions:
    """Solved intervals keyed by ``(start, end)``, loaded from / saved to the state after every solve."""

    def __init__(self, evaluator: ProbeEvaluator, state: CalibrationState, progress: bool, line_search: dict):
        self.evaluator, self.state, self.line_search = evaluator, state, line_search
        saved = state.load()
        self.resumed = saved is not None
        self.solved: dict[str, dict[str, Any]] = dict(saved["solved"]) if saved else {}
        self.forwards = int(saved["sequence_forwards"]) if saved else 0
        self.bar = tqdm(desc="intervals solved", initial=len(self.solved), disable=not progress)

    def __call__(self, s: float, u: float) -> dict[str, Any]:
        key = f"{s!r}|{u!r}"
        if key not in self.solved:
            caller, data = self.evaluator.caller, self.evaluator.data
            before = caller.sequence_forwards
            solution = solve_interval(self.evaluator, s, u, **self.line_search)
            solution["sequence_forwards"] = _reduced_forwards(caller, data, before)
            self.solved[key] = {"start": s, "end": u, **solution}
            self.forwards += solution["sequence_forwards"]
            self.state.save({"solved": self.solved, "sequence_forwards": self.forwards})
            self.bar.update(1)
        return self.solved[key]

    def outcome(self, grids: dict[int, list[float]], gains: dict[int, list[float]]) -> SearchOutcome:
        self.bar.close()
        details = {
            "intervals": list(self.solved.values()),
            "step_counts": {str(n): {"gains": gains[n], "total_gain": math.fsum(gains[n])} for n in sorted(grids)},
        }
        return SearchOutcome(grids, details, self.forwards, self.resumed)


def _intervals(grid: list[float], t_end: float) -> list[tuple[float, float]]:
    return list(zip(grid, grid[1:] + [t_end]))


def _usable(solutions: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    usable = [sol for sol in solutions if sol["time"] is not None]
    if not usable:
        raise ValueError(f"Cannot reach `nfe`={n}: no interval of the current grid can be split in float32.")
    return usable


def run_hierarchical(
    solve: _IntervalSolutions, step_counts: list[int], t_end: float
) -> SearchOutcome:
    """The paper's breakdown: split every interval per level; partial last level for non-powers of two."""
    current, gains_so_far = [1.0], []
    grids: dict[int, list[float]] = {}
    gains: dict[int, list[float]] = {}
    if 1 in step_counts:
        grids[1], gains[1] = [1.0], []
    while len(current) < max(step_counts):
        ranked = sorted(
            _usable([solve(s, u) for s, u in _intervals(current, t_end)], len(current) + 1),
            key=lambda sol: -sol["gain"],
        )
        for n in step_counts:
            if len(current) < n <= 2 * len(current):
                chosen = ranked[: n - len(current)]
                if len(chosen) < n - len(current):
                    raise ValueError(f"Cannot reach `nfe`={n}: too few intervals can be split in float32.")
                grids[n] = sorted(current + [sol["time"] for sol in chosen], reverse=True)
                gains[n] = gains_so_far + [sol["gain"] for sol in chosen]
        current = sorted(current + [sol["time"] for sol in ranked], reverse=True)
        gains_so_far = gains_so_far + [sol["gain"] for sol in ranked]
    return solve.outcome(grids, gains)


def run_greedy(solve: _IntervalSolutions, step_counts: list[int], t_end: float) -> SearchOutcome:
    """Insert the best split over all intervals, one step at a time."""
    current, inserted = [1.0], []
    grids: dict[int, list[float]] = {}
    gains: dict[int, list[float]] = {}
    if 1 in step_counts:
        grids[1], gains[1] = [1.0], []
    while len(current) < max(step_counts):
        solutions = _usable([solve(s, u) for s, u in _intervals(current, t_end)], len(current) + 1)
        best = max(solutions, key=lambda sol: sol["gain"])
        current = sorted(current + [best["time"]], reverse=True)
        inserted.append(best["gain"])
        if len(current) in step_counts:
            grids[len(current)], gains[len(current)] = list(current), list(inserted)
    return solve.outcome(grids, gains)


INTERVAL_SEARCHES: dict[str, Callable[[_IntervalSolutions, list[int], float], SearchOutcome]] = {
    "hierarchical": run_hierarchical,
    "greedy": run_greedy,
}


def run_interval_search(
    search: str,
    evaluator: ProbeEvaluator,
    step_counts: list[int],
    t_end: float,
    state: CalibrationState,
    progress: bool,
    line_search: dict[str, Any],
) -> SearchOutcome:
    """Run ``"hierarchical"`` or ``"greedy"`` with resumable interval solutions."""
    solve = _IntervalSolutions(evaluator, state, progress, line_search)
    return INTERVAL_SEARCHES[search](solve, step_counts, t_end)


__all__ = [
    "SEARCHES",
    "SearchOutcome",
    "run_dp",
    "ProbeEvaluator",
    "solve_interval",
    "run_hierarchical",
    "run_greedy",
    "run_interval_search",
]
