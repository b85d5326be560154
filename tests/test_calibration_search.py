"""Schedule search machinery: golden section, candidates, quadrature, the DP against brute force, polish, and the
hierarchical / greedy insertion rules (jys_schedulers.calibration.{line_search,grid,search})."""

import itertools
import math

import numpy as np
import pytest
import torch

from jys_schedulers.calibration import candidate_times, golden_section_max, interval_costs, optimal_grids
from jys_schedulers.calibration.grid import float32_time, interpolated_cost, polish_grid
from jys_schedulers.calibration.search import SearchOutcome, run_greedy, run_hierarchical, solve_interval


# ------------------------------------------------------------------------------------------------ golden section
@pytest.mark.parametrize(
    "f, lower, upper, peak",
    [
        (lambda x: -((x - 0.3) ** 2), 0.0, 1.0, 0.3),
        (lambda x: (x - 0.2) * math.exp(-8 * x), 0.2, 1.0, 0.325),  # the gain shape (t - u) · D(t), skewed
        (lambda x: -abs(x - 0.999), 0.0, 1.0, 0.999),  # peak next to an end
        (lambda x: -((x - 2e-12) ** 2), 1e-12, 3e-12, 2e-12),  # tiny interval
        (lambda x: -((x - 5e-6) ** 2), 1e-6, 1e-5, 5e-6),
    ],
)
def test_golden_section_finds_the_maximiser(f, lower, upper, peak):
    result = golden_section_max(f, lower, upper, rtol=1e-6, max_evaluations=100)
    assert lower < result.x < upper
    assert result.x == pytest.approx(peak, abs=2e-6 * (upper - lower))  # rtol = 1e-6 of the width
    assert result.value == max(v for _, v in result.evaluations)
    assert all(lower < x < upper for x, _ in result.evaluations)  # only interior points are ever evaluated


def test_golden_section_caps_evaluations_and_shrinks_the_bracket():
    calls = []
    result = golden_section_max(lambda x: calls.append(x) or -((x - 0.6) ** 2), 0.0, 1.0, rtol=1e-2, max_evaluations=50)
    # two initial probes, then one per iteration while the bracket 0.998 · 0.618^k is wider than 0.01: k = 10
    assert len(calls) == len(result.evaluations) == 12
    assert abs(result.x - 0.6) < 0.01
    capped = golden_section_max(lambda x: -x * x, -1.0, 1.0, max_evaluations=4)
    assert len(capped.evaluations) == 4
    single = golden_section_max(lambda x: x, 2.0, 4.0, max_evaluations=1)
    assert single.x == 3.0 and len(single.evaluations) == 1
    # monotone function: best interior point next to the upper end, never the end itself
    mono = golden_section_max(lambda x: x, 0.0, 1.0, rtol=1e-4, max_evaluations=60)
    assert 0.998 < mono.x < 1.0


@pytest.mark.parametrize("bad", [dict(lower=1.0, upper=1.0), dict(lower=2.0, upper=1.0), dict(margin=0.5), dict(rtol=0.0)])
def test_golden_section_rejects_bad_brackets(bad):
    args = dict(lower=0.0, upper=1.0) | bad
    with pytest.raises(ValueError):
        golden_section_max(lambda x: x, args.pop("lower"), args.pop("upper"), **args)
    with pytest.raises(ValueError, match="NaN"):
        golden_section_max(lambda x: float("nan"), 0.0, 1.0)


# -------------------------------------------------------------------------------------------- candidates + DP
def test_candidate_times_mix_linear_and_geometric_spacing():
    times = candidate_times(128, 1e-5)
    assert len(times) == 128 and times[0] == 1.0 and times[-1] >= 1e-5 and times[-1] == pytest.approx(1e-5, rel=1e-6)
    assert all(b < a for a, b in zip(times, times[1:]))
    assert all(float(np.float32(t)) == t for t in times)  # the model sees exactly these times
    linear = np.diff(times[:96])
    assert np.allclose(linear, -1 / 96, atol=1e-7)
    ratios = np.array(times[97:]) / np.array(times[96:-1])
    assert np.allclose(ratios, ratios[0], rtol=1e-5) and ratios[0] < 1
    assert candidate_times(2, 1e-5) == [1.0, float32_time(1e-5, lower=1e-5)]
    with pytest.raises(ValueError, match="num_candidates"):
        candidate_times(1, 1e-5)


