# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Denoiser adapters: turn a model into the denoiser callable that schedulers, pipelines and calibration use.

A *denoiser* is any callable ``(input_ids, t) -> model_output`` with ``input_ids`` a `torch.LongTensor` of shape
``(batch_size, seq_len)``, ``t`` the diffusion times of shape ``(batch_size,)`` (``t = 1`` is pure noise) and
``model_output`` of shape ``(batch_size, seq_len, vocab_size)``, read by the scheduler according to its
``prediction_type`` (``"x0"`` clean-token logits, ``"score"`` log concrete scores).

Real models are called in different ways, and the way is chosen **explicitly** (an argument or a config field), never
inferred from the model:

| kind | call | time input | output |
|---|---|---|---|
| ``"discrete_transformer"`` | ``model(input_ids, timesteps=t).logits`` (the built-in `DiscreteDiffusionTransformer`) | ``t`` | ``x0`` logits |
| ``"time_conditioned"`` | ``model(input_ids, c)`` (MDLM / SEDD style) | ``c = t`` or ``c = σ̄(t)`` (`time_input`) | a tensor or ``.logits`` (``x0`` or ``score``) |
| ``"masked_lm"`` | ``model(input_ids=input_ids).logits`` (`transformers` masked LMs: BERT, LLaDA) | ignored | ``x0`` logits |
| ``"denoiser"`` | ``model(input_ids, t)`` (already a denoiser, e.g. `jys_schedulers.testing.ExactDenoiser`) | ``t`` | as the scheduler says |

Every adapter is bound to a scheduler: on construction it checks what the model declares (vocabulary size, mask id,
output parameterisation) against ``scheduler.config`` and names the offending parameter; on every call it checks the
output shape. :class:`StitchedDenoiser` combines a cheap draft denoiser and a main one into a single time-dependent
denoiser (T-Stitch), so a stitched pair can be calibrated like one model.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch


ADAPTER_KINDS = ("discrete_transformer", "time_conditioned", "masked_lm", "denoiser")
TIME_INPUTS = ("t", "sigma")


@runtime_checkable
class Denoiser(Protocol):
    """Anything callable as ``denoiser(input_ids (B, L) long, t (B,) float) -> model_output (B, L, V)``."""

    def __call__(self, input_ids: torch.LongTensor, t: torch.Tensor) -> torch.Tensor: ...


