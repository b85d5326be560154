# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""`DiscreteDiffusionPipeline`: unconditional, prefix- and infill-conditioned sampling from a discrete diffusion model,
with optional T-Stitch (a cheap draft model on some steps).

This file imports its package siblings relatively and the library absolutely, so the folder also works as a diffusers
custom pipeline: ``DiffusionPipeline.from_pretrained(path, custom_pipeline=".../pipeline_discrete_diffusion.py",
trust_remote_code=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import replace_example_docstring

from jys_schedulers.models.adapters import (
    ADAPTER_KINDS,
    TIME_INPUTS,
    DenoiserAdapter,
    StitchedDenoiser,
    check_stitch_compatible,
    make_denoiser,
)
from jys_schedulers.scheduling_jys_discrete import JYSDiscreteScheduler

from .pipeline_output import DiscreteDiffusionPipelineOutput


STITCH_MODELS = ("draft", "main")
OUTPUT_TYPES = ("seq", "text")
StitchSchedule = Sequence[str] | Callable[[int, float, int], str]

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from jys_schedulers import JYSDiscreteScheduler
        >>> from jys_schedulers.models import DiscreteDiffusionTransformer
        >>> from jys_schedulers.pipelines import DiscreteDiffusionPipeline

        >>> transformer = DiscreteDiffusionTransformer(vocab_size=33, max_seq_len=64)
        >>> scheduler = JYSDiscreteScheduler(vocab_size=33, mask_token_id=32)
        >>> pipe = DiscreteDiffusionPipeline(transformer=transformer, scheduler=scheduler)
        >>> out = pipe(batch_size=4, num_inference_steps=8, schedule="uniform", generator=torch.Generator().manual_seed(0))
        >>> out.sequences.shape
        torch.Size([4, 64])
        ```
"""


def sandwich_stitch_schedule(num_inference_steps: int, head_ratio: float, tail_ratio: float) -> list[str]:
    """
    A "small-large-small" stitch schedule: the draft model on the first `floor(head_ratio·N)` and the last
    `floor(tail_ratio·N)` of the `N` steps, the main model in between (arXiv 2604.02340 found this shape best for masked
    diffusion LMs). Pass the result as `stitch_schedule`.
    """
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"`num_inference_steps` must be a positive int, got {num_inference_steps!r}.")
    head = _ratio_steps("head_ratio", head_ratio, num_inference_steps)
    tail = _ratio_steps("tail_ratio", tail_ratio, num_inference_steps)
    if head_ratio + tail_ratio > 1 + 1e-9:
        raise ValueError(f"`head_ratio + tail_ratio` must be <= 1, got {head_ratio} + {tail_ratio}.")
    return ["draft"] * head + ["main"] * (num_inference_steps - head - tail) + ["draft"] * tail


def _ratio_steps(name: str, ratio: float, num_steps: int) -> int:
    """`floor(ratio·num_steps)` (steps i with (i+1)/N <= ratio), robust to the rounding of decimal ratios."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (math.isfinite(ratio) and 0 <= ratio <= 1):
        raise ValueError(f"`{name}` must be a float in [0, 1], got {ratio!r}.")
    return math.floor(ratio * num_steps + 1e-9)


def resolve_stitch_schedule(
    timesteps: Sequence[float],
    stitch_ratio: float | None = None,
    stitch_schedule: StitchSchedule | None = None,
) -> list[str]:
    """
    The model (`"draft"` or `"main"`) used at each of the `N = len(timesteps)` steps.

    - neither argument: `"main"` everywhere;
    - `stitch_ratio=r` (T-Stitch): the draft on step `i` iff `(i + 1) / N <= r`, i.e. on the first `floor(r·N)` steps,
      so the draft's share of the steps never exceeds `r`;
    - `stitch_schedule`: a sequence of `N` names, or a callable `fn(step_index, timestep, num_inference_steps)` that
      returns a name (e.g. `lambda i, t, n: "draft" if t >= 0.7 else "main"` for a switch by time).
    """
    num_steps = len(timesteps)
    if stitch_ratio is not None and stitch_schedule is not None:
        raise ValueError("Pass at most one of `stitch_ratio` and `stitch_schedule`.")
    if stitch_ratio is not None:
        num_draft = _ratio_steps("stitch_ratio", stitch_ratio, num_steps)
        return ["draft"] * num_draft + ["main"] * (num_steps - num_draft)
    if stitch_schedule is None:
        return ["main"] * num_steps
    if callable(stitch_schedule):
        plan = [stitch_schedule(i, float(t), num_steps) for i, t in enumerate(timesteps)]
    elif isinstance(stitch_schedule, (list, tuple)):
        if len(stitch_schedule) != num_steps:
            raise ValueError(
                f"`stitch_schedule` names {len(stitch_schedule)} steps, but the grid has {num_steps}; give one of "
                f"{list(STITCH_MODELS)} per step."
            )
        plan = list(stitch_schedule)
    else:
        raise TypeError(
            "`stitch_schedule` must be a list of 'draft'/'main' (one per step) or a callable "
            f"fn(step_index, timestep, num_inference_steps), got {type(stitch_schedule).__name__}."
        )
    unknown = sorted({repr(name) for name in plan if name not in STITCH_MODELS})
    if unknown:
        raise ValueError(f"`stitch_schedule` may only name {list(STITCH_MODELS)}, got {', '.join(unknown)}.")
    return plan


class DiscreteDiffusionPipeline(DiffusionPipeline):
    r"""
    Pipeline for sampling token sequences from a discrete (masked or uniform-state) diffusion model with a
    [`JYSDiscreteScheduler`], e.g. on a calibrated Jump Your Steps grid.

    The denoiser is called once per step at the scheduler's decreasing times in `(0, 1]`; the last step returns clean
    tokens. How the model is called is set explicitly by `adapter` (stored in `model_index.json`, so
    [`~DiffusionPipeline.save_pretrained`] / [`~DiffusionPipeline.from_pretrained`] reproduce it); see
    `jys_schedulers.models.adapters`.

    Args:
        transformer:
            The denoising model: a [`DiscreteDiffusionTransformer`], a `transformers` masked LM, a time-conditioned
            external model or a denoiser callable, as `adapter` says.
        scheduler ([`JYSDiscreteScheduler`]):
            The scheduler; its `vocab_size`, `mask_token_id` and `prediction_type` must match the model.
        tokenizer (*optional*):
            Decodes `output_type="text"`; its `mask_token_id`, when it has one, must equal the scheduler's.
        draft_transformer (*optional*):
            A cheaper model of the same kind, vocabulary and mask id for T-Stitch (`stitch_ratio` /
            `stitch_schedule` in `__call__`).
        adapter (`str`, defaults to `"discrete_transformer"`):
            How both models are called: `"discrete_transformer"` (`model(ids, timesteps=t).logits`),
            `"time_conditioned"` (`model(ids, t or σ̄(t))`, MDLM/SEDD), `"masked_lm"` (`model(input_ids=ids).logits`,
            time-agnostic `transformers` models) or `"denoiser"` (`model(ids, t)`).
        time_input (`str`, defaults to `"t"`):
            For `adapter="time_conditioned"`: condition on the time `"t"` or the total noise `"sigma"` = σ̄(t).
    """

    _optional_components = ["tokenizer", "draft_transformer"]
    _callback_tensor_inputs = ["sample", "pred_original_sample", "model_output", "model_choice"]

    def __init__(
        self,
        transformer: Any,
        scheduler: JYSDiscreteScheduler,
        tokenizer: Any | None = None,
        draft_transformer: Any | None = None,
        adapter: str = "discrete_transformer",
        time_input: str = "t",
    ):
        super().__init__()
        if adapter not in ADAPTER_KINDS:
            raise ValueError(f"`adapter` must be one of {list(ADAPTER_KINDS)}, got {adapter!r}.")
        if time_input not in TIME_INPUTS:
            raise ValueError(f"`time_input` must be one of {list(TIME_INPUTS)}, got {time_input!r}.")
        if transformer is None:
            raise ValueError("`transformer` is required (a model, or a denoiser callable with `adapter='denoiser'`).")
        self.register_modules(
            transformer=transformer, scheduler=scheduler, tokenizer=tokenizer, draft_transformer=draft_transformer
        )
        self.register_to_config(adapter=adapter, time_input=time_input)
        self._denoisers()  # validate the components against each other now

    @property
    def _execution_device(self) -> torch.device:
        """diffusers' rule, except for plain `nn.Module` models (e.g. SEDD), which lack the `.device` that it reads:
        those run where the `transformer`'s weights are."""
        models = [m for m in (self.transformer, self.draft_transformer) if isinstance(m, torch.nn.Module)]
        if any(not hasattr(model, "device") for model in models):
            weight = next(self.transformer.parameters(), None) if isinstance(self.transformer, torch.nn.Module) else None
            return weight.device if weight is not None else torch.device("cpu")
        return super()._execution_device

    @property
    def num_timesteps(self) -> int:
        """Number of denoising steps of the last call."""
        return self._num_timesteps

    # ------------------------------------------------------------------------------------------------- denoisers
    def _adapter(self, model: Any) -> DenoiserAdapter:
        return make_denoiser(
            model,
            self.scheduler,
            self.config.adapter,
            time_input=self.config.time_input,
            mask_token_id=getattr(self.tokenizer, "mask_token_id", None),
        )

    def _denoisers(self) -> dict[str, DenoiserAdapter]:
        """Adapters of the components for the current scheduler, validated against it and against each other."""
        if not isinstance(self.scheduler, JYSDiscreteScheduler):
            raise TypeError(f"`scheduler` must be a JYSDiscreteScheduler, got {type(self.scheduler).__name__}.")
        denoisers = {"main": self._adapter(self.transformer)}
        if self.draft_transformer is not None:
            denoisers["draft"] = self._adapter(self.draft_transformer)
            check_stitch_compatible(denoisers["draft"], denoisers["main"])
        return denoisers

    def denoiser(self, which: str = "main", *, switch_time: float | None = None):
        """
        The denoiser callable `fn(input_ids, t) -> model_output` this pipeline uses, for calibration
        (`jys_schedulers.calibration`) or analysis.

        Args:
            which (`str`, defaults to `"main"`):
                `"main"` (the `transformer`) or `"draft"` (the `draft_transformer`).
            switch_time (`float`, *optional*):
                Return the stitched pair as one [`StitchedDenoiser`] instead: the draft for `t >= switch_time`, the
                main model below (`which` is then ignored).
        """
        denoisers = self._denoisers()
        if switch_time is not None or which == "draft":
            if "draft" not in denoisers:
                raise ValueError("This pipeline has no `draft_transformer`.")
        if switch_time is not None:
            return StitchedDenoiser(denoisers["draft"], denoisers["main"], switch_time)
        if which not in STITCH_MODELS:
            raise ValueError(f"`which` must be one of {list(STITCH_MODELS)}, got {which!r}.")
        return denoisers[which]

    # ----------------------------------------------------------------------------------------------------- inputs
    def check_inputs(
        self,
        batch_size: int,
        seq_len: int,
        output_type: str,
        stitch_ratio: float | None,
        stitch_schedule: StitchSchedule | None,
        callback_on_step_end_tensor_inputs: list[str] | None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {list(OUTPUT_TYPES)}, got {output_type!r}.")
        if output_type == "text" and self.tokenizer is None:
            raise ValueError("`output_type='text'` needs a `tokenizer` component; use `output_type='seq'`.")
        if (stitch_ratio is not None or stitch_schedule is not None) and self.draft_transformer is None:
            raise ValueError("`stitch_ratio` / `stitch_schedule` need a `draft_transformer` component.")
        if stitch_ratio is not None:
            _ratio_steps("stitch_ratio", stitch_ratio, 1)
        if callback_on_step_end_tensor_inputs is not None:
            unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
            if unknown:
                raise ValueError(
                    f"`callback_on_step_end_tensor_inputs` must be in {self._callback_tensor_inputs}, got {unknown}."
                )

    def _check_fixed_ids(self, name: str, ids: torch.Tensor, where: torch.Tensor) -> None:
        config = self.scheduler.config
        values = ids[where]
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= config.vocab_size):
            raise ValueError(f"`{name}` token ids must lie in [0, {config.vocab_size}) (the scheduler's `vocab_size`).")
        if config.transition == "absorbing" and bool((values == config.mask_token_id).any()):
            raise ValueError(f"`{name}` must not contain the mask token ({config.mask_token_id}) at fixed positions.")

    def prepare_fixed_tokens(
        self,
        batch_size: int,
        seq_len: int,
        prefix_ids: torch.LongTensor | Sequence[int] | None,
        infill_ids: torch.LongTensor | None,
        infill_mask: torch.BoolTensor | None,
        device: torch.device,
    ) -> tuple[torch.BoolTensor, torch.LongTensor] | None:
        """The positions held fixed and their tokens, both `(batch_size, seq_len)`, or `None` when nothing is fixed."""
        fixed_mask = torch.zeros(batch_size, seq_len, dtype=torch.bool, device=device)
        fixed_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        prefix = None if prefix_ids is None else torch.as_tensor(prefix_ids, device=device)
        if prefix is not None and prefix.numel() > 0:
            if prefix.is_floating_point() or prefix.dtype == torch.bool or prefix.dim() not in (1, 2):
                raise ValueError(
                    f"`prefix_ids` must be integer token ids of shape (prefix_len,) or (batch_size, prefix_len), got "
                    f"{prefix.dtype} of shape {tuple(prefix.shape)}."
                )
            prefix = prefix.reshape(1, -1) if prefix.dim() == 1 else prefix
            if prefix.shape[0] not in (1, batch_size):
                raise ValueError(f"`prefix_ids` has {prefix.shape[0]} rows; expected 1 or `batch_size`={batch_size}.")
            if prefix.shape[1] > seq_len:
                raise ValueError(f"`prefix_ids` has length {prefix.shape[1]}, longer than `seq_len`={seq_len}.")
            length = prefix.shape[1]
            fixed_mask[:, :length] = True
            fixed_ids[:, :length] = prefix.long()
            self._check_fixed_ids("prefix_ids", fixed_ids, fixed_mask)
        if (infill_ids is None) != (infill_mask is None):
            raise ValueError("Pass `infill_ids` and `infill_mask` together.")
        if infill_ids is not None:
            shapes = ((seq_len,), (1, seq_len), (batch_size, seq_len))
            mask = torch.as_tensor(infill_mask, device=device)
            ids = torch.as_tensor(infill_ids, device=device)
            if mask.dtype != torch.bool or tuple(mask.shape) not in shapes:
                raise ValueError(
                    f"`infill_mask` must be a bool tensor of shape (seq_len,) or (batch_size, seq_len) = "
                    f"({seq_len},) or ({batch_size}, {seq_len}), got {mask.dtype} of shape {tuple(mask.shape)}."
                )
            if ids.is_floating_point() or ids.dtype == torch.bool or tuple(ids.shape) not in shapes:
                raise ValueError(
                    f"`infill_ids` must be integer token ids of shape ({seq_len},) or ({batch_size}, {seq_len}), got "
                    f"{ids.dtype} of shape {tuple(ids.shape)}."
                )
            mask, ids = mask.expand(batch_size, seq_len), ids.long().expand(batch_size, seq_len)
            self._check_fixed_ids("infill_ids", ids, mask)
            if bool((fixed_mask & mask & (fixed_ids != ids)).any()):
                raise ValueError("`infill_ids` contradicts `prefix_ids` at a position both fix.")
            fixed_ids = torch.where(mask, ids, fixed_ids)
            fixed_mask = fixed_mask | mask
        if not bool(fixed_mask.any()):
            return None
        return fixed_mask, fixed_ids

    def _decode(self, sequences: torch.LongTensor) -> list[str]:
        rows = sequences.tolist()
        if hasattr(self.tokenizer, "batch_decode"):
            return self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [self.tokenizer.decode(row) for row in rows]

    # ------------------------------------------------------------------------------------------------ generation
    @torch.inference_mode()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        batch_size: int = 1,
        seq_len: int | None = None,
        num_inference_steps: int = 16,
        timesteps: list[float] | torch.Tensor | None = None,
        schedule: str | None = None,
        prefix_ids: torch.LongTensor | Sequence[int] | None = None,
        infill_ids: torch.LongTensor | None = None,
        infill_mask: torch.BoolTensor | None = None,
        stitch_ratio: float | None = None,
        stitch_schedule: StitchSchedule | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "seq",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> DiscreteDiffusionPipelineOutput | tuple:
        r"""
        Generate token sequences.

        Args:
            batch_size (`int`, defaults to 1):
                Number of sequences.
            seq_len (`int`, *optional*):
                Sequence length; defaults to the longest the model(s) declare (`max_seq_len` of a
                [`DiscreteDiffusionTransformer`], `max_position_embeddings` of a `transformers` model).
            num_inference_steps (`int`, defaults to 16):
                Number of denoising steps (= model calls). The scheduler's calibrated grid for this count is used when
                stored, else its `schedule_fallback`. Ignored when `timesteps` is given.
            timesteps (`list[float]` or `torch.Tensor`, *optional*):
                Custom strictly decreasing call times in `[t_min, 1]` (e.g. a grid from calibration); overrides
                `num_inference_steps` (diffusers' `retrieve_timesteps` rules).
            schedule (`str`, *optional*):
                Passed to `scheduler.set_timesteps`: force `"jys"`, `"uniform"` or `"cosine"`.
            prefix_ids (`torch.LongTensor` or `list[int]`, *optional*):
                Tokens fixed at the first positions, shape `(prefix_len,)` or `(batch_size, prefix_len)`.
            infill_ids (`torch.LongTensor`, *optional*):
                Tokens to fix at the positions where `infill_mask` is `True`, shape `(seq_len,)` or
                `(batch_size, seq_len)` (other entries are ignored).
            infill_mask (`torch.BoolTensor`, *optional*):
                Which positions `infill_ids` fixes; same shape rules. Fixed positions hold their tokens in every
                intermediate `sample` and in the output.
            stitch_ratio (`float`, *optional*):
                T-Stitch: run the `draft_transformer` on the first `floor(stitch_ratio · N)` steps (step `i` iff
                `(i + 1) / N <= stitch_ratio`), the `transformer` on the rest.
            stitch_schedule (`list[str]` or `Callable`, *optional*):
                Per-step model choice instead of `stitch_ratio`: `N` entries of `"draft"` / `"main"` (see
                [`sandwich_stitch_schedule`]) or `fn(step_index, timestep, num_inference_steps) -> "draft" | "main"`.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Randomness; a list gives one generator per sequence.
            output_type (`str`, defaults to `"seq"`):
                `"seq"` returns token ids only; `"text"` also decodes them with the `tokenizer`.
            return_dict (`bool`, defaults to `True`):
                Return a [`DiscreteDiffusionPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, `PipelineCallback` or `MultiPipelineCallbacks`, *optional*):
                Called after every step as `callback_on_step_end(pipe, step_index, timestep, callback_kwargs)` and
                must return a dict; a returned `"sample"` replaces the current tokens (fixed positions are restored).
            callback_on_step_end_tensor_inputs (`list[str]`, *optional*, defaults to `["sample"]`):
                Entries of `callback_kwargs`, from `sample` (tokens after the step), `pred_original_sample` (most likely
                clean tokens), `model_output` (the denoiser output) and `model_choice` (`"draft"` or `"main"`).

        Examples:

        Returns:
            [`DiscreteDiffusionPipelineOutput`] or `tuple`: the output, or `(sequences, texts)` when
            `return_dict=False` (`texts` is `None` for `output_type="seq"`).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        denoisers = self._denoisers()
        using_draft = stitch_ratio is not None or stitch_schedule is not None
        if seq_len is None:
            lengths = [d.max_seq_len for name, d in denoisers.items() if name == "main" or using_draft]
            if None in lengths:
                raise ValueError("`seq_len` is required: the model does not declare its longest sequence.")
            seq_len = min(lengths)
        self.check_inputs(
            batch_size, seq_len, output_type, stitch_ratio, stitch_schedule, callback_on_step_end_tensor_inputs
        )
        for name, denoiser in denoisers.items():
            if name == "main" or using_draft:
                denoiser.check_seq_len(seq_len)
        device = self._execution_device
        fixed = self.prepare_fixed_tokens(batch_size, seq_len, prefix_ids, infill_ids, infill_mask, device)

        # diffusers' `retrieve_timesteps` rule: custom `timesteps` override `num_inference_steps`.
        if timesteps is not None:
            self.scheduler.set_timesteps(timesteps=timesteps, device=device, schedule=schedule)
        else:
            self.scheduler.set_timesteps(num_inference_steps, device=device, schedule=schedule)
        timesteps = self.scheduler.timesteps
        plan = resolve_stitch_schedule(timesteps.tolist(), stitch_ratio, stitch_schedule)
        self._num_timesteps = len(timesteps)
        tensor_inputs = callback_on_step_end_tensor_inputs or ["sample"]

        sample = self.scheduler.sample_prior(batch_size, seq_len, generator=generator, device=device)
        if fixed is not None:
            sample = torch.where(fixed[0], fixed[1], sample)

        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                model_choice = plan[i]
                model_output = denoisers[model_choice](sample, t.expand(batch_size))
                step = self.scheduler.step(model_output, t, sample, generator=generator)
                sample, pred_original_sample = step.prev_sample, step.pred_original_sample
                if fixed is not None:
                    sample = torch.where(fixed[0], fixed[1], sample)
                    pred_original_sample = torch.where(fixed[0], fixed[1], pred_original_sample)

                if callback_on_step_end is not None:
                    values = {
                        "sample": sample,
                        "pred_original_sample": pred_original_sample,
                        "model_output": model_output,
                        "model_choice": model_choice,
                    }
                    callback_outputs = callback_on_step_end(self, i, t, {k: values[k] for k in tensor_inputs})
                    sample = callback_outputs.pop("sample", sample)
                    if fixed is not None:
                        sample = torch.where(fixed[0], fixed[1], sample)
                progress_bar.update()

        texts = self._decode(sample) if output_type == "text" else None
        self.maybe_free_model_hooks()
        if not return_dict:
            return sample, texts
        return DiscreteDiffusionPipelineOutput(sequences=sample, texts=texts)


__all__ = ["DiscreteDiffusionPipeline", "resolve_stitch_schedule", "sandwich_stitch_schedule"]
