"""Tests for jys_schedulers.tasks.oracle (explicit distributions for the exact oracle)."""

from __future__ import annotations

import math

import pytest
import torch

from jys_schedulers.tasks.oracle import (
    MARKOV_STICKINESS,
    MAX_ORACLE_SUPPORT,
    ORACLE_DISTRIBUTIONS,
    OracleDistribution,
    enumerate_sequences,
    make_oracle_distribution,
    markov_distribution,
    sample_from_distribution,
    sparse_distribution,
    total_correlation,
)

SHAPES = [(2, 1), (2, 5), (3, 4), (4, 3), (5, 2)]
SEEDED = ["all_equal", "markov", "sparse", "product"]


def entropy(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log()).sum())


@pytest.mark.parametrize("name", sorted(ORACLE_DISTRIBUTIONS))
@pytest.mark.parametrize("v, length", SHAPES)
def test_distribution_is_valid(name, v, length):
    dist = make_oracle_distribution(name, v, length, seed=0)
    assert isinstance(dist, OracleDistribution)
    seqs, probs = dist  # a plain tuple as well
    assert seqs.dtype == torch.long and seqs.dim() == 2 and seqs.shape[1] == length
    assert probs.dtype == torch.float64 and probs.shape == (seqs.shape[0],)
    assert torch.all(probs > 0)
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-12)
    assert int(seqs.min()) >= 0 and int(seqs.max()) < v
    assert torch.unique(seqs, dim=0).shape[0] == seqs.shape[0]  # distinct rows
    # lexicographic row order
    codes = (seqs * (v ** torch.arange(length - 1, -1, -1))).sum(1)
    assert torch.all(codes[1:] > codes[:-1])


@pytest.mark.parametrize("name", sorted(ORACLE_DISTRIBUTIONS))
def test_distribution_reproducible(name):
    a = make_oracle_distribution(name, 3, 4, seed=5)
    b = make_oracle_distribution(name, 3, 4, seed=5)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.probs, b.probs)


@pytest.mark.parametrize("name", SEEDED)
def test_seed_changes_seeded_distributions(name):
    a = make_oracle_distribution(name, 4, 3, seed=0)
    b = make_oracle_distribution(name, 4, 3, seed=1)
    assert a.sequences.shape != b.sequences.shape or not (
        torch.equal(a.sequences, b.sequences) and torch.allclose(a.probs, b.probs)
    )


@pytest.mark.parametrize("name", [n for n in sorted(ORACLE_DISTRIBUTIONS) if n != "product"])
@pytest.mark.parametrize("v, length", [(3, 4), (4, 3), (2, 6)])
def test_dependent_distributions_have_positive_total_correlation(name, v, length):
    tc = total_correlation(*make_oracle_distribution(name, v, length, seed=0))
    assert tc > 0.1


@pytest.mark.parametrize("v, length", [(3, 4), (4, 3), (2, 6)])
def test_product_control_is_independent(v, length):
    assert total_correlation(*make_oracle_distribution("product", v, length, seed=0)) < 1e-10


def test_all_equal_total_correlation_closed_form():
    seqs, probs = make_oracle_distribution("all_equal", 5, 4, seed=2)
    assert torch.all(seqs == seqs[:, :1])
    # all positions are copies of one variable: TC = L*H - H = (L-1) H(weights)
    assert total_correlation(seqs, probs) == pytest.approx(3 * entropy(probs), rel=1e-10)


def test_sum_mod_closed_form():
    seqs, probs = make_oracle_distribution("sum_mod", 3, 5)
    assert seqs.shape[0] == 3**4
    assert torch.all(seqs.sum(1) % 3 == 0)
    assert total_correlation(seqs, probs) == pytest.approx(math.log(3), rel=1e-10)


def test_monotone_closed_form():
    seqs, probs = make_oracle_distribution("monotone", 4, 3)
    assert seqs.shape[0] == math.comb(4 + 3 - 1, 3)
    assert torch.all(seqs[:, 1:] >= seqs[:, :-1])
    assert torch.allclose(probs, torch.full_like(probs, 1 / seqs.shape[0]))


def test_markov_probabilities_follow_the_chain():
    v, length = 3, 4
    seqs, probs = markov_distribution(v, length, seed=3)
    assert seqs.shape[0] == v**length
    # recover the permutation from the most likely successor of each state
    first_two = {}
    for s, p in zip(seqs.tolist(), probs.tolist()):
        first_two[(s[0], s[1])] = first_two.get((s[0], s[1]), 0.0) + p
    trans = torch.tensor([[first_two[(a, b)] * v for b in range(v)] for a in range(v)], dtype=torch.float64)
    assert torch.allclose(trans.sum(1), torch.ones(v, dtype=torch.float64))
    assert torch.allclose(trans.max(1).values, torch.full((v,), MARKOV_STICKINESS + (1 - MARKOV_STICKINESS) / v, dtype=torch.float64))
    perm = trans.argmax(1)
    assert sorted(perm.tolist()) == list(range(v))
    # one explicit sequence
    x = [0, int(perm[0]), int(perm[perm[0]]), 1]
    idx = [i for i, s in enumerate(seqs.tolist()) if s == x][0]
    want = (1 / v) * trans[x[0], x[1]] * trans[x[1], x[2]] * trans[x[2], x[3]]
    assert float(probs[idx]) == pytest.approx(float(want), rel=1e-10)


