"""Tests for jys_schedulers.tasks.judge (tiny autoregressive judge for generative perplexity)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from jys_schedulers.tasks import generate_countdown
from jys_schedulers.tasks.judge import ARJudge, ARJudgeConfig, train_ar_judge

V, L = 8, 24
SMALL = dict(d_model=32, num_layers=1, num_heads=2, batch_size=32, lr=1e-2)


@pytest.fixture(scope="module")
def judge_and_data():
    data = generate_countdown(512, seq_len=L, num_digits=V, seed=0)
    judge = train_ar_judge(data, V, steps=80, seed=0, **SMALL)
    return judge, data


def test_judge_prefers_in_distribution_over_shuffled(judge_and_data):
    judge, _ = judge_and_data
    test = generate_countdown(256, seq_len=L, num_digits=V, seed=1)
    perm = torch.randperm(L, generator=torch.Generator().manual_seed(0))
    shuffled = test[:, perm]
    ppl_in, ppl_shuf = judge.perplexity(test), judge.perplexity(shuffled)
    # Countdown is deterministic except after a 0 (uniform over V): the ideal judge's
    # per-token entropy is P(prev = 0) log V ≈ 0.46 nats, i.e. PPL ≈ 1.6; shuffling breaks it.
    assert ppl_in < 0.5 * ppl_shuf
    assert ppl_in < 3.0
    uniform = torch.randint(0, V, (256, L), generator=torch.Generator().manual_seed(2))
    assert judge.perplexity(uniform) > ppl_in


def test_judge_nll_shapes_and_perplexity_formula(judge_and_data):
    judge, data = judge_and_data
    per_sample = judge.nll(data[:10], batch_size=3)
    assert per_sample.shape == (10,)
    tok = judge.token_nll(data[:10])
    assert tok.shape == (10, L - 1)
    assert judge.perplexity(data[:10]) == pytest.approx(math.exp(float(tok.detach().mean())), rel=1e-5)
    logits = judge(data[:2])
    assert logits.shape == (2, L, V)


def test_judge_is_causal(judge_and_data):
    judge, data = judge_and_data
    x = data[:4].clone()
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % V
    with torch.no_grad():
        assert torch.allclose(judge(x)[:, :10], judge(y)[:, :10], atol=1e-5)


def test_judge_save_load_round_trip(judge_and_data, tmp_path):
    judge, data = judge_and_data
    judge.save_pretrained(tmp_path / "judge")
    cfg = json.loads((tmp_path / "judge" / "config.json").read_text())
    assert cfg["model_type"] == "jys_ar_judge" and cfg["vocab_size"] == V and cfg["max_len"] == L
    assert cfg["training_info"]["steps"] == 80
    assert (tmp_path / "judge" / "model.safetensors").is_file()
    loaded = ARJudge.from_pretrained(tmp_path / "judge")
    assert loaded.config == judge.config
    assert torch.equal(loaded.nll(data[:16]), judge.nll(data[:16]))
    with pytest.raises(FileNotFoundError, match="folder"):
        ARJudge.from_pretrained(tmp_path / "missing")


def test_judge_training_is_seeded_and_leaves_global_rng_alone():
    data = generate_countdown(64, seq_len=12, num_digits=4, seed=0)
    state = torch.random.get_rng_state()
    a = train_ar_judge(data, 4, steps=5, seed=3, dropout=0.1, **SMALL)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = train_ar_judge(data, 4, steps=5, seed=3, dropout=0.1, **SMALL)
    assert torch.allclose(a.nll(data), b.nll(data))
    c = train_ar_judge(data, 4, steps=5, seed=4, dropout=0.1, **SMALL)
    assert not torch.allclose(a.nll(data), c.nll(data))


def test_judge_early_stopping_returns_best_validation_weights():
    data = generate_countdown(128, seq_len=12, num_digits=4, seed=0)
    valid = generate_countdown(32, seq_len=12, num_digits=4, seed=1)
    judge = train_ar_judge(data, 4, steps=20, seed=0, valid_windows=valid, eval_every=5, **SMALL)
    info = judge.training_info
    assert info["best_step"] in (5, 10, 15, 20) and info["num_valid_windows"] == 32
    assert float(judge.nll(valid).mean()) == pytest.approx(info["best_valid_nll"], rel=1e-6)
    with pytest.raises(ValueError, match="valid_windows"):
        train_ar_judge(data, 4, steps=1, valid_windows=torch.full((2, 12), 7), **SMALL)


def test_judge_bad_input(judge_and_data):
    judge, data = judge_and_data
    with pytest.raises(ValueError, match="samples"):
        judge.perplexity(torch.full((2, L), V))  # mask id is not a data token
    with pytest.raises(ValueError, match="max_len"):
        judge.perplexity(torch.zeros(2, L + 1, dtype=torch.long))
    with pytest.raises(TypeError, match="samples"):
        judge.perplexity(data.float())
    with pytest.raises(ValueError, match="num_heads"):
        ARJudgeConfig(vocab_size=4, max_len=8, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        ARJudgeConfig(vocab_size=1, max_len=8)
    with pytest.raises(ValueError, match="token_windows"):
        train_ar_judge(torch.zeros(4, dtype=torch.long), 4, steps=1)
    with pytest.raises(ValueError, match="token_windows"):
        train_ar_judge(torch.full((4, 6), 9), 4, steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_ar_judge(data, V, steps=0)


def test_judge_training_restores_thread_count():
    data = generate_countdown(32, seq_len=8, num_digits=4, seed=0)
    before = torch.get_num_threads()
    judge = train_ar_judge(data, 4, steps=2, seed=0, num_threads=1, **SMALL)
    assert judge.training_info["num_threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        train_ar_judge(data, 4, steps=1, num_threads=0, **SMALL)
