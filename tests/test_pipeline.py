"""Tests for `jys_schedulers.pipelines.DiscreteDiffusionPipeline` with tiny models built from configs (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import PipelineCallback
from transformers import BertConfig, BertForMaskedLM, BertTokenizer

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import DiscreteDiffusionTransformer, StitchedDenoiser
from jys_schedulers.pipelines import (
    DiscreteDiffusionPipeline,
    DiscreteDiffusionPipelineOutput,
    resolve_stitch_schedule,
    sandwich_stitch_schedule,
)
from jys_schedulers.pipelines.discrete_diffusion import pipeline_discrete_diffusion


V, MASK, L = 9, 8, 12
PIPELINE_FILE = Path(pipeline_discrete_diffusion.__file__)



def _transformer(
    vocab_size: int = V, max_seq_len: int = 16, hidden_size: int = 16, seed: int = 0
) -> DiscreteDiffusionTransformer:
    torch.manual_seed(seed)
    model = DiscreteDiffusionTransformer(
        vocab_size=vocab_size,
        max_seq_len=max_seq_len,
        hidden_size=hidden_size,
        num_layers=1,
        num_heads=2,
        time_embedding_dim=8,
    ).eval()
    with torch.no_grad():  # random (not zero) head and modulation, so samples depend on the weights and on t
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model


def _scheduler(**overrides) -> JYSDiscreteScheduler:
    return JYSDiscreteScheduler(**{"vocab_size": V, "mask_token_id": MASK, **overrides})


def _pipe(draft: bool = False, **kwargs) -> DiscreteDiffusionPipeline:
    kwargs.setdefault("transformer", _transformer())
    kwargs.setdefault("scheduler", _scheduler())
    if draft:
        kwargs.setdefault("draft_transformer", _transformer(hidden_size=8, seed=1))
    pipe = DiscreteDiffusionPipeline(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Recorder:
    """`callback_on_step_end` that keeps every step's index, time and requested tensors."""

    def __init__(self):
        self.steps: list[tuple[int, float, dict]] = []

    def __call__(self, pipe, step_index, timestep, callback_kwargs):
        self.steps.append((step_index, float(timestep), dict(callback_kwargs)))
        return {}


def _bert_parts(vocab: list[str]) -> tuple[BertForMaskedLM, BertTokenizer]:
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertForMaskedLM(config).eval(), tokenizer


BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghij")


