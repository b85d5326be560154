"""The exact oracle: many steps recover the data, fewer steps cost KL, and the exact law matches real sampling."""

import math

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.testing import (
    ExactDenoiser,
    enumerate_states,
    exact_kl,
    exact_sampler_distribution,
    kl_divergence,
    state_index,
)

# strongly dependent data: mostly constant sequences, plus two "ramps"
DATA = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2], [0, 1, 2, 0], [2, 1, 0, 2]])
PROBS = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)

CASES = {
    "absorbing/x0/tweedie": dict(vocab_size=4, mask_token_id=3, prediction_type="x0", sampler="tweedie"),
    "absorbing/score/euler": dict(vocab_size=4, mask_token_id=3, prediction_type="score", sampler="euler"),
    "uniform/x0/tweedie": dict(vocab_size=3, transition="uniform", prediction_type="x0", sampler="tweedie"),
    "uniform/score/euler": dict(vocab_size=3, transition="uniform", prediction_type="score", sampler="euler"),
}


@pytest.mark.parametrize("case", CASES)
def test_many_steps_recover_the_data_distribution(case):
    sched = JYSDiscreteScheduler(**CASES[case])
    kl = exact_kl(sched, DATA, PROBS, num_inference_steps=512, schedule="uniform")
    # parallel decoding error shrinks like 1/N; at 512 steps it is below 0.01 nats (vs ~1-3 nats at 1-2 steps)
    assert kl < 0.01, kl


@pytest.mark.parametrize("case", ["absorbing/x0/tweedie", "uniform/x0/tweedie"])
def test_fewer_steps_raise_the_exact_kl_monotonically(case):
    sched = JYSDiscreteScheduler(**CASES[case])
    kls = [exact_kl(sched, DATA, PROBS, num_inference_steps=n, schedule="uniform") for n in (1, 2, 4, 8, 16, 32, 64)]
    assert all(a > b for a, b in zip(kls, kls[1:])), kls
    assert kls[0] > 1.0 and kls[-1] < 0.1  # the compounding decoding error is large at one step


def test_exact_law_matches_monte_carlo_sampling():
    """Sample with `scheduler.step` driven by the oracle and compare with the propagated law (4 steps)."""
    sched = JYSDiscreteScheduler(**CASES["absorbing/x0/tweedie"])
    oracle = ExactDenoiser(DATA, PROBS, sched.process, sched.noise_schedule)
    exact = exact_sampler_distribution(sched, oracle, seq_len=4, timesteps=[1.0, 0.7, 0.4, 0.1])
    sched.set_timesteps(timesteps=[1.0, 0.7, 0.4, 0.1])
    n = 20000
    x = sched.sample_prior(n, 4)
    gen = torch.Generator().manual_seed(0)
    for t in sched.timesteps:
        x = sched.step(oracle(x, t), t, x, generator=gen).prev_sample
    freq = torch.bincount(state_index(x, 4), minlength=4**4).double() / n
    assert math.isclose(float(exact.sum()), 1.0, abs_tol=1e-12)
    tv = 0.5 * float((freq - exact).abs().sum())
    assert tv < 0.03, tv  # sampling noise of TV with ~40 occupied states at n=20000 is ~0.01
    sd = (exact * (1 - exact) / n).sqrt()
    assert torch.all((freq - exact).abs() < 5 * sd + 1e-4)


def test_oracle_is_defined_on_impossible_states():
    sched = JYSDiscreteScheduler(**CASES["absorbing/x0/tweedie"])
    oracle = ExactDenoiser(DATA, PROBS, sched.process, sched.noise_schedule)
    post = oracle.posterior(torch.tensor([[0, 3, 3, 2]]), 0.5)  # no data sequence starts with 0 and ends with 2
    assert torch.isfinite(post).all()
    torch.testing.assert_close(post.sum(-1), torch.ones(1, 4, dtype=torch.float64))
    # the closest sequences (one mismatch) are 0000, 0120 and 2222
    assert float(post[0, 1, 0]) > 0 and float(post[0, 1, 1]) > 0 and float(post[0, 1, 2]) > 0


def test_enumeration_helpers_and_kl():
    states = enumerate_states(3, 4)
    assert states.shape == (81, 4) and torch.equal(state_index(states, 3), torch.arange(81))
    dist = torch.zeros(81, dtype=torch.float64)
    dist[state_index(DATA, 3)] = PROBS
    assert kl_divergence(DATA, PROBS, dist, 3) == pytest.approx(0.0, abs=1e-15)
    dist2 = dist.clone()
    dist2[state_index(DATA[:1], 3)] = 0.0
    assert kl_divergence(DATA, PROBS, dist2, 3) == math.inf
    with pytest.raises(ValueError, match="too many"):
        enumerate_states(50, 8)
    with pytest.raises(ValueError, match="probs"):
        ExactDenoiser(DATA, PROBS * 2, JYSDiscreteScheduler(**CASES["uniform/x0/tweedie"]).process, None)
