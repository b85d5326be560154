"""Noise schedules: closed forms, derivative, inverse and hazard against independent computations."""

import math

import pytest
import torch

from jys_schedulers.noise_schedules import (
    NOISE_SCHEDULES,
    CosineSchedule,
    GeometricSchedule,
    LinearSchedule,
    LogLinearSchedule,
    get_noise_schedule,
)

ALL = [LogLinearSchedule(), LinearSchedule(), CosineSchedule(), GeometricSchedule(), LogLinearSchedule(eps=0.0)]
T = torch.linspace(0.01, 0.99, 41, dtype=torch.float64)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_alpha_is_exp_minus_total_noise(schedule):
    torch.testing.assert_close(schedule.alpha(T), torch.exp(-schedule.total_noise(T)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_rate_is_derivative_of_total_noise(schedule):
    h = 1e-6
    numeric = (schedule.total_noise(T + h) - schedule.total_noise(T - h)) / (2 * h)
    torch.testing.assert_close(schedule.rate(T), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_inverse_round_trip_and_monotone(schedule):
    alpha = schedule.alpha(T)
    assert torch.all(alpha[1:] < alpha[:-1]), "alpha must decrease in t"
    torch.testing.assert_close(schedule.inverse(alpha), T, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("schedule", ALL, ids=repr)
def test_hazard_matches_definition(schedule):
    alpha = schedule.alpha(T)
    torch.testing.assert_close(schedule.hazard(T), schedule.rate(T) * alpha / (1 - alpha), rtol=1e-9, atol=0)


def test_loglinear_closed_forms():
    s = LogLinearSchedule(eps=1e-3)
    assert float(s.alpha(1.0)) == pytest.approx(1e-3)
    assert float(s.alpha(0.0)) == 1.0
    assert float(s.rate(0.5)) == pytest.approx(0.999 / (1 - 0.999 * 0.5))
    # c(t) = 1/t exactly for the log-linear schedule
    torch.testing.assert_close(s.hazard(T), 1.0 / T, rtol=1e-12, atol=0)
    assert float(s.hazard(1e-7)) == pytest.approx(1e7, rel=1e-6)


def test_float_and_tensor_inputs_and_device_shape():
    s = CosineSchedule()
    assert s.alpha(0.3).dtype == torch.float64 and s.alpha(0.3).dim() == 0
    x = torch.rand(3, 4)
    assert s.alpha(x).shape == (3, 4)


def test_registry_and_bad_parameters():
    assert set(NOISE_SCHEDULES) == {"loglinear", "linear", "cosine", "geometric"}
    assert get_noise_schedule("geometric", sigma_min=1e-3, sigma_max=5.0) == GeometricSchedule(1e-3, 5.0)
    with pytest.raises(ValueError, match="noise_schedule"):
        get_noise_schedule("sqrt")
    with pytest.raises(ValueError, match="eps"):
        LogLinearSchedule(eps=1.5)
    with pytest.raises(ValueError, match="sigma_min"):
        GeometricSchedule(sigma_min=0.0)
    with pytest.raises(ValueError, match="Invalid parameters"):
        get_noise_schedule("loglinear", sigma_max=3.0)
    assert math.isfinite(float(LinearSchedule().total_noise(1.0)))