# ------------------------------------------------------------------------------------------------- generation
def test_generation_shapes_and_clean_output():
    pipe = _pipe()
    out = pipe(batch_size=3, seq_len=L, num_inference_steps=4, schedule="uniform", generator=_gen())
    assert isinstance(out, DiscreteDiffusionPipelineOutput) and out.texts is None
    assert out.sequences.shape == (3, L) and out.sequences.dtype == torch.long
    assert not (out.sequences == MASK).any() and out.sequences.min() >= 0
    assert pipe.num_timesteps == 4
    sequences, texts = pipe(batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform", return_dict=False)
    assert sequences.shape == (2, L) and texts is None


def test_seq_len_defaults_to_the_model_length():
    out = _pipe()(batch_size=2, num_inference_steps=2, schedule="uniform", generator=_gen())
    assert out.sequences.shape == (2, 16)


def test_same_seed_same_samples_and_other_seed_differs():
    pipe = _pipe()
    run = lambda seed: pipe(batch_size=4, seq_len=L, num_inference_steps=5, schedule="uniform", generator=_gen(seed))
    first, again, other = run(0).sequences, run(0).sequences, run(1).sequences
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    per_row = pipe(
        batch_size=2, seq_len=L, num_inference_steps=5, schedule="uniform", generator=[_gen(0), _gen(1)]
    ).sequences
    row_one = pipe(batch_size=1, seq_len=L, num_inference_steps=5, schedule="uniform", generator=[_gen(1)]).sequences
    assert torch.equal(per_row[1:], row_one)  # a list of generators: each row depends on its own generator only


def test_uniform_transition_generates():
    scheduler = _scheduler(vocab_size=8, mask_token_id=None, transition="uniform")
    pipe = _pipe(transformer=_transformer(vocab_size=8), scheduler=scheduler)
    out = pipe(batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform", generator=_gen())
    assert out.sequences.shape == (2, L) and out.sequences.max() < 8


# -------------------------------------------------------------------------------------------- fixed positions
@pytest.mark.parametrize("transition", ["absorbing", "uniform"])
def test_prefix_and_infill_positions_never_change(transition):
    if transition == "uniform":
        pipe = _pipe(transformer=_transformer(vocab_size=8), scheduler=_scheduler(vocab_size=8, mask_token_id=None, transition="uniform"))
    else:
        pipe = _pipe()
    prefix = torch.tensor([3, 1, 4])
    infill_mask = torch.zeros(2, L, dtype=torch.bool)
    infill_mask[0, 7], infill_mask[1, [5, 10]] = True, True
    infill_ids = torch.full((2, L), 6)
    recorder = _Recorder()
    out = pipe(
        batch_size=2,
        seq_len=L,
        num_inference_steps=6,
        schedule="uniform",
        prefix_ids=prefix,
        infill_ids=infill_ids,
        infill_mask=infill_mask,
        generator=_gen(),
        callback_on_step_end=recorder,
        callback_on_step_end_tensor_inputs=["sample", "pred_original_sample"],
    )
    states = [kw[name] for _, _, kw in recorder.steps for name in ("sample", "pred_original_sample")]
    for tokens in states + [out.sequences]:
        assert torch.equal(tokens[:, :3], prefix.expand(2, 3))
        assert torch.equal(tokens[infill_mask], infill_ids[infill_mask])


def test_callback_cannot_break_fixed_positions():
    def scramble(pipe, i, t, kwargs):
        return {"sample": torch.zeros_like(kwargs["sample"])}

    out = _pipe()(
        batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform", prefix_ids=[[5, 5], [7, 7]],
        callback_on_step_end=scramble,
    )
    assert torch.equal(out.sequences[:, :2], torch.tensor([[5, 5], [7, 7]]))
    assert out.sequences[:, 2:].eq(0).all()  # the callback's sample replaced the rest


# ---------------------------------------------------------------------------------------------------- callbacks
def test_callbacks_see_every_step_in_order():
    pipe, recorder = _pipe(), _Recorder()
    pipe(
        batch_size=2,
        seq_len=L,
        num_inference_steps=5,
        schedule="cosine",
        generator=_gen(),
        callback_on_step_end=recorder,
        callback_on_step_end_tensor_inputs=["sample", "pred_original_sample", "model_output", "model_choice"],
    )
    assert [s[0] for s in recorder.steps] == list(range(5))
    assert [s[1] for s in recorder.steps] == pipe.scheduler.timesteps.tolist()
    masked = [int((kw["sample"] == MASK).sum()) for _, _, kw in recorder.steps]
    assert masked == sorted(masked, reverse=True) and masked[-1] == 0
    for _, _, kw in recorder.steps:
        assert set(kw) == {"sample", "pred_original_sample", "model_output", "model_choice"}
        assert kw["model_output"].shape == (2, L, V) and kw["model_choice"] == "main"
        assert not (kw["pred_original_sample"] == MASK).any()
    default = _Recorder()
    pipe(batch_size=1, seq_len=L, num_inference_steps=2, schedule="uniform", callback_on_step_end=default)
    assert all(set(kw) == {"sample"} for _, _, kw in default.steps)


def test_pipeline_callback_objects_declare_their_inputs():
    class CountMasks(PipelineCallback):
        tensor_inputs = ["sample"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.counts = getattr(self, "counts", []) + [int((callback_kwargs["sample"] == MASK).sum())]
            return callback_kwargs

    callback = CountMasks()
    _pipe()(batch_size=1, seq_len=L, num_inference_steps=3, schedule="uniform", callback_on_step_end=callback)
    assert len(callback.counts) == 3 and callback.counts[-1] == 0


# ---------------------------------------------------------------------------------------------------- stitching
def test_resolve_stitch_schedule_rules():
    grid = [1.0, 0.8, 0.6, 0.4, 0.2]
    assert resolve_stitch_schedule(grid) == ["main"] * 5
    assert resolve_stitch_schedule(grid, stitch_ratio=0.4) == ["draft"] * 2 + ["main"] * 3
    assert resolve_stitch_schedule(grid, stitch_ratio=0.5) == ["draft"] * 2 + ["main"] * 3  # floor(2.5)
    assert resolve_stitch_schedule(grid, stitch_ratio=0.1 * 6) == ["draft"] * 3 + ["main"] * 2  # 0.6000000000000001
    assert resolve_stitch_schedule(grid, stitch_ratio=0) == ["main"] * 5
    assert resolve_stitch_schedule(grid, stitch_ratio=1.0) == ["draft"] * 5
    by_time = resolve_stitch_schedule(grid, stitch_schedule=lambda i, t, n: "draft" if t >= 0.6 else "main")
    assert by_time == ["draft"] * 3 + ["main"] * 2
    assert sandwich_stitch_schedule(8, 0.25, 0.25) == ["draft"] * 2 + ["main"] * 4 + ["draft"] * 2
    assert sandwich_stitch_schedule(5, 0.2, 0.0) == ["draft"] + ["main"] * 4
    with pytest.raises(ValueError, match=r"`head_ratio \+ tail_ratio` must be <= 1"):
        sandwich_stitch_schedule(4, 0.6, 0.6)
    with pytest.raises(ValueError, match="`num_inference_steps` must be a positive int"):
        sandwich_stitch_schedule(0, 0.2, 0.2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stitch_schedule": ["draft", "large", "main", "main", "main"]}, ValueError, "may only name"),
        ({"stitch_schedule": ["draft", "main"]}, ValueError, "names 2 steps, but the grid has 5"),
        ({"stitch_schedule": "sandwich"}, TypeError, "`stitch_schedule` must be a list"),
        ({"stitch_schedule": lambda i, t, n: "small"}, ValueError, "may only name"),
        ({"stitch_ratio": 1.5}, ValueError, r"`stitch_ratio` must be a float in \[0, 1\]"),
        ({"stitch_ratio": 0.5, "stitch_schedule": ["main"] * 5}, ValueError, "at most one of"),
    ],
)
def test_unknown_stitching_specs_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        _pipe(draft=True)(batch_size=1, seq_len=L, num_inference_steps=5, schedule="uniform", **kwargs)


def test_stitching_uses_the_draft_on_the_planned_steps():
    pipe = _pipe(draft=True)
    calls = []
    pipe.transformer.register_forward_hook(lambda *args: calls.append("main"))
    pipe.draft_transformer.register_forward_hook(lambda *args: calls.append("draft"))
    recorder = _Recorder()
    common = dict(batch_size=2, seq_len=L, num_inference_steps=5, schedule="uniform", generator=_gen())
    stitched = pipe(**common, stitch_ratio=0.4, callback_on_step_end=recorder, callback_on_step_end_tensor_inputs=["model_choice"])
    assert calls == ["draft", "draft", "main", "main", "main"]
    assert [kw["model_choice"] for _, _, kw in recorder.steps] == calls
    calls.clear()
    plain = pipe(**common)
    assert calls == ["main"] * 5 and not torch.equal(plain.sequences, stitched.sequences)
    calls.clear()
    sandwich = sandwich_stitch_schedule(5, 0.2, 0.2)
    pipe(**common, stitch_schedule=sandwich)
    assert calls == sandwich == ["draft", "main", "main", "main", "draft"]


def test_stitching_needs_a_compatible_draft():
    with pytest.raises(ValueError, match="need a `draft_transformer`"):
        _pipe()(batch_size=1, seq_len=L, num_inference_steps=2, schedule="uniform", stitch_ratio=0.5)
    with pytest.raises(ValueError, match=r"model's `vocab_size` \(10\) differs from the scheduler's"):
        _pipe(draft_transformer=_transformer(vocab_size=10))
    short_draft = _pipe(draft_transformer=_transformer(max_seq_len=8))
    short_draft(batch_size=1, seq_len=L, num_inference_steps=2, schedule="uniform")  # draft unused: fine
    with pytest.raises(ValueError, match=r"`seq_len` \(12\) exceeds"):
        short_draft(batch_size=1, seq_len=L, num_inference_steps=2, schedule="uniform", stitch_ratio=0.5)
    assert short_draft(batch_size=1, num_inference_steps=2, schedule="uniform", stitch_ratio=0.5).sequences.shape[1] == 8


def test_denoiser_accessor_for_calibration():
    pipe = _pipe(draft=True)
    ids, t = torch.full((2, L), MASK), torch.tensor([0.9, 0.2])
    with torch.inference_mode():
        assert torch.equal(pipe.denoiser()(ids, t), pipe.transformer(ids, timesteps=t).logits)
        assert torch.equal(pipe.denoiser("draft")(ids, t), pipe.draft_transformer(ids, timesteps=t).logits)
        stitched = pipe.denoiser(switch_time=0.5)
        assert isinstance(stitched, StitchedDenoiser)
        out = stitched(ids, t)
        assert torch.equal(out[0], pipe.draft_transformer(ids[:1], timesteps=t[:1]).logits[0])
        assert torch.equal(out[1], pipe.transformer(ids[1:], timesteps=t[1:]).logits[0])
    with pytest.raises(ValueError, match="`which` must be one of"):
        pipe.denoiser("small")
    with pytest.raises(ValueError, match="no `draft_transformer`"):
        _pipe().denoiser(switch_time=0.5)


# ------------------------------------------------------------------------------------------- timesteps & schedulers
def test_custom_timesteps_override_num_inference_steps():
    pipe, recorder = _pipe(), _Recorder()
    grid = [1.0, 0.7, 0.3, 0.05]
    pipe(batch_size=1, seq_len=L, num_inference_steps=10, timesteps=grid, callback_on_step_end=recorder)
    assert [s[1] for s in recorder.steps] == pytest.approx(grid) and pipe.num_timesteps == 4


def test_scheduler_swap_changes_the_grid(tmp_path):
    pipe, recorder = _pipe(), _Recorder()
    pipe(batch_size=1, seq_len=L, num_inference_steps=4, schedule="uniform", callback_on_step_end=recorder)
    uniform_grid = [s[1] for s in recorder.steps]
    calibrated = [1.0, 0.9, 0.55, 0.1]
    _scheduler(jys_schedules={"4": calibrated}).save_pretrained(tmp_path / "scheduler")
    pipe.scheduler = JYSDiscreteScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    recorder.steps.clear()
    pipe(batch_size=1, seq_len=L, num_inference_steps=4, callback_on_step_end=recorder)
    swapped_grid = [s[1] for s in recorder.steps]
    assert swapped_grid == pytest.approx(calibrated) and swapped_grid != pytest.approx(uniform_grid)
    assert pipe.scheduler.schedule_name == "jys"


# ----------------------------------------------------------------------------------------------- save and load
def test_save_load_round_trip_gives_identical_samples(tmp_path):
    pipe = _pipe(draft=True, scheduler=_scheduler(jys_schedules={"4": [1.0, 0.8, 0.45, 0.1]}))
    kwargs = dict(batch_size=3, seq_len=L, num_inference_steps=4, stitch_ratio=0.5, prefix_ids=[2])
    expected = pipe(**kwargs, generator=_gen(3)).sequences
    pipe.save_pretrained(tmp_path)
    assert {"model_index.json", "transformer", "draft_transformer", "scheduler"} <= {p.name for p in tmp_path.iterdir()}
    loaded = DiscreteDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.adapter == "discrete_transformer" and loaded.config.time_input == "t"
    assert type(loaded.draft_transformer) is DiscreteDiffusionTransformer
    assert torch.equal(loaded(**kwargs, generator=_gen(3)).sequences, expected)


def test_adapter_config_round_trips(tmp_path):
    pipe = _pipe(adapter="time_conditioned", time_input="t")
    expected = pipe(batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform", generator=_gen()).sequences
    pipe.save_pretrained(tmp_path)
    loaded = DiscreteDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.config.adapter == "time_conditioned"
    assert type(loaded.denoiser()).__name__ == "TimeConditionedDenoiser"
    result = loaded(batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform", generator=_gen()).sequences
    assert torch.equal(result, expected)


def test_masked_lm_with_tokenizer_round_trip_and_text(tmp_path):
    model, tokenizer = _bert_parts(BERT_VOCAB)
    scheduler = JYSDiscreteScheduler(vocab_size=len(BERT_VOCAB), mask_token_id=tokenizer.mask_token_id)
    pipe = _pipe(transformer=model, scheduler=scheduler, tokenizer=tokenizer, adapter="masked_lm")
    kwargs = dict(batch_size=2, seq_len=8, num_inference_steps=4, schedule="uniform", output_type="text")
    out = pipe(**kwargs, generator=_gen())
    assert out.texts == tokenizer.batch_decode(out.sequences.tolist(), skip_special_tokens=True)
    pipe.save_pretrained(tmp_path)
    loaded = DiscreteDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.transformer) is BertForMaskedLM and loaded.config.adapter == "masked_lm"
    again = loaded(**kwargs, generator=_gen())
    assert torch.equal(again.sequences, out.sequences) and again.texts == out.texts


def test_text_output_with_a_decode_only_tokenizer_and_empty_prefix():
    class Digits:  # a minimal tokenizer: `decode` only (like the task tokenizers), no mask token
        def decode(self, ids):
            return "".join(str(i) for i in ids)

    pipe = _pipe(tokenizer=Digits())
    out = pipe(batch_size=2, seq_len=5, num_inference_steps=2, schedule="uniform", output_type="text", prefix_ids=[])
    assert out.texts == ["".join(map(str, row)) for row in out.sequences.tolist()]


def test_loads_as_a_diffusers_custom_pipeline(tmp_path):
    pipe = _pipe()
    kwargs = dict(batch_size=2, seq_len=L, num_inference_steps=3, schedule="uniform")
    expected = pipe(**kwargs, generator=_gen()).sequences
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(PIPELINE_FILE), trust_remote_code=True)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded).__name__ == "DiscreteDiffusionPipeline"
    assert torch.equal(loaded(**kwargs, generator=_gen()).sequences, expected)


def test_plain_module_conditioned_on_sigma():
    """A SEDD-like plain `nn.Module` (no `.device`/`.dtype`), called as `model(ids, sigma)` with log-score outputs."""

    class ToySEDD(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(V, V)
            self.sigmas = []

        def forward(self, indices, sigma):
            self.sigmas.append(sigma)
            return self.embed(indices) - sigma[:, None, None]

    model = ToySEDD()
    scheduler = _scheduler(prediction_type="score")
    pipe = _pipe(transformer=model, scheduler=scheduler, adapter="time_conditioned", time_input="sigma")
    out = pipe(batch_size=2, seq_len=L, num_inference_steps=4, schedule="uniform", generator=_gen())
    assert out.sequences.shape == (2, L) and not (out.sequences == MASK).any()
    expected = scheduler.noise_schedule.total_noise(scheduler.timesteps).to(torch.float32)
    assert torch.equal(torch.stack([s[0] for s in model.sigmas]), expected)


# ------------------------------------------------------------------------------------------------------ bad input
def test_mismatched_components_are_rejected_at_construction():
    with pytest.raises(ValueError, match=r"model's `vocab_size` \(10\) differs from the scheduler's `vocab_size` \(9\)"):
        _pipe(transformer=_transformer(vocab_size=10))
    model, tokenizer = _bert_parts(BERT_VOCAB)
    wrong_mask = JYSDiscreteScheduler(vocab_size=len(BERT_VOCAB), mask_token_id=0)
    with pytest.raises(ValueError, match="`mask_token_id` mismatch: the tokenizer uses 4, the scheduler `mask_token_id=0`"):
        _pipe(transformer=model, scheduler=wrong_mask, tokenizer=tokenizer, adapter="masked_lm")
    with pytest.raises(ValueError, match="`adapter` must be one of"):
        _pipe(adapter="bert")
    with pytest.raises(ValueError, match="`time_input` must be one of"):
        _pipe(time_input="noise")
    with pytest.raises(ValueError, match="`time_input='sigma'` applies to `kind='time_conditioned'` only"):
        _pipe(time_input="sigma")
    with pytest.raises(ValueError, match="`transformer` is required"):
        _pipe(transformer=None)


def test_swapping_in_an_incompatible_scheduler_fails_at_the_call():
    pipe = _pipe()
    pipe.scheduler = _scheduler(vocab_size=12, mask_token_id=11)
    with pytest.raises(ValueError, match=r"`vocab_size` \(9\) differs from the scheduler's `vocab_size` \(12\)"):
        pipe(batch_size=1, seq_len=L, num_inference_steps=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prefix_ids": list(range(L + 1))}, r"`prefix_ids` has length 13, longer than `seq_len`=12"),
        ({"prefix_ids": [1, MASK]}, r"`prefix_ids` must not contain the mask token \(8\)"),
        ({"prefix_ids": [1, 99]}, r"`prefix_ids` token ids must lie in \[0, 9\)"),
        ({"prefix_ids": torch.ones(3, 2, dtype=torch.long)}, "`prefix_ids` has 3 rows; expected 1 or `batch_size`=2"),
        ({"prefix_ids": [0.5]}, "`prefix_ids` must be integer token ids"),
        ({"infill_ids": torch.zeros(L + 2, dtype=torch.long), "infill_mask": torch.ones(L + 2, dtype=torch.bool)},
         r"`infill_mask` must be a bool tensor of shape \(seq_len,\) or \(batch_size, seq_len\) = \(12,\) or \(2, 12\)"),
        ({"infill_ids": torch.zeros(L, dtype=torch.long), "infill_mask": torch.ones(L)}, "`infill_mask` must be a bool tensor"),
        ({"infill_ids": torch.zeros(L, dtype=torch.long)}, "Pass `infill_ids` and `infill_mask` together"),
        ({"infill_ids": torch.full((L,), MASK), "infill_mask": torch.ones(L, dtype=torch.bool)}, "`infill_ids` must not contain the mask"),
        ({"prefix_ids": [1], "infill_ids": torch.full((L,), 2), "infill_mask": torch.ones(L, dtype=torch.bool)},
         "`infill_ids` contradicts `prefix_ids`"),
        ({"output_type": "pil"}, r"`output_type` must be one of \['seq', 'text'\], got 'pil'"),
        ({"output_type": "text"}, "`output_type='text'` needs a `tokenizer`"),
        ({"batch_size": 0}, "`batch_size` must be a positive int, got 0"),
        ({"seq_len": 40}, r"`seq_len` \(40\) exceeds the longest sequence the `discrete_transformer` model accepts \(16\)"),
        ({"callback_on_step_end_tensor_inputs": ["latents"]}, r"`callback_on_step_end_tensor_inputs` must be in"),
        ({"schedule": "jys"}, "No calibrated grid for `num_inference_steps=3`"),
        ({"timesteps": [0.5, 0.9]}, "decreasing"),
    ],
)
def test_bad_call_arguments_are_rejected(kwargs, match):
    call = {"batch_size": 2, "seq_len": L, "num_inference_steps": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        _pipe()(**call)