def test_product_marginals_multiply():
    seqs, probs = make_oracle_distribution("product", 3, 3, seed=4)
    marg = [torch.zeros(3, dtype=torch.float64).index_add_(0, seqs[:, col], probs) for col in range(3)]
    want = marg[0][seqs[:, 0]] * marg[1][seqs[:, 1]] * marg[2][seqs[:, 2]]
    assert torch.allclose(probs, want, rtol=1e-10)


def test_sparse_handles_huge_spaces_and_counts():
    seqs, probs = sparse_distribution(50, 20, seed=1)
    assert seqs.shape == (200, 20)
    assert torch.unique(seqs, dim=0).shape[0] == 200
    small = sparse_distribution(2, 2, seed=0)  # 4*V = 8 > V**L = 4: takes the whole space
    assert small.sequences.shape == (4, 2)
    assert sparse_distribution(3, 3, seed=0, num_sequences=5).sequences.shape == (5, 3)
    with pytest.raises(ValueError, match="num_sequences"):
        sparse_distribution(2, 2, num_sequences=5)


def test_enumerate_sequences():
    seqs = enumerate_sequences(3, 2)
    assert seqs.tolist() == [[a, b] for a in range(3) for b in range(3)]


@pytest.mark.parametrize(
    "args, exc, word",
    [
        (("markov", 1, 3), ValueError, "vocab_size"),
        (("markov", 3, 0), ValueError, "seq_len"),
        (("markov", 3.0, 3), TypeError, "vocab_size"),
        (("product", 10, 6), ValueError, "MAX_ORACLE_SUPPORT"),
        (("sum_mod", 10, 7), ValueError, "MAX_ORACLE_SUPPORT"),
        (("monotone", 40, 10), ValueError, "MAX_ORACLE_SUPPORT"),
        (("nope", 3, 3), ValueError, "all_equal"),
    ],
)
def test_bad_input(args, exc, word):
    with pytest.raises(exc, match=word):
        make_oracle_distribution(*args)


def test_support_limit_is_inclusive():
    assert MAX_ORACLE_SUPPORT == 100_000
    seqs, _ = make_oracle_distribution("product", 10, 5)  # exactly 100_000 rows
    assert seqs.shape == (100_000, 5)


def test_total_correlation_hand_cases():
    copy_bits = torch.tensor([[0, 0], [1, 1]])
    assert total_correlation(copy_bits, torch.tensor([0.5, 0.5], dtype=torch.float64)) == pytest.approx(math.log(2))
    indep = enumerate_sequences(2, 2)
    assert total_correlation(indep, torch.full((4,), 0.25, dtype=torch.float64)) == pytest.approx(0.0, abs=1e-12)
    # duplicate rows are merged before computing H(X)
    dup = torch.tensor([[0, 0], [0, 0], [1, 1]])
    assert total_correlation(dup, torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64)) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="probs"):
        total_correlation(copy_bits, torch.tensor([0.5, 0.6], dtype=torch.float64))
    with pytest.raises(ValueError, match="probs"):
        total_correlation(copy_bits, torch.tensor([1.0], dtype=torch.float64))
    with pytest.raises(TypeError, match="sequences"):
        total_correlation(copy_bits.float(), torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_sample_from_distribution_frequencies():
    seqs, probs = make_oracle_distribution("all_equal", 4, 3, seed=0)
    draws = sample_from_distribution(seqs, probs, 20000, seed=1)
    assert draws.shape == (20000, 3)
    freq = torch.bincount(draws[:, 0], minlength=4).double() / 20000
    # std of each frequency <= 0.0035; tolerance 0.02
    assert torch.allclose(freq, probs, atol=0.02)
    assert torch.equal(draws, sample_from_distribution(seqs, probs, 20000, seed=1))


@pytest.mark.parametrize("name", sorted(ORACLE_DISTRIBUTIONS))
def test_one_parallel_step_costs_exactly_the_total_correlation(name):
    """Integration with the exact oracle: decoding every position at once from the exact per-position
    posteriors samples the product of the marginals, so the one-step KL(p0 || p_sampler) equals TC."""
    from jys_schedulers import JYSDiscreteScheduler
    from jys_schedulers.testing import exact_kl

    seqs, probs = make_oracle_distribution(name, 3, 3, seed=0)
    sched = JYSDiscreteScheduler(vocab_size=4, mask_token_id=3, prediction_type="x0", sampler="tweedie")
    kl_1 = exact_kl(sched, seqs, probs, num_inference_steps=1, schedule="uniform")
    assert kl_1 == pytest.approx(total_correlation(seqs, probs), abs=1e-6)
    kl_8 = exact_kl(sched, seqs, probs, num_inference_steps=8, schedule="uniform")
    assert kl_8 <= kl_1 + 1e-9
