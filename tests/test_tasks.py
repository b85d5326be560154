"""Tests for jys_schedulers.tasks.countdown (generator, intended metric, reference-quirk metric)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from jys_schedulers import tasks
from jys_schedulers.tasks import (
    CountdownTask,
    countdown_error_rate,
    countdown_error_rate_reference,
    expected_random_error_rate,
    expected_random_error_rate_reference,
    generate_countdown,
)


# ----------------------------------------------------------------------------- literal ports


def reference_check_err_literal(seq: list[int]) -> list[bool]:
    """Literal port of the reference recursion (check_err): the ground truth for the quirk."""
    out = [True]
    prev = seq[0]
    for cur in seq[1:]:
        if prev == 0:
            out.append(True)
            prev = cur
        else:
            out.append(prev - 1 == cur)
            prev = 0
    return out


def reference_error_literal(seq: list[int]) -> float:
    ok = reference_check_err_literal(seq)
    return 1.0 - sum(ok) / len(ok)


def intended_error_literal(seq: list[int], num_digits: int | None) -> float:
    """Intended rule, token by token, denominator L (first token correct unless invalid)."""

    def valid(v: int) -> bool:
        return num_digits is None or 0 <= v < num_digits

    errors = 0 if valid(seq[0]) else 1
    for prev, cur in zip(seq[:-1], seq[1:]):
        if not valid(cur) or (valid(prev) and prev != 0 and cur != prev - 1):
            errors += 1
    return errors / len(seq)


def split_runs(row: list[int]) -> list[list[int]]:
    runs, cur = [], [row[0]]
    for prev, tok in zip(row[:-1], row[1:]):
        if prev == 0:
            runs.append(cur)
            cur = [tok]
        else:
            cur.append(tok)
    runs.append(cur)
    return runs


# ----------------------------------------------------------------------------- generator


def test_public_api_exported():
    for name in tasks.__all__:
        assert hasattr(tasks, name), name


def test_generator_shape_dtype_range():
    x = generate_countdown(64, seq_len=100, num_digits=10, seed=3)
    assert x.shape == (64, 100) and x.dtype == torch.long
    assert int(x.min()) >= 0 and int(x.max()) <= 9


def test_generator_produces_valid_countdowns_only():
    x = generate_countdown(16384, seq_len=256, num_digits=32, seed=0)  # the JYS training-set size
    assert torch.all(countdown_error_rate(x) == 0)
    assert torch.all(countdown_error_rate_reference(x) == 0)
    prev, cur = x[:, :-1], x[:, 1:]
    assert torch.all((prev == 0) | (cur == prev - 1))


def test_generator_run_structure():
    x = generate_countdown(200, seq_len=64, num_digits=8, seed=5)
    for row in x.tolist():
        runs = split_runs(row)
        for run in runs[:-1]:  # complete runs: k, k-1, ..., 0
            assert run == list(range(run[0], -1, -1))
        last = runs[-1]  # the truncated run is a prefix of a countdown
        assert last == list(range(last[0], last[0] - len(last), -1))
        assert sum(len(r) for r in runs) == 64


def test_generator_run_starts_uniform():
    # Run starts (first token and every token after a 0) are i.i.d. uniform on 0..V-1.
    v = 8
    x = generate_countdown(2000, seq_len=64, num_digits=v, seed=11)
    starts = torch.cat([x[:, 0], x[:, 1:][x[:, :-1] == 0]])
    freq = torch.bincount(starts, minlength=v).double() / starts.numel()
    # n > 2000 starts: each frequency has std <= sqrt(1/8*7/8/2000) ~ 0.0074; tolerance 0.03 (~4 sigma).
    assert torch.allclose(freq, torch.full((v,), 1 / v, dtype=torch.float64), atol=0.03)
    first = torch.bincount(x[:, 0], minlength=v).double() / 2000
    assert torch.allclose(first, torch.full((v,), 1 / v, dtype=torch.float64), atol=0.04)


def test_generator_seeded():
    a = generate_countdown(32, 50, 16, seed=1)
    b = generate_countdown(32, 50, 16, seed=1)
    c = generate_countdown(32, 50, 16, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_generator_edge_cases():
    assert torch.equal(generate_countdown(3, 5, num_digits=1), torch.zeros(3, 5, dtype=torch.long))
    assert generate_countdown(4, seq_len=1).shape == (4, 1)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2, "seq_len": 0}, ValueError, "seq_len"),
        ({"num_samples": 2, "num_digits": 0}, ValueError, "num_digits"),
        ({"num_samples": 2.0}, TypeError, "num_samples"),
        ({"num_samples": True}, TypeError, "num_samples"),
        ({"num_samples": 2, "seed": "x"}, TypeError, "seed"),
    ],
)
def test_generator_bad_input(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        generate_countdown(**kwargs)


# ----------------------------------------------------------------------------- intended metric


@pytest.mark.parametrize(
    "seq, expected",
    [
        ([5, 9, 9, 9, 9, 9], Fraction(5, 6)),  # every token after 5 is wrong; first counted correct
        ([3, 2, 1, 0, 5, 4], Fraction(0)),
        ([0, 0, 0, 7], Fraction(0)),  # after a 0 anything may start a run
        ([3, 1, 0], Fraction(1, 3)),  # 1 != 2 is an error; 0 after 1 is right
        ([4], Fraction(0)),
        ([2, 2], Fraction(1, 2)),
    ],
)
def test_intended_metric_known_cases(seq, expected):
    got = countdown_error_rate(torch.tensor([seq]))
    assert got.shape == (1,)
    assert got.item() == pytest.approx(float(expected), abs=1e-7)


def test_intended_metric_invalid_tokens():
    # With num_digits=32 the mask id 32 is an error and constrains nothing after it.
    x = torch.tensor([[5, 32, 7]])
    assert countdown_error_rate(x, num_digits=32).item() == pytest.approx(1 / 3)
    # Bare rule: 32 != 4 and 7 != 31 are both errors.
    assert countdown_error_rate(x, num_digits=None).item() == pytest.approx(2 / 3)
    assert countdown_error_rate(torch.tensor([[32, 31, 30]]), num_digits=32).item() == pytest.approx(1 / 3)
    assert countdown_error_rate(torch.tensor([[-1, 0]]), num_digits=32).item() == pytest.approx(1 / 2)


@pytest.mark.parametrize("num_digits, v", [(32, 32), (4, 5), (None, 3)])
def test_intended_metric_matches_literal_rule(num_digits, v):
    g = torch.Generator().manual_seed(7)
    x = torch.randint(0, v, (200, 17), generator=g)
    got = countdown_error_rate(x, num_digits=num_digits)
    want = torch.tensor([intended_error_literal(r, num_digits) for r in x.tolist()])
    assert torch.allclose(got, want.float(), atol=1e-6)


def test_intended_metric_random_expectation():
    # E[rate] for i.i.d. uniform tokens = (L-1)/L * ((V-1)/V)^2 = 255/256 * 961/1024 = 245055/262144 ≈ 0.934818.
    exact = Fraction(255, 256) * Fraction(31, 32) ** 2
    assert exact == Fraction(245055, 262144)
    assert expected_random_error_rate(256, 32) == pytest.approx(float(exact), rel=1e-12)
    x = torch.randint(0, 32, (4096, 256), generator=torch.Generator().manual_seed(0))
    mean = countdown_error_rate(x).double().mean().item()
    # Per-sample std ≈ 0.016, so the mean over 4096 rows has std ≈ 2.5e-4; tolerance 2e-3 (8 sigma).
    assert mean == pytest.approx(float(exact), abs=2e-3)


# ----------------------------------------------------------------------------- reference quirk


def test_reference_quirk_hand_cases():
    assert reference_check_err_literal([5, 9, 9, 9, 9, 9]) == [True, False, True, False, True, False]
    x = torch.tensor([[5, 9, 9, 9, 9, 9]])
    assert countdown_error_rate_reference(x).item() == pytest.approx(0.5)
    assert countdown_error_rate(x).item() == pytest.approx(5 / 6)  # intended, per token
    # The quirk accepts the token after any checked token, however wrong.
    y = torch.tensor([[3, 2, 17, 16, 15]])
    assert countdown_error_rate_reference(y).item() == pytest.approx(0.0)
    assert countdown_error_rate(y).item() == pytest.approx(1 / 5)


@pytest.mark.parametrize("v, length", [(32, 256), (3, 40), (2, 9), (5, 1)])
def test_reference_metric_equals_literal_port(v, length):
    g = torch.Generator().manual_seed(v * 100 + length)
    x = torch.randint(0, v, (300, length), generator=g)
    got = countdown_error_rate_reference(x)
    want = torch.tensor([reference_error_literal(r) for r in x.tolist()], dtype=torch.float32)
    assert torch.allclose(got, want, atol=1e-6)


def test_reference_metric_equals_literal_port_on_near_valid_data():
    # Corrupted countdowns exercise long runs of correct transitions mixed with errors.
    x = generate_countdown(100, 64, 10, seed=2)
    g = torch.Generator().manual_seed(3)
    flip = torch.rand(x.shape, generator=g) < 0.1
    x = torch.where(flip, torch.randint(0, 10, x.shape, generator=g), x)
    want = torch.tensor([reference_error_literal(r) for r in x.tolist()], dtype=torch.float32)
    assert torch.allclose(countdown_error_rate_reference(x), want, atol=1e-6)
    intended = torch.tensor([intended_error_literal(r, 10) for r in x.tolist()], dtype=torch.float32)
    assert torch.allclose(countdown_error_rate(x, 10), intended, atol=1e-6)


def test_reference_random_expectation():
    # Exact expectation from the check-probability recursion c_0 = 0, c_{i+1} = (1 - c_i) q, q = 31/32:
    # E = q * sum_{i<256} c_i / 256 ≈ 0.47574 (stationary limit q^2/(1+q) = 961/2016 ≈ 0.4767).
    q = Fraction(31, 32)
    c, total = Fraction(0), Fraction(0)
    for _ in range(256):
        total += c
        c = (1 - c) * q
    exact = float(q * total / 256)
    assert exact == pytest.approx(0.47574, abs=1e-5)
    assert expected_random_error_rate_reference(256, 32) == pytest.approx(exact, rel=1e-12)
    x = torch.randint(0, 32, (4096, 256), generator=torch.Generator().manual_seed(1))
    mean = countdown_error_rate_reference(x).double().mean().item()
    # Per-sample std ≈ 0.03 -> std of the mean ≈ 5e-4; tolerance 3e-3.
    assert mean == pytest.approx(exact, abs=3e-3)


@pytest.mark.parametrize("fn", [countdown_error_rate, countdown_error_rate_reference])
def test_metrics_bad_input(fn):
    with pytest.raises(TypeError, match="samples"):
        fn(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="samples"):
        fn(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="samples"):
        fn([[1, 0]])


# ----------------------------------------------------------------------------- task object


def test_countdown_task_conventions():
    task = CountdownTask(seq_len=64, num_digits=16)
    assert task.vocab_size("absorbing") == 17
    assert task.vocab_size("uniform") == 16
    assert task.mask_token_id == 16 and task.num_data_tokens == 16
    x = task.sample(8, seed=4)
    assert torch.equal(x, generate_countdown(8, 64, 16, seed=4))
    assert torch.all(task.error_rate(x) == 0) and torch.all(task.error_rate_reference(x) == 0)
    masked = x.clone()
    masked[:, 10] = task.mask_token_id
    assert torch.all(task.error_rate(masked) > 0)
    with pytest.raises(ValueError, match="transition"):
        task.vocab_size("gaussian")
    with pytest.raises(ValueError, match="seq_len"):
        task.error_rate(x[:, :10])
    with pytest.raises(ValueError, match="num_digits"):
        CountdownTask(seq_len=8, num_digits=1)
    with pytest.raises(TypeError, match="seq_len"):
        CountdownTask(seq_len=8.0)
    assert CountdownTask() == CountdownTask(256, 32)
