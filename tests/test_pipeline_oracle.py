"""The pipeline samples from the exact law of its sampler: `ExactDenoiser` (no learning error) driven through
`DiscreteDiffusionPipeline`, compared with `jys_schedulers.testing.exact_sampler_distribution`.

Test statistic: Pearson's chi-square over all states (cells with expected count < 5 pooled), against the upper
1e-3 quantile of the chi-square law (Wilson-Hilferty approximation), with fixed seeds, so each run is deterministic and
a correct pipeline fails with probability about 1e-3 per case over seeds (0 of 30 seeds failed per case when
checked). States of negligible probability (expected count < 1e-6) must never appear.
The grids are coarse (3 steps), so the sampler's law is far from the data (checked): the test tells a pipeline that
follows the sampler from one that returns data samples.
"""

from __future__ import annotations

import math

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import StitchedDenoiser, make_denoiser
from jys_schedulers.pipelines import DiscreteDiffusionPipeline
from jys_schedulers.testing import ExactDenoiser, exact_sampler_distribution, state_index


NUM_SAMPLES = 6000
Z_1E3 = 3.0902  # standard normal upper 1e-3 quantile



def _chi_square_threshold(dof: int) -> float:
    """Upper 1e-3 quantile of chi-square(dof), Wilson-Hilferty: dof·(1 - 2/(9 dof) + z·sqrt(2/(9 dof)))³."""
    a = 2.0 / (9.0 * dof)
    return dof * (1.0 - a + Z_1E3 * math.sqrt(a)) ** 3


def _assert_follows(samples: torch.LongTensor, exact: torch.Tensor, vocab_size: int) -> None:
    counts = torch.bincount(state_index(samples, vocab_size), minlength=exact.numel()).to(torch.float64)
    n = samples.shape[0]
    expected = exact * n
    negligible = expected < 1e-6  # e.g. a mask surviving the final step: probability ~1e-16 from rounding
    assert counts[negligible].sum() == 0, "the pipeline produced a state the sampler (almost) never reaches"
    big = expected >= 5
    observed_cells = torch.cat([counts[big], counts[~big & ~negligible].sum().reshape(1)])
    expected_cells = torch.cat([expected[big], expected[~big & ~negligible].sum().reshape(1)])
    keep = expected_cells > 0
    chi2 = float(((observed_cells[keep] - expected_cells[keep]) ** 2 / expected_cells[keep]).sum())
    dof = int(keep.sum()) - 1
    assert dof >= 5
    assert chi2 < _chi_square_threshold(dof), (chi2, dof, _chi_square_threshold(dof))


def _data(transition: str):
    """A strongly correlated distribution over length-3 sequences of data tokens {0, 1, 2}."""
    sequences = torch.tensor([[0, 1, 2], [2, 1, 0], [1, 1, 1], [0, 0, 2], [2, 2, 0]])
    probs = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
    if transition == "absorbing":
        scheduler = JYSDiscreteScheduler(vocab_size=4, mask_token_id=3)
    else:
        scheduler = JYSDiscreteScheduler(vocab_size=3, transition="uniform")
    return sequences, probs, scheduler


def _pipe(transformer, scheduler, draft=None) -> DiscreteDiffusionPipeline:
    pipe = DiscreteDiffusionPipeline(
        transformer=transformer, scheduler=scheduler, draft_transformer=draft, adapter="denoiser"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("transition", ["absorbing", "uniform"])
def test_pipeline_samples_follow_the_exact_sampler_law(transition):
    sequences, probs, scheduler = _data(transition)
    oracle = ExactDenoiser(sequences, probs, scheduler.process, scheduler.noise_schedule)
    exact = exact_sampler_distribution(scheduler, oracle, seq_len=3, num_inference_steps=3, schedule="uniform")
    data_law = torch.zeros_like(exact)
    data_law[state_index(sequences, scheduler.config.vocab_size)] = probs
    assert 0.5 * (exact - data_law).abs().sum() > 0.05  # the sampler's decoding error is visible

    pipe = _pipe(oracle, scheduler)
    samples = pipe(
        batch_size=NUM_SAMPLES, seq_len=3, num_inference_steps=3, schedule="uniform",
        generator=torch.Generator().manual_seed(0),
    ).sequences
    _assert_follows(samples, exact, scheduler.config.vocab_size)
    with pytest.raises(AssertionError):  # and the test can tell it from the data law
        _assert_follows(samples, data_law, scheduler.config.vocab_size)


def test_time_stitched_pipeline_follows_the_stitched_denoiser_law():
    """Stitching by time in the pipeline is the `StitchedDenoiser` that calibration would see: same exact law."""
    sequences, probs, scheduler = _data("absorbing")
    main = ExactDenoiser(sequences, probs, scheduler.process, scheduler.noise_schedule)
    draft = ExactDenoiser(sequences[:3], torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64),
                          scheduler.process, scheduler.noise_schedule)  # a deliberately wrong draft
    switch_time = 0.5
    stitched = StitchedDenoiser(make_denoiser(draft, scheduler, "denoiser"), make_denoiser(main, scheduler, "denoiser"),
                                switch_time)
    grid = [1.0, 0.7, 0.4]
    exact = exact_sampler_distribution(scheduler, stitched, seq_len=3, timesteps=grid)
    exact_main = exact_sampler_distribution(scheduler, main, seq_len=3, timesteps=grid)
    assert 0.5 * (exact - exact_main).abs().sum() > 0.05

    pipe = _pipe(main, scheduler, draft=draft)
    assert isinstance(pipe.denoiser(switch_time=switch_time), StitchedDenoiser)
    samples = pipe(
        batch_size=NUM_SAMPLES, seq_len=3, timesteps=grid,
        stitch_schedule=lambda i, t, n: "draft" if t >= switch_time else "main",
        generator=torch.Generator().manual_seed(1),
    ).sequences
    _assert_follows(samples, exact, scheduler.config.vocab_size)
