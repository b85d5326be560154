"""Calibration objectives against brute-force evaluations of their definitions (jys_schedulers.calibration.objectives).

Ground truth is computed here from METHOD.md §2–§5 with Python loops over positions and tokens, the exact posterior of
tests/_ground_truth.py and the coupling rule written out by hand; the package's vectorised estimators must agree to
round-off (1e-9 relative), and their average over many calibration sequences must match the exact expectation
(enumerating x0 and every coupling pattern) within 4 standard errors.
"""

import itertools
import math

import pytest
import torch

from _ground_truth import forward_matrix, posterior_x0
from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.calibration.data import CalibrationData, CountingDenoiser, sequence_noise
from jys_schedulers.calibration.objectives import (
    AbsorbingKLPairs,
    GenericKLPairs,
    TimeSlice,
    frozen_posterior_divergence,
    lump_top_k,
    make_pair_sums,
    pair_divergence,
)
from jys_schedulers.calibration.search import ProbeEvaluator
from jys_schedulers.processes import generalized_kl, generalized_kl_pairs
from jys_schedulers.tasks.oracle import make_oracle_distribution, sample_from_distribution
from jys_schedulers.testing import ExactDenoiser

TIMES = [1.0, 0.75, 0.5, 0.25, 0.125]  # float32-exact
DIST = make_oracle_distribution("markov", 3, 3, seed=0)
CASES = {
    "absorbing/x0": dict(vocab_size=4, mask_token_id=3, prediction_type="x0"),
    "absorbing/score": dict(vocab_size=4, mask_token_id=3, prediction_type="score", noise_schedule="cosine"),
    "uniform/x0": dict(vocab_size=3, transition="uniform", prediction_type="x0"),
}


def phi(a: float, b: float) -> float:
    if a == 0.0:
        return b
    return a * math.log(a / b) - a + b


# --------------------------------------------------------------------------------------------------- core helpers
def test_generalized_kl_matches_its_definition():
    gen = torch.Generator().manual_seed(0)
    p, q = torch.rand(5, 7, generator=gen, dtype=torch.float64), torch.rand(5, 7, generator=gen, dtype=torch.float64)
    p[0, 0] = 0.0
    expected = torch.tensor([sum(phi(float(a), float(b)) for a, b in zip(pr, qr)) for pr, qr in zip(p, q)], dtype=torch.float64)
    torch.testing.assert_close(generalized_kl(p, q), expected, rtol=1e-12, atol=1e-14)
    # KL for probability vectors, homogeneity, zero iff equal, +inf where q misses p
    pn, qn = p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)
    torch.testing.assert_close(generalized_kl(pn, qn), (torch.xlogy(pn, pn) - torch.xlogy(pn, qn)).sum(-1))
    torch.testing.assert_close(generalized_kl(3.0 * p, 3.0 * q), 3.0 * generalized_kl(p, q))
    assert torch.all(generalized_kl(p, p) == 0)
    assert generalized_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == math.inf


