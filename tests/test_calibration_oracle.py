"""Quality of calibrated grids on the exact oracle (METHOD.md §8): exact KL(data ‖ sampler) of the default calibration
against the uniform and cosine grids at every step count 2..16, against a brute-force optimal grid at 2..4 steps, and
for the uniform-state process. Fixed seeds; the thresholds are the measured margins rounded down (see each test)."""

import itertools

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.calibration import calibrate
from jys_schedulers.tasks.oracle import make_oracle_distribution, sample_from_distribution
from jys_schedulers.testing import ExactDenoiser, enumerate_states, exact_kl, kl_divergence

STEPS = list(range(2, 17))


def _setup(name, noise_schedule, transition="absorbing", seq_len=4, num=2000):
    dist = make_oracle_distribution(name, 3, seq_len, seed=0)
    kwargs = dict(vocab_size=4, mask_token_id=3) if transition == "absorbing" else dict(vocab_size=3, transition="uniform")
    sched = JYSDiscreteScheduler(**kwargs, noise_schedule=noise_schedule)
    oracle = ExactDenoiser(dist.sequences, dist.probs, sched.process, sched.noise_schedule)
    data = sample_from_distribution(dist.sequences, dist.probs, num, seed=1)
    return dist, sched, oracle, data


def _kl(sched, dist, oracle, **grid):
    return exact_kl(sched, dist.sequences, dist.probs, denoiser=oracle, **grid)


@pytest.mark.parametrize("name", ["all_equal", "markov"])
@pytest.mark.parametrize("noise_schedule", ["loglinear", "cosine"])
def test_default_calibration_beats_uniform_and_cosine_grids(name, noise_schedule):
    dist, sched, oracle, data = _setup(name, noise_schedule)
    result = calibrate(oracle, sched, data, STEPS, batch_size=1000, progress=False)
    for n in STEPS:
        ours = _kl(sched, dist, oracle, timesteps=result.schedules[str(n)])
        uniform = _kl(sched, dist, oracle, num_inference_steps=n, schedule="uniform")
        cosine = _kl(sched, dist, oracle, num_inference_steps=n, schedule="cosine")
        # measured KL ratios (seeds as here): uniform/ours 1.14-2.26; cosine/ours 1.09-1.22 from 3 steps on
        assert ours < uniform / 1.05, (n, ours, uniform)
        if n >= 3:
            assert ours < cosine / 1.03, (n, ours, cosine)
        else:
            # At 2 steps the minimiser of the path-KL bound is not the KL minimiser: even with the exact D the bound
            # picks t_1 ≈ 0.63 on log-linear where the KL optimum is 0.69 and cosine's 0.71. Measured: 1-6% behind
            # cosine (and within 10% of the brute-force optimum, next test).
            assert ours < cosine * 1.07, (n, ours, cosine)


def _kernel(sched, oracle, states, t, s):
    """Exact state-to-state kernel (S, S) of one step from t to s (s = 0: the final denoising step)."""
    sched.set_timesteps(timesteps=[t, s] if s > 0 else [t])
    probs = sched.step_transition(oracle(states, torch.full((states.shape[0],), t)), t, states).probs(states)
    joint = probs[:, 0, :]
    for pos in range(1, states.shape[1]):
        joint = (joint.unsqueeze(-1) * probs[:, pos, None, :]).reshape(states.shape[0], -1)
    return joint


def brute_force_kls(sched, oracle, dist, times, max_steps):
    """min over all grids [1, t_1, ..., t_{n-1}] ⊂ times of the exact KL, for n = 2..max_steps."""
    vocab, seq_len = sched.config.vocab_size, dist.sequences.shape[1]
    states = enumerate_states(vocab, seq_len)
    sched = JYSDiscreteScheduler.from_config(sched.config)
    kernels = {(a, b): _kernel(sched, oracle, states, times[a], times[b]) for a, b in itertools.combinations(range(len(times)), 2)}
    finals = [_kernel(sched, oracle, states, t, 0.0) for t in times]
    prior = sched.process.prior_probs()[states].prod(-1)
    best = {}
    frontier = {(0,): prior}
    for n in range(2, max_steps + 1):
        frontier = {path + (b,): dist_ @ kernels[path[-1], b] for path, dist_ in frontier.items() for b in range(path[-1] + 1, len(times))}
        best[n] = min(kl_divergence(dist.sequences, dist.probs, d @ finals[p[-1]], vocab) for p, d in frontier.items())
    return best


@pytest.mark.parametrize("name", ["all_equal", "markov"])
def test_calibration_is_within_ten_percent_of_the_brute_force_optimum(name):
    # 8000 sequences: with 2000 the 4-step grid of "markov" was 9% above the optimum (sampling noise of the pair
    # sums moved its last time from 0.33 to 0.23); with 8000 every ratio below is at most 1.013.
    dist, sched, oracle, data = _setup(name, "loglinear", seq_len=3, num=8000)
    result = calibrate(oracle, sched, data, [2, 3, 4], batch_size=4000, progress=False)
    fine = [1.0 - k / 40 for k in range(40)]  # every grid on a 0.025 lattice
    best = brute_force_kls(sched, oracle, dist, fine, 4)
    for n in (2, 3, 4):
        ours = _kl(sched, dist, oracle, timesteps=result.schedules[str(n)])
        assert ours <= 1.05 * best[n], (n, ours, best[n])


@pytest.mark.parametrize("name", ["all_equal", "markov"])
def test_uniform_process_calibration_beats_the_uniform_grid(name):
    dist, sched, oracle, data = _setup(name, "loglinear", transition="uniform", num=1000)
    result = calibrate(oracle, sched, data, STEPS, num_candidates=64, batch_size=500, progress=False)
    for n in STEPS:
        ours = _kl(sched, dist, oracle, timesteps=result.schedules[str(n)])
        uniform = _kl(sched, dist, oracle, num_inference_steps=n, schedule="uniform")
        assert ours < uniform / 1.2, (n, ours, uniform)  # measured ratios 1.46-3.17
