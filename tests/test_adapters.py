"""Tests for `jys_schedulers.models.adapters`: models -> denoiser callables, compatibility checks, T-Stitch routing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import (
    CallableDenoiser,
    Denoiser,
    DiscreteDiffusionTransformer,
    DiscreteTransformerDenoiser,
    MaskedLMDenoiser,
    StitchedDenoiser,
    TimeConditionedDenoiser,
    check_stitch_compatible,
    make_denoiser,
)
from jys_schedulers.testing import ExactDenoiser


V, MASK, L = 9, 8, 6



def _scheduler(**overrides) -> JYSDiscreteScheduler:
    return JYSDiscreteScheduler(**{"vocab_size": V, "mask_token_id": MASK, **overrides})


def _transformer(vocab_size: int = V, max_seq_len: int = 16) -> DiscreteDiffusionTransformer:
    torch.manual_seed(0)
    model = DiscreteDiffusionTransformer(
        vocab_size=vocab_size, max_seq_len=max_seq_len, hidden_size=16, num_layers=1, num_heads=2, time_embedding_dim=8
    ).eval()
    with torch.no_grad():  # make the zero-initialised head and modulation live, so outputs depend on t
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def _bert(vocab_size: int = V, **overrides) -> BertForMaskedLM:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        **overrides,
    )
    return BertForMaskedLM(config).eval()


def _ids(batch_size: int = 3, seq_len: int = L, seed: int = 0) -> torch.LongTensor:
    return torch.randint(0, V, (batch_size, seq_len), generator=torch.Generator().manual_seed(seed))


class _Recorder(nn.Module):
    """A time-conditioned toy model `forward(ids, cond)` that records its conditioning and returns `wrap(logits)`."""

    def __init__(self, vocab_size: int = V, wrap=lambda x: x):
        super().__init__()
        self.vocab_size, self.wrap, self.conds = vocab_size, wrap, []

    def forward(self, input_ids, cond):
        self.conds.append(cond)
        logits = cond[:, None, None].expand(*input_ids.shape, self.vocab_size).clone()
        return self.wrap(logits)


class _Constant:
    """A denoiser returning `value` everywhere and recording the times it saw."""

    def __init__(self, value: float, vocab_size: int = V):
        self.value, self.vocab_size, self.times = value, vocab_size, []

    def __call__(self, input_ids, t):
        self.times.append(t.clone())
        return torch.full((*input_ids.shape, self.vocab_size), self.value)


# ------------------------------------------------------------------------------------------------ make_denoiser
@pytest.mark.parametrize(
    "kind, cls, model",
    [
        ("discrete_transformer", DiscreteTransformerDenoiser, _transformer),
        ("time_conditioned", TimeConditionedDenoiser, _Recorder),
        ("masked_lm", MaskedLMDenoiser, _bert),
        ("denoiser", CallableDenoiser, lambda: _Constant(0.0)),
    ],
)
def test_make_denoiser_builds_the_named_adapter(kind, cls, model):
    denoiser = make_denoiser(model(), _scheduler(), kind)
    assert type(denoiser) is cls and denoiser.kind == kind
    assert isinstance(denoiser, Denoiser)
    out = denoiser(_ids(), torch.full((3,), 0.5))
    assert out.shape == (3, L, V) and out.is_floating_point()


def test_make_denoiser_rejects_unknown_kind_and_misplaced_sigma():
    with pytest.raises(ValueError, match="`kind` must be one of"):
        make_denoiser(_transformer(), _scheduler(), "mdlm")
    with pytest.raises(ValueError, match="`time_input='sigma'` applies to `kind='time_conditioned'` only"):
        make_denoiser(_transformer(), _scheduler(), "discrete_transformer", time_input="sigma")
    with pytest.raises(ValueError, match="`time_input` must be one of"):
        make_denoiser(_Recorder(), _scheduler(), "time_conditioned", time_input="time")
    with pytest.raises(TypeError, match="`scheduler` must be a JYSDiscreteScheduler"):
        make_denoiser(_transformer(), object(), "discrete_transformer")


# ------------------------------------------------------------------------------------------- built-in transformer
def test_discrete_transformer_passes_t_and_matches_the_model():
    model = _transformer()
    denoiser = make_denoiser(model, _scheduler(), "discrete_transformer")
    ids, t = _ids(), torch.tensor([1.0, 0.5, 0.1])
    with torch.inference_mode():
        assert torch.equal(denoiser(ids, t), model(ids, timesteps=t).logits)
        assert torch.equal(denoiser(ids, 0.5), model(ids, timesteps=torch.full((3,), 0.5)).logits)
        assert not torch.allclose(denoiser(ids, 0.9), denoiser(ids, 0.1))  # time conditioning reaches the model
    assert denoiser.vocab_size == V and denoiser.max_seq_len == 16


def test_discrete_transformer_checks_vocab_prediction_type_and_length():
    with pytest.raises(ValueError, match=r"model's `vocab_size` \(10\) differs from the scheduler's `vocab_size` \(9\)"):
        make_denoiser(_transformer(vocab_size=10), _scheduler(), "discrete_transformer")
    with pytest.raises(ValueError, match="outputs 'x0' logits, but the scheduler has `prediction_type='score'`"):
        make_denoiser(_transformer(), _scheduler(prediction_type="score"), "discrete_transformer")
    denoiser = make_denoiser(_transformer(max_seq_len=8), _scheduler(), "discrete_transformer")
    denoiser.check_seq_len(8)
    with pytest.raises(ValueError, match=r"`seq_len` \(9\) exceeds"):
        denoiser.check_seq_len(9)


def test_bad_t_shape_is_rejected():
    denoiser = make_denoiser(_transformer(), _scheduler(), "discrete_transformer")
    with pytest.raises(ValueError, match=r"`t` must be a scalar or have shape \(3,\)"):
        denoiser(_ids(), torch.ones(2))
    with pytest.raises(ValueError, match="`input_ids` must be an integer tensor"):
        denoiser(torch.zeros(3, L), 0.5)


# ------------------------------------------------------------------------------------------ time-conditioned models
def test_time_conditioned_sigma_is_the_total_noise_of_the_scheduler():
    scheduler = _scheduler(noise_schedule="geometric")
    model = _Recorder()
    denoiser = make_denoiser(model, scheduler, "time_conditioned", time_input="sigma")
    t = torch.tensor([1.0, 0.5, 0.01], dtype=torch.float64)
    denoiser(_ids(), t)
    expected = scheduler.noise_schedule.total_noise(t).to(torch.float32)
    assert model.conds[-1].dtype == torch.float32 and torch.equal(model.conds[-1], expected)
    denoiser_t = make_denoiser(model, scheduler, "time_conditioned", time_input="t")
    denoiser_t(_ids(), t)
    assert torch.equal(model.conds[-1], t.to(torch.float32))


@pytest.mark.parametrize("wrap", [lambda x: x, lambda x: (x,), lambda x: type("Out", (), {"logits": x})()])
def test_time_conditioned_output_forms(wrap):
    denoiser = make_denoiser(_Recorder(wrap=wrap), _scheduler(prediction_type="score"), "time_conditioned")
    assert denoiser(_ids(), 0.3).shape == (3, L, V)


def test_time_conditioned_output_checks():
    denoiser = make_denoiser(_Recorder(wrap=lambda x: {"logits": x}), _scheduler(), "time_conditioned")
    with pytest.raises(TypeError, match="returned dict"):
        denoiser(_ids(), 0.3)
    wrong_vocab = make_denoiser(_Recorder(vocab_size=V + 1), _scheduler(), "time_conditioned")
    with pytest.raises(ValueError, match=r"shape \(3, 6, 10\); expected floating logits of shape \(3, 6, 9\)"):
        wrong_vocab(_ids(), 0.3)


# ------------------------------------------------------------------------------------------------ masked LMs
def test_masked_lm_is_time_agnostic_and_matches_the_model():
    model = _bert()
    denoiser = make_denoiser(model, _scheduler(), "masked_lm")
    ids = _ids()
    with torch.inference_mode():
        expected = model(input_ids=ids).logits
        assert torch.equal(denoiser(ids, 0.9), expected) and torch.equal(denoiser(ids, 0.1), expected)
    assert denoiser.max_seq_len == 16


def test_masked_lm_checks_vocab_and_mask_ids():
    with pytest.raises(ValueError, match=r"model's `vocab_size` \(12\) differs"):
        make_denoiser(_bert(vocab_size=12), _scheduler(), "masked_lm")
    with pytest.raises(ValueError, match="`mask_token_id` mismatch: the tokenizer uses 4, the scheduler `mask_token_id=8`"):
        make_denoiser(_bert(), _scheduler(), "masked_lm", mask_token_id=4)
    with pytest.raises(ValueError, match="`mask_token_id` mismatch: the model config uses 3"):
        make_denoiser(_bert(mask_token_id=3), _scheduler(), "masked_lm")
    # a uniform-state model has no mask state: the tokenizer's [MASK] id is not checked
    make_denoiser(_bert(), _scheduler(transition="uniform", mask_token_id=None), "masked_lm", mask_token_id=4)
    make_denoiser(_bert(mask_token_id=MASK), _scheduler(), "masked_lm", mask_token_id=MASK)


# ------------------------------------------------------------------------------------------------- callables
def test_callable_denoiser_reads_declared_metadata():
    scheduler = _scheduler()
    sequences = torch.tensor([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    oracle = ExactDenoiser(sequences, torch.tensor([0.5, 0.5]), scheduler.process, scheduler.noise_schedule)
    denoiser = make_denoiser(oracle, scheduler, "denoiser")
    ids = sequences.clone()
    ids[:, ::2] = MASK
    assert torch.equal(denoiser(ids, 0.5), oracle(ids, torch.full((2,), 0.5)))
    with pytest.raises(ValueError, match="outputs 'x0' logits, but the scheduler has `prediction_type='score'`"):
        make_denoiser(oracle, _scheduler(prediction_type="score"), "denoiser")
    with pytest.raises(ValueError, match=r"`vocab_size` \(12\) differs"):
        make_denoiser(_Constant(0.0, vocab_size=12), scheduler, "denoiser")
    with pytest.raises(TypeError, match="must be callable"):
        make_denoiser(42, scheduler, "denoiser")


# -------------------------------------------------------------------------------------------------- stitching
def test_stitched_denoiser_routes_by_time():
    scheduler = _scheduler()
    draft_fn, main_fn = _Constant(1.0), _Constant(2.0)
    draft, main = make_denoiser(draft_fn, scheduler, "denoiser"), make_denoiser(main_fn, scheduler, "denoiser")
    stitched = StitchedDenoiser(draft, main, switch_time=0.5)
    ids = _ids(batch_size=4)
    out = stitched(ids, torch.tensor([1.0, 0.5, 0.49, 0.1]))
    assert out[:2].eq(1.0).all() and out[2:].eq(2.0).all()
    assert torch.equal(draft_fn.times[-1], torch.tensor([1.0, 0.5])) and torch.equal(main_fn.times[-1], torch.tensor([0.49, 0.1]))
    calls = len(draft_fn.times), len(main_fn.times)
    assert stitched(ids, 0.7).eq(1.0).all() and stitched(ids, 0.2).eq(2.0).all()
    assert (len(draft_fn.times), len(main_fn.times)) == (calls[0] + 1, calls[1] + 1)  # one call per model at most
    assert StitchedDenoiser(draft, main, 0.0)(ids, 0.01).eq(1.0).all()


def test_stitched_denoiser_of_real_models_and_validation():
    scheduler = _scheduler()
    big, small = _transformer(max_seq_len=16), _transformer(max_seq_len=8)
    main = make_denoiser(big, scheduler, "discrete_transformer")
    draft = make_denoiser(small, scheduler, "discrete_transformer")
    stitched = StitchedDenoiser(draft, main, switch_time=0.6)
    assert stitched.max_seq_len == 8 and stitched.vocab_size == V
    ids, t = _ids(), torch.tensor([0.9, 0.6, 0.3])
    with torch.inference_mode():
        out = stitched(ids, t)
        assert torch.allclose(out[:2], small(ids[:2], timesteps=t[:2]).logits)
        assert torch.allclose(out[2:], big(ids[2:], timesteps=t[2:]).logits)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="`switch_time` must lie in"):
            StitchedDenoiser(draft, main, bad)
    with pytest.raises(TypeError, match="`switch_time` must be a float"):
        StitchedDenoiser(draft, main, "0.5")


def test_check_stitch_compatible_names_the_field():
    a = make_denoiser(_Constant(0.0), _scheduler(), "denoiser")
    with pytest.raises(ValueError, match="differ in the scheduler's `vocab_size`: 9 vs 10"):
        check_stitch_compatible(a, make_denoiser(_Constant(0.0, 10), _scheduler(vocab_size=10), "denoiser"))
    with pytest.raises(ValueError, match="differ in the scheduler's `mask_token_id`"):
        check_stitch_compatible(a, make_denoiser(_Constant(0.0), _scheduler(mask_token_id=0), "denoiser"))
    with pytest.raises(ValueError, match="differ in the scheduler's `prediction_type`"):
        check_stitch_compatible(a, make_denoiser(_Constant(0.0), _scheduler(prediction_type="score"), "denoiser"))
    with pytest.raises(ValueError, match="`noise_schedule_kwargs`"):
        other = _scheduler(noise_schedule_kwargs={"eps": 1e-2})
        check_stitch_compatible(a, make_denoiser(_Constant(0.0), other, "denoiser"))
    with pytest.raises(ValueError, match="declare different `vocab_size`: 9 vs 10"):
        check_stitch_compatible(_Constant(0.0), _Constant(0.0, 10))
    with pytest.raises(TypeError, match="The draft denoiser must be callable"):
        check_stitch_compatible(None, a)