def test_generalized_kl_pairs_matches_loops():
    gen = torch.Generator().manual_seed(1)
    p = torch.rand(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    q = torch.rand(2, 6, 3, 5, generator=gen, dtype=torch.float64)
    p[..., 0], q[..., 0] = 0.0, 0.0  # a token nobody predicts (0 log 0)
    w = (torch.rand(2, 4, 3, generator=gen) < 0.6).double()
    out = generalized_kl_pairs(p, q, w)
    for b, j, i in itertools.product(range(2), range(4), range(6)):
        expected = sum(float(w[b, j, l]) * float(generalized_kl(p[b, j, l], q[b, i, l])) for l in range(3))
        assert out[b, j, i].item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------------------------- the estimators, per sample
def _noised(x0, u, alpha, transition, vocab, mask):
    """x_t from the coupling rule (METHOD.md §2), one position at a time."""
    out = []
    for x, noise in zip(x0, u):
        if transition == "absorbing":
            out.append(mask if noise < 1 - alpha else x)
        else:
            out.append(min(int(noise[1] * vocab), vocab - 1) if noise[0] < 1 - alpha else x)
    return out


def _rates(post, x, alpha, sigma, transition, vocab, mask):
    """R(x_l -> y) for y != x_l from the METHOD.md §3 formulas, as a list of dicts."""
    rates = []
    q = forward_matrix(transition, vocab, alpha, mask)  # q[x0, x]
    for l, x_l in enumerate(x):
        row = {}
        for y in range(vocab):
            if y == x_l:
                continue
            if transition == "absorbing":
                value = sigma * alpha / (1 - alpha) * float(post[l, y]) if (x_l == mask and y != mask) else 0.0
            else:
                ratio = sum(float(post[l, z]) * float(q[z, y]) / float(q[z, x_l]) for z in range(vocab))
                value = sigma / vocab * ratio
            row[y] = value
        rates.append(row)
    return rates


def slow_divergence(case, data, seed, r, s, objective="kl"):
    """Per-sequence integrand computed position by position and token by token."""
    sched = JYSDiscreteScheduler(**CASES[case])
    cfg, ns = sched.config, sched.noise_schedule
    transition, vocab, mask = cfg.transition, cfg.vocab_size, cfg.mask_token_id
    noise = sequence_noise(seed, torch.arange(data.shape[0]), data.shape[1], sched.process.noise_channels)
    out = []
    for n, x0 in enumerate(data.tolist()):
        u = noise[n].tolist()
        a_r, a_s = float(ns.alpha(r)), float(ns.alpha(s))
        x_r = _noised(x0, u, a_r, transition, vocab, mask)
        x_s = _noised(x0, u, a_s, transition, vocab, mask)
        p_r = posterior_x0(x_r, DIST.sequences, DIST.probs, forward_matrix(transition, vocab, a_r, mask), vocab)
        p_s = posterior_x0(x_s, DIST.sequences, DIST.probs, forward_matrix(transition, vocab, a_s, mask), vocab)
        rate = _rates(p_r, x_r, a_r, float(ns.rate(r)), transition, vocab, mask)
        if objective == "kl":
            frozen = _rates(p_s, x_r, a_r, float(ns.rate(r)), transition, vocab, mask)
            total = sum(phi(rate[l][y], frozen[l][y]) for l in range(len(x0)) for y in rate[l])
        else:  # reference: all columns of the rate at (x_r, r) against the rate at (x_s, s), +1e-8 in both logs
            start = _rates(p_s, x_s, a_s, float(ns.rate(s)), transition, vocab, mask)
            total = 0.0
            for l in range(len(x0)):
                for y in range(vocab):
                    a, b = rate[l].get(y, 0.0), start[l].get(y, 0.0)
                    total += a * (math.log(a + 1e-8) - math.log(b + 1e-8))
        out.append(total / len(x0))
    return torch.tensor(out, dtype=torch.float64)


def _setup(case, num=7, seed=3):
    sched = JYSDiscreteScheduler(**CASES[case])
    oracle = ExactDenoiser(DIST.sequences, DIST.probs, sched.process, sched.noise_schedule, sched.config.prediction_type)
    data = sample_from_distribution(DIST.sequences, DIST.probs, num, seed=11)
    return sched, oracle, data, seed


def _batch_pair_sums(sched, oracle, data, seed, objective, top_k=None, pairs=None):
    caller = CountingDenoiser(oracle, sched)
    batch = CalibrationData(data, data.shape[0], seed, sched.process).local_batch(0)
    pairs = pairs or make_pair_sums(objective, sched.process, sched.noise_schedule, len(TIMES), top_k)
    for index in reversed(range(len(TIMES))):
        x_t = caller.noised(batch, TIMES[index])
        pairs.add(index, TimeSlice(TIMES[index], x_t, caller.posterior(x_t, TIMES[index])))
    return pairs.finish()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("objective", ["kl", "paper"])
def test_pair_sums_and_probes_equal_the_slow_definition(case, objective):
    sched, oracle, data, seed = _setup(case)
    sums = _batch_pair_sums(sched, oracle, data, seed, objective)
    evaluator = ProbeEvaluator(CountingDenoiser(oracle, sched), CalibrationData(data, 3, seed, sched.process), objective, None, False)
    for j, i in [(1, 0), (3, 1), (4, 0), (4, 3)]:
        expected = slow_divergence(case, data, seed, TIMES[j], TIMES[i], objective)
        assert float(sums[j, i]) == pytest.approx(float(expected.sum()), rel=1e-9, abs=1e-12)
        assert evaluator.divergence(TIMES[j], TIMES[i]) == pytest.approx(float(expected.mean()), rel=1e-9, abs=1e-12)
    assert torch.all(torch.triu(sums) == 0)  # only j > i (r cleaner than s) is defined


def test_absorbing_cost_is_hazard_times_posterior_kl():
    """For absorbing, Σ φ(R_r, R̂_{r|s}) = c(r) Σ_{l masked in x_r} KL(p_r^l ‖ p_s^l) (METHOD.md §5(b))."""
    sched = JYSDiscreteScheduler(vocab_size=5, mask_token_id=4, noise_schedule="cosine")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 6, 5, generator=gen, dtype=torch.float64)
    x_r = torch.tensor([[4, 1, 4, 4, 0, 4], [4, 4, 4, 2, 4, 3]])
    p_r = sched.process.x0_probs_from_logits(logits[0], x_r)
    p_s = sched.process.x0_probs_from_logits(logits[1], torch.full_like(x_r, 4))
    value = frozen_posterior_divergence(sched.process, sched.noise_schedule, TimeSlice(0.55, x_r, p_r), p_s)
    kl = (torch.xlogy(p_r, p_r) - torch.xlogy(p_r, p_s)).sum(-1)
    expected = float(sched.noise_schedule.hazard(0.55)) * (kl * (x_r == 4)).sum(-1) / 6
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("prediction_type", ["x0", "score"])
def test_absorbing_fast_path_equals_definition(prediction_type):
    case = "absorbing/x0" if prediction_type == "x0" else "absorbing/score"
    sched, oracle, data, seed = _setup(case)
    fast = _batch_pair_sums(sched, oracle, data, seed, "kl", pairs=AbsorbingKLPairs(sched.process, sched.noise_schedule, len(TIMES)))
    generic = _batch_pair_sums(sched, oracle, data, seed, "kl", pairs=GenericKLPairs(sched.process, sched.noise_schedule, len(TIMES)))
    torch.testing.assert_close(fast, generic, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("case", ["absorbing/x0", "uniform/x0"])
def test_top_k_lumping_is_a_lower_bound_and_exact_at_full_width(case):
    sched, oracle, data, seed = _setup(case)
    vocab = sched.config.vocab_size
    full = _batch_pair_sums(sched, oracle, data, seed, "kl")
    one = _batch_pair_sums(sched, oracle, data, seed, "kl", top_k=1)
    every = _batch_pair_sums(sched, oracle, data, seed, "kl", top_k=vocab - 1)
    assert torch.all(one <= full + 1e-12)
    if case.startswith("absorbing"):  # 3 tokens: top-1 lumps two non-zero rates (uniform V=3 lumps one rate and a 0)
        assert float(one.sum()) < float(full.sum())
    torch.testing.assert_close(every, full, rtol=1e-10, atol=1e-13)
    # the streaming top-k pair sums equal the definition with lumping, pair by pair
    evaluator = ProbeEvaluator(CountingDenoiser(oracle, sched), CalibrationData(data, 7, seed, sched.process), "kl", 1, False)
    assert evaluator.divergence(TIMES[3], TIMES[1]) == pytest.approx(float(one[3, 1]) / data.shape[0], rel=1e-10)
    # lump_top_k keeps the k largest reference entries and sums the rest
    ref, other = lump_top_k(torch.tensor([0.1, 0.5, 0.2, 0.2]), torch.tensor([1.0, 2.0, 3.0, 4.0]), 1)
    torch.testing.assert_close(ref, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(other, torch.tensor([2.0, 8.0]))


# ------------------------------------------------------------------------------ expectation over the coupling
def _exact_expectation(case, r, s):
    """E[D(r, s)] enumerating every x0 of the table and every per-position coupling pattern (METHOD.md §2)."""
    sched = JYSDiscreteScheduler(**CASES[case])
    cfg, ns = sched.config, sched.noise_schedule
    vocab, mask, length = cfg.vocab_size, cfg.mask_token_id, DIST.sequences.shape[1]
    a_r, a_s = float(ns.alpha(r)), float(ns.alpha(s))
    if cfg.transition == "absorbing":  # (prob, x_r fn, x_s fn) per position: clean, masked at s only, masked at both
        patterns = [(a_s, lambda x: x, lambda x: x), (a_r - a_s, lambda x: x, lambda x: mask), (1 - a_r, lambda x: mask, lambda x: mask)]
    else:  # not resampled; resampled at s only (value v); resampled at both (value v)
        patterns = [(a_s, lambda x: x, lambda x: x)]
        for v in range(vocab):
            patterns += [((a_r - a_s) / vocab, lambda x: x, lambda x, v=v: v), ((1 - a_r) / vocab, lambda x, v=v: v, lambda x, v=v: v)]
    oracle = ExactDenoiser(DIST.sequences, DIST.probs, sched.process, ns)
    rows_r, rows_s, weights = [], [], []
    for x0, p0 in zip(DIST.sequences.tolist(), DIST.probs.tolist()):
        for combo in itertools.product(patterns, repeat=length):
            weights.append(p0 * math.prod(c[0] for c in combo))
            rows_r.append([c[1](x) for c, x in zip(combo, x0)])
            rows_s.append([c[2](x) for c, x in zip(combo, x0)])
    x_r, x_s = torch.tensor(rows_r), torch.tensor(rows_s)
    ref = TimeSlice(r, x_r, oracle.posterior(x_r, r))
    start = TimeSlice(s, x_s, oracle.posterior(x_s, s))
    values = pair_divergence("kl", sched.process, ns, ref, start)
    return float((torch.tensor(weights, dtype=torch.float64) * values).sum())


@pytest.mark.parametrize("case", ["absorbing/x0", "uniform/x0"])
def test_estimator_average_matches_exact_expectation(case):
    sched = JYSDiscreteScheduler(**CASES[case])
    oracle = ExactDenoiser(DIST.sequences, DIST.probs, sched.process, sched.noise_schedule)
    data = sample_from_distribution(DIST.sequences, DIST.probs, 4000, seed=5)
    caller = CountingDenoiser(oracle, sched)
    batch = CalibrationData(data, 4000, 0, sched.process).local_batch(0)
    r, s = 0.25, 0.75
    slices = {t: TimeSlice(t, x := caller.noised(batch, t), caller.posterior(x, t)) for t in (r, s)}
    values = pair_divergence("kl", sched.process, sched.noise_schedule, slices[r], slices[s])
    exact = _exact_expectation(case, r, s)
    stderr = float(values.std()) / math.sqrt(values.numel())
    assert abs(float(values.mean()) - exact) < 4 * stderr, (float(values.mean()), exact, stderr)