def _declared(model: Any, name: str) -> Any:
    """``model.config.<name>`` when the model declares it (diffusers and transformers models), else ``None``."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_scheduler(scheduler: Any) -> None:
    config = getattr(scheduler, "config", None)
    needed = ("vocab_size", "mask_token_id", "transition", "prediction_type")
    if config is None or any(key not in config for key in needed) or not hasattr(scheduler, "noise_schedule"):
        raise TypeError(
            f"`scheduler` must be a JYSDiscreteScheduler (config with {list(needed)} and a `noise_schedule`), got "
            f"{type(scheduler).__name__}."
        )


def _times(t: torch.Tensor | float, input_ids: torch.LongTensor) -> torch.Tensor:
    """``t`` as a floating tensor of shape ``(batch_size,)`` on the device of ``input_ids``."""
    batch_size = input_ids.shape[0]
    if isinstance(t, bool) or not isinstance(t, (int, float, torch.Tensor)):
        raise TypeError(f"`t` must be a float or a floating tensor of shape ({batch_size},), got {type(t).__name__}.")
    times = torch.as_tensor(t, device=input_ids.device)
    if not times.is_floating_point():
        times = times.to(torch.float64)
    if times.dim() == 0 or times.shape == (1,):
        return times.reshape(1).expand(batch_size)
    if times.shape != (batch_size,):
        raise ValueError(f"`t` must be a scalar or have shape ({batch_size},), got {tuple(times.shape)}.")
    return times


def _unwrap_output(output: Any, kind: str) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"The `{kind}` model returned {type(output).__name__}; expected a tensor, an output with `.logits`, or a "
        "tuple whose first element is the tensor."
    )


class DenoiserAdapter:
    """
    Base class of the adapters: wraps `model` as a [`Denoiser`] for `scheduler`.

    Subclasses set `kind`, implement `_forward(input_ids, t)` and, when the model's output parameterisation is fixed,
    `output_type`. Calling the adapter validates `t`, runs the model and checks that the output has shape
    `(batch_size, seq_len, scheduler.config.vocab_size)`.

    Args:
        model:
            The model to wrap.
        scheduler ([`JYSDiscreteScheduler`]):
            The scheduler the outputs are for; its `vocab_size`, `mask_token_id`, `prediction_type` and noise schedule
            are checked against what the model declares.
        mask_token_id (`int`, *optional*):
            The mask id that the model's tokenizer uses, when known; checked against `scheduler.config.mask_token_id`.
    """

    kind: str = ""
    #: The parameterisation the model is defined to output (`"x0"`), or `None` when it follows the scheduler.
    output_type: str | None = None

    def __init__(self, model: Any, scheduler: Any, *, mask_token_id: int | None = None):
        if model is None:
            raise ValueError(f"The `{self.kind}` adapter needs a model, got None.")
        _check_scheduler(scheduler)
        self.model = model
        self.scheduler = scheduler
        self.check_compatible(scheduler, mask_token_id=mask_token_id)

    # ------------------------------------------------------------------------------------------- declared metadata
    @property
    def vocab_size(self) -> int | None:
        """Size of the model's output vocabulary, when the model declares it."""
        return _declared(self.model, "vocab_size")

    @property
    def mask_token_id(self) -> int | None:
        """Mask id declared by the model's config, when it declares one."""
        return _declared(self.model, "mask_token_id")

    @property
    def max_seq_len(self) -> int | None:
        """Longest sequence the model accepts, when it declares it."""
        return None

    def check_compatible(self, scheduler: Any, *, mask_token_id: int | None = None) -> None:
        """Raise a `ValueError` naming the parameter when the model cannot drive `scheduler`."""
        config = scheduler.config
        if self.output_type is not None and config.prediction_type != self.output_type:
            raise ValueError(
                f"A `{self.kind}` model outputs {self.output_type!r} logits, but the scheduler has "
                f"`prediction_type={config.prediction_type!r}`; use a scheduler with `prediction_type="
                f"{self.output_type!r}`."
            )
        if self.vocab_size is not None and self.vocab_size != config.vocab_size:
            raise ValueError(
                f"The model's `vocab_size` ({self.vocab_size}) differs from the scheduler's `vocab_size` "
                f"({config.vocab_size}); the logits must cover exactly the scheduler's states (mask included)."
            )
        if config.transition != "absorbing":
            return  # no mask state: a tokenizer's [MASK] (e.g. BERT's, used by uniform-state models) is irrelevant
        for source, declared in (("model config", self.mask_token_id), ("tokenizer", mask_token_id)):
            if declared is not None and declared != config.mask_token_id:
                raise ValueError(
                    f"`mask_token_id` mismatch: the {source} uses {declared}, the scheduler "
                    f"`mask_token_id={config.mask_token_id}`."
                )

    def check_seq_len(self, seq_len: int) -> None:
        """Raise when `seq_len` is longer than the model accepts."""
        if self.max_seq_len is not None and seq_len > self.max_seq_len:
            raise ValueError(
                f"`seq_len` ({seq_len}) exceeds the longest sequence the `{self.kind}` model accepts "
                f"({self.max_seq_len})."
            )

    # ---------------------------------------------------------------------------------------------------- calling
    def _forward(self, input_ids: torch.LongTensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, input_ids: torch.LongTensor, t: torch.Tensor | float) -> torch.Tensor:
        """Run the model at times `t` (a scalar or shape `(batch_size,)`) and return `(batch_size, seq_len, V)`."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"`input_ids` must be an integer tensor of shape (batch_size, seq_len), got "
                f"{getattr(input_ids, 'shape', type(input_ids).__name__)}."
            )
        output = _unwrap_output(self._forward(input_ids, _times(t, input_ids)), self.kind)
        expected = (*input_ids.shape, self.scheduler.config.vocab_size)
        if tuple(output.shape) != expected or not output.is_floating_point():
            raise ValueError(
                f"The `{self.kind}` model returned a {output.dtype} tensor of shape {tuple(output.shape)}; expected "
                f"floating logits of shape {expected} (batch_size, seq_len, the scheduler's `vocab_size`)."
            )
        return output

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__})"


class DiscreteTransformerDenoiser(DenoiserAdapter):
    """The built-in [`DiscreteDiffusionTransformer`]: `model(input_ids, timesteps=t).logits` (x0 logits; `t` is
    ignored by a model built with `time_conditioning=False`)."""

    kind = "discrete_transformer"
    output_type = "x0"

    @property
    def max_seq_len(self) -> int | None:
        return _declared(self.model, "max_seq_len")

    def _forward(self, input_ids, t):
        return self.model(input_ids, timesteps=t).logits


class TimeConditionedDenoiser(DenoiserAdapter):
    """
    A time-conditioned external model called as `model(input_ids, c)` (MDLM's `forward(input_ids, timesteps)`, SEDD's
    `forward(indices, sigma)`), returning a tensor or an output with `.logits`, read as the scheduler's
    `prediction_type`.

    Args:
        time_input (`str`, defaults to `"t"`):
            What the model is conditioned on: `"t"` (the time in `[0, 1]`) or `"sigma"` (the total noise
            `σ̄(t)` of the scheduler's noise schedule, as MDLM and SEDD use). The conditioning is passed as float32.
    """

    kind = "time_conditioned"

    def __init__(self, model: Any, scheduler: Any, *, time_input: str = "t", mask_token_id: int | None = None):
        if time_input not in TIME_INPUTS:
            raise ValueError(f"`time_input` must be one of {list(TIME_INPUTS)}, got {time_input!r}.")
        self.time_input = time_input
        super().__init__(model, scheduler, mask_token_id=mask_token_id)

    @property
    def max_seq_len(self) -> int | None:
        return _declared(self.model, "max_seq_len") or _declared(self.model, "max_position_embeddings")

    def _forward(self, input_ids, t):
        if self.time_input == "sigma":
            t = self.scheduler.noise_schedule.total_noise(t)
        return self.model(input_ids, t.to(torch.float32))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, time_input={self.time_input!r})"


class MaskedLMDenoiser(DenoiserAdapter):
    """A time-agnostic `transformers` masked LM (BERT-, LLaDA-style): `model(input_ids=input_ids).logits` (x0 logits;
    `t` is not passed). Every position is attended (no padding)."""

    kind = "masked_lm"
    output_type = "x0"

    @property
    def max_seq_len(self) -> int | None:
        return _declared(self.model, "max_position_embeddings")

    def _forward(self, input_ids, t):
        return self.model(input_ids=input_ids).logits


class CallableDenoiser(DenoiserAdapter):
    """A callable that already is a denoiser, `fn(input_ids, t)` (e.g. `jys_schedulers.testing.ExactDenoiser`).

    Metadata it declares as attributes (`vocab_size`, `mask_token_id`, `max_seq_len`, `prediction_type`) is checked
    against the scheduler."""

    kind = "denoiser"

    def __init__(self, model: Any, scheduler: Any, *, mask_token_id: int | None = None):
        if not callable(model):
            raise TypeError(f"A `denoiser` model must be callable as fn(input_ids, t), got {type(model).__name__}.")
        declared = getattr(model, "prediction_type", None)
        self.output_type = declared if isinstance(declared, str) else None
        super().__init__(model, scheduler, mask_token_id=mask_token_id)

    def _attribute(self, name: str) -> int | None:
        value = getattr(self.model, name, None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def vocab_size(self) -> int | None:
        return self._attribute("vocab_size")

    @property
    def mask_token_id(self) -> int | None:
        return self._attribute("mask_token_id")

    @property
    def max_seq_len(self) -> int | None:
        return self._attribute("max_seq_len")

    def _forward(self, input_ids, t):
        return self.model(input_ids, t)


_ADAPTERS = {
    "discrete_transformer": DiscreteTransformerDenoiser,
    "time_conditioned": TimeConditionedDenoiser,
    "masked_lm": MaskedLMDenoiser,
    "denoiser": CallableDenoiser,
}


def make_denoiser(
    model: Any,
    scheduler: Any,
    kind: str,
    *,
    time_input: str = "t",
    mask_token_id: int | None = None,
) -> DenoiserAdapter:
    """
    Wrap `model` as a denoiser for `scheduler`, called the way `kind` says.

    Args:
        model: the model (or, for `kind="denoiser"`, the denoiser callable).
        scheduler ([`JYSDiscreteScheduler`]): the scheduler the outputs are for.
        kind (`str`): one of `"discrete_transformer"`, `"time_conditioned"`, `"masked_lm"`, `"denoiser"` (see the
            module docstring).
        time_input (`str`, defaults to `"t"`): `"t"` or `"sigma"`; only `kind="time_conditioned"` may use `"sigma"`.
        mask_token_id (`int`, *optional*): the tokenizer's mask id, when known, checked against the scheduler's.

    Returns:
        [`DenoiserAdapter`]: callable as `denoiser(input_ids, t)`.
    """
    if kind not in _ADAPTERS:
        raise ValueError(f"`kind` must be one of {list(ADAPTER_KINDS)}, got {kind!r}.")
    if kind == "time_conditioned":
        return TimeConditionedDenoiser(model, scheduler, time_input=time_input, mask_token_id=mask_token_id)
    if time_input != "t":
        raise ValueError(
            f"`time_input={time_input!r}` applies to `kind='time_conditioned'` only; a `{kind}` model takes `t`."
        )
    return _ADAPTERS[kind](model, scheduler, mask_token_id=mask_token_id)


_SHARED_SCHEDULER_FIELDS = ("vocab_size", "mask_token_id", "transition", "prediction_type", "noise_schedule")


def check_stitch_compatible(draft: Any, main: Any) -> None:
    """
    Raise a `ValueError` naming the field when two denoisers cannot be stitched: they must share the vocabulary, the
    mask id, the output parameterisation and the noise process (the schedulers they are bound to, when both are
    [`DenoiserAdapter`]s), and agree on what their models declare.
    """
    for name, value in (("draft", draft), ("main", main)):
        if not callable(value):
            raise TypeError(f"The {name} denoiser must be callable as fn(input_ids, t), got {type(value).__name__}.")
    if isinstance(draft, DenoiserAdapter) and isinstance(main, DenoiserAdapter):
        for field in _SHARED_SCHEDULER_FIELDS:
            a, b = draft.scheduler.config.get(field), main.scheduler.config.get(field)
            if a != b:
                raise ValueError(f"Draft and main denoisers differ in the scheduler's `{field}`: {a!r} vs {b!r}.")
        if draft.scheduler.noise_schedule != main.scheduler.noise_schedule:
            raise ValueError(
                "Draft and main denoisers differ in the scheduler's `noise_schedule_kwargs`: "
                f"{draft.scheduler.noise_schedule!r} vs {main.scheduler.noise_schedule!r}."
            )
    for field in ("vocab_size", "mask_token_id"):
        a, b = getattr(draft, field, None), getattr(main, field, None)
        if a is not None and b is not None and a != b:
            raise ValueError(f"Draft and main models declare different `{field}`: {a} vs {b}.")


class StitchedDenoiser:
    """
    T-Stitch as one denoiser: the cheap `draft` denoiser at the noisy times `t >= switch_time`, the `main` denoiser
    below (T-Stitch, https://huggingface.co/papers/2402.14167: a small model can replace the large one on the early,
    noisiest steps).

    Calibrating a `StitchedDenoiser` calibrates the stitched pair as a single model, so the grid accounts for the
    draft's errors. Rows of a batch at different times are routed separately (one call per model at most).

    Args:
        draft ([`Denoiser`]): the cheap denoiser, used for `t >= switch_time`.
        main ([`Denoiser`]): the main denoiser, used for `t < switch_time`.
        switch_time (`float`): in `[0, 1]`; `0` uses the draft everywhere, a value above every call time never.

    Both must be compatible (see [`check_stitch_compatible`]).
    """

    def __init__(self, draft: Denoiser, main: Denoiser, switch_time: float):
        check_stitch_compatible(draft, main)
        if isinstance(switch_time, bool) or not isinstance(switch_time, (int, float)):
            raise TypeError(f"`switch_time` must be a float in [0, 1], got {switch_time!r}.")
        if not (math.isfinite(switch_time) and 0.0 <= switch_time <= 1.0):
            raise ValueError(f"`switch_time` must lie in [0, 1], got {switch_time!r}.")
        self.draft, self.main, self.switch_time = draft, main, float(switch_time)

    @property
    def vocab_size(self) -> int | None:
        return getattr(self.main, "vocab_size", None)

    @property
    def mask_token_id(self) -> int | None:
        return getattr(self.main, "mask_token_id", None)

    @property
    def max_seq_len(self) -> int | None:
        lengths = [n for n in (getattr(self.draft, "max_seq_len", None), getattr(self.main, "max_seq_len", None)) if n]
        return min(lengths) if lengths else None

    def __call__(self, input_ids: torch.LongTensor, t: torch.Tensor | float) -> torch.Tensor:
        times = _times(t, input_ids)
        use_draft = times >= self.switch_time
        if bool(use_draft.all()):
            return self.draft(input_ids, times)
        if not bool(use_draft.any()):
            return self.main(input_ids, times)
        draft_out = self.draft(input_ids[use_draft], times[use_draft])
        main_out = self.main(input_ids[~use_draft], times[~use_draft])
        output = main_out.new_empty((input_ids.shape[0], *main_out.shape[1:]))
        output[use_draft] = draft_out.to(main_out.dtype)
        output[~use_draft] = main_out
        return output

    def __repr__(self) -> str:
        return f"StitchedDenoiser(draft={self.draft!r}, main={self.main!r}, switch_time={self.switch_time})"


__all__ = [
    "ADAPTER_KINDS",
    "TIME_INPUTS",
    "Denoiser",
    "DenoiserAdapter",
    "DiscreteTransformerDenoiser",
    "TimeConditionedDenoiser",
    "MaskedLMDenoiser",
    "CallableDenoiser",
    "make_denoiser",
    "check_stitch_compatible",
    "StitchedDenoiser",
]
