"""Tests for `jys_schedulers.training` (objective, schedule, loop) and `scripts/train.py` (end to end, bad arguments)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import DiscreteDiffusionTransformer
from jys_schedulers.tasks import generate_countdown
from jys_schedulers.training import (
    denoising_loss,
    evaluate_denoiser,
    sample_training_times,
    token_cross_entropy,
    train_denoiser,
    warmup_cosine_lr,
)
from _scripts import load_script


REPO = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO / "scripts" / "train.py"
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, time_embedding_dim=16)


def _absorbing(vocab_size: int = 9) -> JYSDiscreteScheduler:
    return JYSDiscreteScheduler(vocab_size=vocab_size, mask_token_id=vocab_size - 1)


def _uniform(vocab_size: int = 8) -> JYSDiscreteScheduler:
    return JYSDiscreteScheduler(vocab_size=vocab_size, transition="uniform")


def _perfect_logits(x0: torch.Tensor, vocab_size: int, scale: float = 50.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(x0, vocab_size).float() * scale


def _model(vocab_size: int, seq_len: int, seed: int = 0) -> DiscreteDiffusionTransformer:
    torch.manual_seed(seed)
    return DiscreteDiffusionTransformer(vocab_size=vocab_size, max_seq_len=seq_len, **TINY)


# ------------------------------------------------------------------------------------------------------ objective
def test_training_times_are_stratified_and_in_range():
    t = sample_training_times(8, 0.1, generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.float64 and t.shape == (8,)
    strata = ((t - 0.1) / 0.9 * 8).floor().long()
    assert torch.equal(strata, torch.arange(8))
    iid = sample_training_times(1000, 0.0, stratified=False, generator=torch.Generator().manual_seed(0))
    assert 0.0 <= float(iid.min()) and float(iid.max()) < 1.0 and abs(float(iid.mean()) - 0.5) < 0.05


def test_perfect_logits_give_zero_loss_and_uniform_logits_give_log_v():
    scheduler = _absorbing(9)
    x0 = torch.randint(0, 8, (4, 16), generator=torch.Generator().manual_seed(0))
    t = torch.full((4,), 0.5, dtype=torch.float64)
    x_t = scheduler.add_noise(x0, None, t, generator=torch.Generator().manual_seed(1))
    assert bool((x_t == 8).any())
    for weighting in ("none", "elbo"):
        assert float(denoising_loss(_perfect_logits(x0, 9), x0, x_t, t, scheduler, weighting)) < 1e-6
    # uniform logits: log 8 per masked token (the mask logit is excluded from the softmax)
    loss = denoising_loss(torch.zeros(4, 16, 9), x0, x_t, t, scheduler)
    assert float(loss) == pytest.approx(math.log(8), rel=1e-6)


def test_absorbing_loss_scores_masked_positions_only():
    scheduler = _absorbing(5)
    x0 = torch.tensor([[0, 1, 2, 3]])
    x_t = torch.tensor([[4, 1, 4, 3]])  # positions 0 and 2 masked
    logits = torch.zeros(1, 4, 5)
    logits[0, 1] = -100.0  # terrible predictions on unmasked positions must not count
    logits[0, 1, 0] = 100.0
    logits[0, 0, 0] = 5.0
    nll, scored = token_cross_entropy(logits, x0, x_t, scheduler)
    assert scored.tolist() == [[True, False, True, False]]
    expected_0 = -torch.log_softmax(torch.tensor([5.0, 0, 0, 0]), 0)[0]
    assert float(nll[0, 0]) == pytest.approx(float(expected_0), rel=1e-6)
    t = torch.tensor([0.5], dtype=torch.float64)
    loss = denoising_loss(logits, x0, x_t, t, scheduler)
    assert float(loss) == pytest.approx((float(expected_0) + math.log(4)) / 2, rel=1e-6)
    # a huge mask logit changes nothing: the mask is never a clean token
    logits[..., 4] = 1e4
    assert float(denoising_loss(logits, x0, x_t, t, scheduler)) == pytest.approx(float(loss), rel=1e-6)


def test_elbo_weighting_uses_the_hazard_and_per_token_normalisation():
    scheduler = _absorbing(5)
    x0 = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    x_t = torch.tensor([[4, 1, 4, 3], [3, 4, 1, 0]])
    t = torch.tensor([0.5, 0.25], dtype=torch.float64)
    logits = torch.zeros(2, 4, 5)
    c = scheduler.noise_schedule.hazard(t)
    expected = (float(c[0]) * 2 * math.log(4) + float(c[1]) * math.log(4)) / 8
    assert float(denoising_loss(logits, x0, x_t, t, scheduler, "elbo")) == pytest.approx(expected, rel=1e-6)


def test_uniform_loss_scores_every_position():
    scheduler = _uniform(8)
    x0 = torch.randint(0, 8, (3, 5), generator=torch.Generator().manual_seed(0))
    x_t = scheduler.add_noise(x0, None, 0.7, generator=torch.Generator().manual_seed(1))
    nll, scored = token_cross_entropy(torch.zeros(3, 5, 8), x0, x_t, scheduler)
    assert bool(scored.all()) and torch.allclose(nll, torch.full((3, 5), math.log(8)))
    t = torch.full((3,), 0.7, dtype=torch.float64)
    assert float(denoising_loss(_perfect_logits(x0, 8), x0, x_t, t, scheduler)) < 1e-6
    with pytest.raises(ValueError, match="weighting='elbo'"):
        denoising_loss(torch.zeros(3, 5, 8), x0, x_t, t, scheduler, "elbo")


def test_loss_rejects_bad_inputs():
    scheduler = _absorbing(5)
    x0 = torch.zeros(1, 4, dtype=torch.long)
    t = torch.ones(1, dtype=torch.float64)
    with pytest.raises(ValueError, match="logits"):
        denoising_loss(torch.zeros(1, 4, 6), x0, x0, t, scheduler)
    with pytest.raises(ValueError, match="weighting"):
        denoising_loss(torch.zeros(1, 4, 5), x0, x0, t, scheduler, "snr")


def test_warmup_cosine_schedule():
    lr = [warmup_cosine_lr(s, total_steps=110, warmup_steps=10, base_lr=1.0, min_lr_ratio=0.1) for s in range(110)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)
    assert lr[10] == pytest.approx(1.0) and lr[-1] == pytest.approx(0.1)
    assert all(b <= a + 1e-12 for a, b in zip(lr[9:], lr[10:]))
    assert warmup_cosine_lr(0, total_steps=1, warmup_steps=0, base_lr=1.0) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------------ training loop
def _countdown(num: int, seq_len: int = 16, seed: int = 0) -> torch.Tensor:
    return generate_countdown(num, seq_len, num_digits=8, seed=seed)


def test_training_decreases_the_heldout_loss():
    scheduler = _absorbing(9)
    data, heldout = _countdown(512), _countdown(64, seed=1)
    model = _model(9, 16)
    before = evaluate_denoiser(model, scheduler, heldout)
    result = train_denoiser(model, scheduler, data, steps=150, batch_size=32, lr=3e-3, log_every=50, progress=False)
    after = evaluate_denoiser(result.model, scheduler, heldout)
    assert before["cross_entropy"] == pytest.approx(math.log(8), rel=1e-3)  # zero-initialised head
    assert after["cross_entropy"] < before["cross_entropy"] - 0.3
    assert after["nelbo"] < before["nelbo"]
    assert [h["step"] for h in result.history] == [50, 100, 150]
    assert result.steps == 150 and result.sequences_seen == 150 * 32 and not result.model.training


def test_training_is_deterministic_under_seed():
    scheduler = _uniform(8)
    data = _countdown(128)

    def run(seed: int) -> list[torch.Tensor]:
        result = train_denoiser(_model(8, 16), scheduler, data, steps=6, batch_size=16, seed=seed, log_every=3,
                                progress=False, ema_decay=0.9)
        assert result.ema
        return [p.detach().clone() for p in result.model.parameters()]

    first, second, other = run(3), run(3), run(4)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_training_accepts_an_iterable_of_batches_and_reports_exhaustion():
    scheduler = _absorbing(9)
    batches = [_countdown(8, seed=s) for s in range(3)]
    result = train_denoiser(_model(9, 16), scheduler, batches, steps=3, log_every=1, progress=False, weighting="elbo")
    assert len(result.history) == 3
    with pytest.raises(ValueError, match="ran out of batches after 3 of 4"):
        train_denoiser(_model(9, 16), scheduler, iter(batches), steps=4, progress=False)
    with pytest.raises(ValueError, match="`data batch` contains the mask token"):
        train_denoiser(_model(9, 16), scheduler, [torch.full((4, 16), 8)], steps=1, progress=False)


def test_gradient_accumulation_counts_optimizer_steps():
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    result = train_denoiser(_model(9, 16), _absorbing(9), _countdown(64), steps=3, batch_size=8, log_every=1,
                            progress=False, accelerator=accelerator)
    assert result.steps == 3 and result.sequences_seen == 3 * 2 * 8
    assert [h["step"] for h in result.history] == [1, 2, 3]


def _train_in_two_processes():
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    assert accelerator.num_processes == 2
    result = train_denoiser(_model(9, 16), _absorbing(9), _countdown(64), steps=3, batch_size=4, log_every=3,
                            progress=False, accelerator=accelerator)
    params = torch.cat([p.detach().flatten() for p in result.model.parameters()])[None]
    gathered = accelerator.gather(params)
    assert torch.equal(gathered[0], gathered[1])  # data-parallel replicas stay identical
    assert result.sequences_seen == 3 * 4 * 2


def test_training_runs_data_parallel_on_two_cpu_processes():
    from accelerate import debug_launcher

    debug_launcher(_train_in_two_processes, num_processes=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(lr=0.0), "lr"),
        (dict(t_min=1.0), "t_min"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(weighting="snr"), "weighting"),
        (dict(batch_size=1000), "fewer than one global batch"),
    ],
)
def test_train_denoiser_rejects_bad_arguments(kwargs, match):
    args = dict(steps=1, batch_size=4, progress=False) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        train_denoiser(_model(9, 16), _absorbing(9), _countdown(16), **args)


def test_train_denoiser_rejects_bad_data_and_models():
    scheduler = _absorbing(9)
    with pytest.raises(ValueError, match="mask token"):
        train_denoiser(_model(9, 16), scheduler, torch.full((8, 16), 8), steps=1, progress=False)
    with pytest.raises(ValueError, match="vocab_size"):
        train_denoiser(_model(12, 16), scheduler, _countdown(8), steps=1, progress=False)
    with pytest.raises(TypeError, match="integer token tensor"):
        train_denoiser(_model(9, 16), scheduler, torch.zeros(8, 16), steps=1, progress=False)


# ------------------------------------------------------------------------------------------------------ the script
def _script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(TRAIN_SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


TINY_ARGS = ["--seq-len", "16", "--num-digits", "8", "--hidden-size", "16", "--num-layers", "1", "--num-heads", "2",
             "--steps", "4", "--batch-size", "8", "--num-train", "64", "--num-heldout", "16", "--eval-samples", "4",
             "--eval-steps", "2", "4", "--no-progress", "--log-every", "2"]


def test_train_script_writes_a_loadable_pipeline(tmp_path):
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline

    out = tmp_path / "run"
    proc = _script("--task", "countdown", *TINY_ARGS, "--output-dir", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "training_report.json").read_text())
    assert report["training"]["steps"] == 4 and len(report["training"]["history"]) == 2
    assert [s["num_inference_steps"] for s in report["evaluation"]["samples"]] == [2, 4]
    assert 0.0 <= report["evaluation"]["samples"][0]["countdown_error_rate"] <= 1.0
    assert report["model"]["num_parameters"] > 0 and "--steps 4" in report["command"]
    pipe = DiscreteDiffusionPipeline.from_pretrained(out)
    assert pipe.scheduler.config.vocab_size == 9 and pipe.scheduler.config.mask_token_id == 8
    assert pipe.scheduler.available_schedules == []
    pipe.set_progress_bar_config(disable=True)
    samples = pipe(batch_size=2, num_inference_steps=3, schedule="uniform",
                   generator=torch.Generator().manual_seed(0)).sequences
    assert samples.shape == (2, 16) and int(samples.max()) < 8
    # no staging folders are left behind, and an existing output is not replaced without --overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(SystemExit):
        _load_train_script().parse_args(["--output-dir", str(out)])


def test_train_script_uniform_text_fp16(tmp_path):
    out = tmp_path / "text"
    args = [a if a != "--num-digits" else "--tokenizer" for a in TINY_ARGS]
    args[args.index("--tokenizer") + 1] = "char"
    proc = _script("--task", "text", "--transition", "uniform", *args, "--save-dtype", "float16",
                   "--output-dir", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "training_report.json").read_text())
    assert report["evaluation"]["heldout"]["nelbo"] is None and report["model"]["saved_dtype"] == "float16"
    assert "unigram_entropy" in report["evaluation"]["samples"][0]
    assert (out / "transformer" / "diffusion_pytorch_model.safetensors").exists()


def _load_train_script():
    return load_script("train")


@pytest.mark.parametrize(
    "args, match",
    [
        (["--task", "images"], "--task"),
        (["--transition", "gaussian"], "--transition"),
        (["--steps", "0"], "--steps"),
        (["--lr", "-1"], "--lr"),
        (["--hidden-size", "30", "--num-heads", "4"], "--hidden-size"),
        (["--weighting", "elbo", "--transition", "uniform"], "--weighting"),
        (["--ema-decay", "1.5"], "--ema-decay"),
        (["--seq-len", "1"], "--seq-len"),
        (["--dropout", "1"], "--dropout"),
        ([], "--output-dir"),
    ],
)
def test_train_script_rejects_bad_arguments(tmp_path, capsys, args, match):
    output = [] if not args else ["--output-dir", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as exc:
        _load_train_script().parse_args([*args, *output])
    assert exc.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
