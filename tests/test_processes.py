"""Forward processes, scores and one-step kernels against brute-force ground truth (tests/_ground_truth.py)."""

import pytest
import torch

from jys_schedulers.noise_schedules import CosineSchedule, LogLinearSchedule
from jys_schedulers.processes import AbsorbingProcess, UniformProcess, get_process
from jys_schedulers.testing import ExactDenoiser

from _ground_truth import forward_matrix, posterior_x0, true_score, true_step_posterior

DATA = torch.tensor([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 1, 2], [2, 1, 0]])
PROBS = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
MASK = 3


def _setup(transition):
    if transition == "absorbing":
        return AbsorbingProcess(4, MASK), 4, MASK
    return UniformProcess(3), 3, None


STATES = {
    "absorbing": [[3, 3, 3], [0, 3, 3], [3, 1, 3], [2, 3, 0], [0, 1, 3]],
    "uniform": [[0, 0, 0], [0, 1, 2], [2, 2, 1], [1, 0, 1]],
}


@pytest.mark.parametrize("transition", ["absorbing", "uniform"])
def test_exact_denoiser_posterior_and_score_match_brute_force(transition):
    process, vocab, mask = _setup(transition)
    schedule = LogLinearSchedule()
    t = 0.6
    alpha = float(schedule.alpha(t))
    k = forward_matrix(transition, vocab, alpha, mask)
    oracle = ExactDenoiser(DATA, PROBS, process, schedule)
    x = torch.tensor(STATES[transition])
    post = oracle.posterior(x, t)
    score = process.score_from_x0(post, x, alpha)
    for b, row in enumerate(x.tolist()):
        torch.testing.assert_close(post[b], posterior_x0(row, DATA, PROBS, k, vocab), rtol=1e-10, atol=1e-12)
        expected = true_score(row, DATA, PROBS, k, vocab)
        if transition == "absorbing":  # only masked positions have a score that the sampler uses
            masked = x[b] == MASK
            torch.testing.assert_close(score[b][masked][:, :MASK], expected[masked][:, :MASK], rtol=1e-9, atol=1e-12)
        else:
            torch.testing.assert_close(score[b], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("transition", ["absorbing", "uniform"])
@pytest.mark.parametrize("times", [(0.9, 0.5), (0.5, 0.45), (0.3, 0.0)])
def test_tweedie_is_the_exact_posterior_step(transition, times):
    process, vocab, mask = _setup(transition)
    schedule = CosineSchedule()
    t, s = times
    alpha_t, alpha_s = float(schedule.alpha(t)), float(schedule.alpha(s))
    oracle = ExactDenoiser(DATA, PROBS, process, schedule)
    x = torch.tensor(STATES[transition])
    score = process.score_from_x0(oracle.posterior(x, t), x, alpha_t)
    kernel = process.tweedie(score, x, alpha_t, alpha_s).probs(x)
    for b, row in enumerate(x.tolist()):
        expected = true_step_posterior(row, DATA, PROBS, transition, vocab, alpha_t, alpha_s, mask)
        torch.testing.assert_close(kernel[b], expected, rtol=1e-9, atol=1e-12)


def test_absorbing_closed_forms_for_euler_and_tweedie():
    process = AbsorbingProcess(5, 4)
    schedule = LogLinearSchedule()
    x = torch.tensor([[4, 4, 1, 4]])
    logits = torch.randn(1, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.softmax(logits[..., :4], -1)
    t, s = 0.7, 0.4
    a_t, a_s, sig = float(schedule.alpha(t)), float(schedule.alpha(s)), float(schedule.rate(t))
    score = process.model_output_to_score(logits, x, a_t, "x0")
    tw = process.tweedie(score, x, a_t, a_s).probs(x)
    eu = process.euler(score, x, sig, t - s).probs(x)
    for l in (0, 1, 3):  # masked positions
        torch.testing.assert_close(tw[0, l, :4], (a_s - a_t) / (1 - a_t) * p[0, l], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(eu[0, l, :4], (t - s) * sig * a_t / (1 - a_t) * p[0, l], rtol=1e-12, atol=1e-14)
        assert float(tw[0, l, 4]) == pytest.approx(1 - (a_s - a_t) / (1 - a_t))
    # unmasked positions copy through; log-linear makes Euler and Tweedie identical
    assert tw[0, 2].tolist() == [0, 1, 0, 0, 0] and eu[0, 2].tolist() == [0, 1, 0, 0, 0]
    torch.testing.assert_close(tw, eu, rtol=1e-12, atol=1e-14)


def test_uniform_euler_closed_form_and_clipping():
    process = UniformProcess(3)
    score = torch.tensor([[[1.0, 2.0, 0.5], [3.0, 1.0, 4.0]]], dtype=torch.float64)
    x = torch.tensor([[0, 1]])
    tr = process.euler(score, x, 1.5, 0.2)
    kernel = tr.probs(x)
    assert kernel[0, 0].tolist() == pytest.approx([1 - 0.2 * 1.5 / 3 * 2.5, 0.2 * 1.5 / 3 * 2.0, 0.2 * 1.5 / 3 * 0.5])
    assert tr.num_clipped == 0
    big = process.euler(score, x, 1.5, 5.0)  # jump mass 5*1.5/3*7 > 1 at position 1, 6.25 at position 0
    assert big.num_clipped == 2
    torch.testing.assert_close(big.probs(x).sum(-1), torch.ones(1, 2, dtype=torch.float64))
    assert float(big.probs(x)[0, 1, 1]) == 0.0


@pytest.mark.parametrize("transition", ["absorbing", "uniform"])
def test_add_noise_marginals_and_coupling(transition):
    process, vocab, mask = _setup(transition)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 3, (4000, 16), generator=gen)
    shape = (4000, 16) if transition == "absorbing" else (4000, 16, 2)
    noise = torch.rand(shape, generator=gen, dtype=torch.float64)
    hi, lo = process.add_noise(x0, 0.3, noise), process.add_noise(x0, 0.8, noise)
    n = x0.numel()
    if transition == "absorbing":
        assert abs(float((hi == mask).float().mean()) - 0.7) < 4 * (0.21 / n) ** 0.5
        assert torch.all((lo == mask) <= (hi == mask)), "masks must be nested across times with shared noise"
        assert torch.all((hi == x0) | (hi == mask))
    else:
        p_same = 0.3 + 0.7 / 3
        assert abs(float((hi == x0).float().mean()) - p_same) < 4 * (p_same * (1 - p_same) / n) ** 0.5
        resampled_lo = noise[..., 0] < 0.2
        assert torch.equal(hi[resampled_lo], lo[resampled_lo]), "a shared draw gives the resampled value"
    per_row = process.add_noise(x0[:2], torch.tensor([0.0, 1.0]), noise[:2])
    assert torch.equal(per_row[1], x0[1])


def test_get_process_validation():
    with pytest.raises(ValueError, match="mask_token_id"):
        get_process("absorbing", 5)
    with pytest.raises(ValueError, match="mask_token_id"):
        get_process("uniform", 5, 4)
    with pytest.raises(ValueError, match="transition"):
        get_process("gaussian", 5)
    with pytest.raises(ValueError, match="mask_token_id"):
        AbsorbingProcess(5, 5)
    with pytest.raises(ValueError, match="vocab_size"):
        UniformProcess(1)