def test_interval_costs_trapezoid():
    times = [1.0, 0.75, 0.5, 0.25]
    # D(r, s) = s - r is linear in r, so the trapezoid is exact: C(s, u) = (s - u)² / 2
    d = torch.tensor([[max(s - r, 0.0) for s in times] for r in times], dtype=torch.float64)
    c = interval_costs(times, d)
    for i, k in itertools.combinations(range(4), 2):
        assert float(c[i, k]) == pytest.approx((times[i] - times[k]) ** 2 / 2)
    assert float(c[0, 4]) == float(c[0, 3]) and float(c[3, 4]) == 0.0  # the end node stands at t_min
    assert torch.isinf(c[2, 1]) and torch.isinf(c[1, 1]) and torch.isinf(c[4]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dp_returns_the_brute_force_minimiser_for_every_step_count(seed):
    gen = torch.Generator().manual_seed(seed)
    g = 8
    times = sorted(torch.rand(g - 2, generator=gen, dtype=torch.float64).tolist() + [1.0], reverse=True) + [1e-3]
    d = torch.rand(g, g, generator=gen, dtype=torch.float64) ** 3
    costs = interval_costs(times, d)
    found = optimal_grids(times, costs, range(1, g + 1))
    for n in range(1, g + 1):
        best_cost, best_path = min(
            (sum(float(costs[a, b]) for a, b in zip(path, path[1:])), path)
            for path in ([0, *mid, g] for mid in itertools.combinations(range(1, g), n - 1))
        )
        grid, cost = found[n]
        assert cost == pytest.approx(best_cost, rel=1e-12)
        assert grid == [times[k] for k in best_path[:-1]]
    with pytest.raises(ValueError, match="nfe"):
        optimal_grids(times, costs, [g + 1])


def test_interpolated_cost_matches_quadrature_on_candidates_and_polish_never_worsens():
    times = candidate_times(16, 1e-3)
    t = torch.tensor(times, dtype=torch.float64)
    d = torch.tril((t[None, :] - t[:, None]).clamp_min(0) * torch.exp(-3 * t[:, None]), diagonal=-1)  # D(T_j, T_i)
    costs = interval_costs(times, d)
    cost = interpolated_cost(times, d)
    for i, k in [(0, 1), (0, 15), (3, 9), (10, 15)]:
        assert cost(times[i], times[k]) == pytest.approx(float(costs[i, k]), rel=1e-12)
    grid, value = optimal_grids(times, costs, [4])[4]
    polished, polished_value = polish_grid(times, d, grid)
    assert polished_value <= value + 1e-15 and polished[0] == 1.0 and len(polished) == 4
    assert all(b < a for a, b in zip(polished, polished[1:]))


# ---------------------------------------------------------------------------------- hierarchical / greedy rules
class FakeSolutions:
    """Interval solver with a known answer: split at the midpoint with gain (s - u)² · weight(s)."""

    def __init__(self):
        self.calls = []

    def __call__(self, s, u):
        self.calls.append((s, u))
        return {"start": s, "end": u, "time": (s + u) / 2, "gain": (s - u) ** 2 * (1 + s), "evaluations": 1}

    def outcome(self, grids, gains):
        return SearchOutcome(grids, {"gains": gains})


def test_hierarchical_levels_are_nested_and_partial_levels_take_the_best_splits():
    solve = FakeSolutions()
    out = run_hierarchical(solve, [1, 2, 3, 4, 8], 0.0)
    assert out.grids[1] == [1.0] and out.grids[2] == [1.0, 0.5]
    assert out.grids[4] == [1.0, 0.75, 0.5, 0.25]
    # 3 steps: level 2's splits are 0.75 (gain 0.25² · 2) and 0.25 (gain 0.25² · 1.5): take 0.75
    assert out.grids[3] == [1.0, 0.75, 0.5]
    assert set(out.grids[4]) <= set(out.grids[8]) and len(out.grids[8]) == 8
    assert len(solve.calls) == 1 + 2 + 4  # 2^K - 1 intervals for 2^K steps


def test_greedy_inserts_the_single_best_split():
    solve = FakeSolutions()
    out = run_greedy(solve, [2, 3, 5], 0.0)
    assert out.grids[2] == [1.0, 0.5]
    assert out.grids[3] == [1.0, 0.75, 0.5]  # (1, 0.5) beats (0.5, 0) by its larger weight
    assert len(out.grids[5]) == 5 and set(out.grids[3]) <= set(out.grids[5])


def test_solve_interval_guards_intervals_without_a_float32_inside():
    class Constant:
        def divergence(self, r, s):
            return 1.0

    s = 0.5
    u = float(np.nextafter(np.float32(s), np.float32(0)))  # adjacent float32: nothing inside
    assert solve_interval(Constant(), s, u, margin=1e-3, rtol=1e-2, max_evaluations=20)["time"] is None
    found = solve_interval(Constant(), 0.5, 0.25, margin=1e-3, rtol=1e-4, max_evaluations=50)
    # gain (t - u) · 1 grows towards s: the best interior float32 probe lies just below s
    assert 0.25 < found["time"] < 0.5 and found["time"] > 0.499 and found["evaluations"] <= 50
