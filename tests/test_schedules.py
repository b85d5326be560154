"""Grids: heuristic grids, validation, stored-schedule dicts and the token-quota export."""

import math

import pytest
import torch

from jys_schedulers.noise_schedules import CosineSchedule, LogLinearSchedule
from jys_schedulers.schedules import (
    cosine_timesteps,
    heuristic_timesteps,
    masked_fraction,
    step_boundaries,
    timesteps_to_token_quota,
    uniform_timesteps,
    validate_schedule_dict,
    validate_timesteps,
)


def test_uniform_and_cosine_grids():
    assert uniform_timesteps(4) == [1.0, 0.75, 0.5, 0.25]
    ll = LogLinearSchedule()
    cos = cosine_timesteps(4, ll)
    assert cos == pytest.approx([math.cos(math.pi * i / 8) for i in range(4)])
    # on another schedule the cosine grid still follows the cosine masked fraction
    other = CosineSchedule()
    grid = cosine_timesteps(5, other)
    fractions = masked_fraction(grid, other)
    assert fractions[:-1] == pytest.approx([math.cos(math.pi * i / 10) for i in range(5)], abs=1e-9)
    assert heuristic_timesteps("uniform", 3, ll) == uniform_timesteps(3)
    with pytest.raises(ValueError, match="schedule"):
        heuristic_timesteps("karras", 3, ll)
    assert step_boundaries([1.0, 0.5]) == [1.0, 0.5, 0.0]


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        ([], ValueError, "at least one"),
        ([1.0, 1.0], ValueError, "strictly decreasing"),
        ([0.5, 0.7], ValueError, "strictly decreasing"),
        ([1.2, 0.5], ValueError, r"lie in"),
        ([1.0, 0.0], ValueError, r"lie in"),
        ([1.0, float("nan")], ValueError, "finite"),
        (["1.0"], TypeError, "real numbers"),
        ("1.0", TypeError, "list of floats"),
        (torch.ones(2, 2), ValueError, "1-D"),
    ],
)
def test_validate_timesteps_rejects(bad, exc, match):
    with pytest.raises(exc, match=match):
        validate_timesteps(bad)


def test_validate_timesteps_t_min_and_tensor():
    assert validate_timesteps(torch.tensor([1.0, 0.5])) == [1.0, 0.5]
    with pytest.raises(ValueError, match=r"\[0.001, 1\]"):
        validate_timesteps([1.0, 1e-4], t_min=1e-3)


def test_validate_schedule_dict_normalises_and_rejects():
    out = validate_schedule_dict({2: [1.0, 0.4], "1": [1.0]})
    assert out == {"1": [1.0], "2": [1.0, 0.4]} and list(out) == ["1", "2"]
    for bad, match in [
        ({"x": [1.0]}, "positive step counts"),
        ({"0": []}, "positive step counts"),
        ({"2": [1.0]}, "exactly 2"),
        ({"2": [1.0, 1.0]}, "strictly decreasing"),
        ({"1": 1.0}, "list of floats"),
        ({"2": [1.0, 0.5], 2: [1.0, 0.4]}, "two grids"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            validate_schedule_dict(bad)
    with pytest.raises(TypeError, match="mapping"):
        validate_schedule_dict([[1.0]])


def test_token_quota_sums_to_length_and_follows_the_grid():
    ll = LogLinearSchedule()
    assert timesteps_to_token_quota(uniform_timesteps(4), 64, ll) == [16, 16, 16, 16]
    q = timesteps_to_token_quota(cosine_timesteps(8, ll), 100, ll)
    assert sum(q) == 100 and all(k >= 0 for k in q) and q[0] < q[-1]
    odd = timesteps_to_token_quota([1.0, 0.9, 0.2], 7, ll)
    assert sum(odd) == 7 and odd == [1, 5, 1]
    with pytest.raises(ValueError, match="seq_len"):
        timesteps_to_token_quota([1.0], 0, ll)
