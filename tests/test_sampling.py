"""Categorical sampling, generator handling and the reference (truncated-noise) precision mode."""

import math

import pytest
import torch

from jys_schedulers.processes import Transition
from jys_schedulers.sampling import sample_categorical, sample_transition, uniform_noise


def _chi2_ok(counts: torch.Tensor, probs: torch.Tensor, n: int, df_slack: float = 4.0) -> bool:
    """Chi-square statistic below df + df_slack * sqrt(2 df) (about a 4-sigma bound)."""
    expected = probs * n
    stat = float(((counts - expected) ** 2 / expected).sum())
    df = probs.numel() - 1
    return stat < df + df_slack * math.sqrt(2 * df)


def test_float64_categorical_matches_probabilities():
    probs = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    n = 40000
    draws = sample_categorical(probs.expand(n, -1), torch.Generator().manual_seed(1))
    counts = torch.bincount(draws, minlength=5).double()
    assert _chi2_ok(counts, probs, n)


def test_unnormalised_and_zero_probabilities():
    probs = torch.tensor([[0.0, 3.0, 1.0, 0.0]]).expand(20000, -1)
    draws = sample_categorical(probs, torch.Generator().manual_seed(2))
    assert set(draws.unique().tolist()) <= {1, 2}
    assert abs(float((draws == 1).double().mean()) - 0.75) < 0.015


def test_same_seed_same_samples_and_generator_lists_are_per_row():
    probs = torch.rand(3, 7, 11, generator=torch.Generator().manual_seed(0))
    a = sample_categorical(probs, torch.Generator().manual_seed(5))
    b = sample_categorical(probs, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    gens = [torch.Generator().manual_seed(s) for s in (10, 11, 12)]
    full = sample_categorical(probs, gens)
    alone = sample_categorical(probs[1:2], [torch.Generator().manual_seed(11)])
    assert torch.equal(full[1:2], alone), "row b must depend on generator b only"
    with pytest.raises(ValueError, match="generator"):
        sample_categorical(probs, gens[:2])
    with pytest.raises(TypeError, match="generator"):
        sample_categorical(probs, 123)


def test_uniform_noise_range_dtype_and_device():
    u = uniform_noise((4, 5), torch.Generator().manual_seed(0), "cpu", torch.float64)
    assert u.dtype == torch.float64 and u.shape == (4, 5) and float(u.min()) >= 0 and float(u.max()) < 1


def test_reference_precision_lowers_entropy_on_a_peaked_distribution():
    """The reference's truncated float32 noise (E >= 1e-6) almost never picks tokens ~1e6 times rarer than the mode:
    the low-temperature effect of arXiv 2409.02908. Exact float64 sampling reproduces their total mass."""
    rare, n_rare = 2e-6, 2000
    probs = torch.full((n_rare + 1,), rare, dtype=torch.float64)
    probs[0] = 1 - rare * n_rare  # the rare tokens carry 0.4% of the mass in total
    n, chunk = 80_000, 10_000
    hits = {"float64": 0, "reference": 0}
    entropy = {}
    for precision in hits:
        gen = torch.Generator().manual_seed(0)
        draws = torch.cat([sample_categorical(probs.expand(chunk, -1), gen, precision) for _ in range(n // chunk)])
        hits[precision] = int((draws != 0).sum())
        freq = torch.bincount(draws, minlength=n_rare + 1).double() / n
        entropy[precision] = float(-(freq[freq > 0] * freq[freq > 0].log()).sum())
    expected = n * rare * n_rare  # 320, binomial sd ~ 18
    assert abs(hits["float64"] - expected) < 5 * math.sqrt(expected)
    assert hits["reference"] < 0.6 * expected, hits
    assert entropy["reference"] < entropy["float64"] - 0.005, entropy


def test_sample_transition_two_stage_matches_the_kernel():
    jump = torch.tensor([[0.0, 0.3, 1.0]], dtype=torch.float64)
    target = torch.tensor([[[0, 1, 0, 0], [0.5, 0, 0.25, 0.25], [0, 0, 1, 0]]], dtype=torch.float64)
    x = torch.tensor([[1, 1, 3]])
    tr = Transition(jump, target)
    n = 30000
    xs = x.expand(n, -1).clone()
    tr_n = Transition(jump.expand(n, -1), target.expand(n, -1, -1))
    out = sample_transition(tr_n, xs, torch.Generator().manual_seed(3))
    assert torch.all(out[:, 0] == 1) and torch.all(out[:, 2] == 2)
    counts = torch.bincount(out[:, 1], minlength=4).double()
    assert _chi2_ok(counts, tr.probs(x)[0, 1], n)
    ref = sample_transition(tr_n, xs, torch.Generator().manual_seed(3), precision="reference")
    assert _chi2_ok(torch.bincount(ref[:, 1], minlength=4).double(), tr.probs(x)[0, 1], n)
    with pytest.raises(ValueError, match="precision"):
        sample_transition(tr, x, precision="float16")
