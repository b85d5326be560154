# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Training objectives and an accelerate-ready training loop for ``x0`` denoisers.

The objective (METHOD.md §2–3) for a model that predicts clean-token logits ``p_θ(x0 | x_t)``:

1. draw times ``t ~ U(t_min, 1)`` (stratified over the batch by default: one draw in each of ``B`` equal strata,
   which lowers the variance of the batch loss at no cost);
2. corrupt the clean batch with the scheduler's own forward process, ``scheduler.add_noise`` (coupled uniforms, the
   same code the sampler and the calibration use; nothing is re-derived here);
3. score the clean token with a cross-entropy:

   - absorbing: on the **masked** positions only, with the mask logit excluded from the softmax (the sampler reads the
     logits the same way, `AbsorbingProcess.x0_probs_from_logits`); unmasked positions are copied through by the
     sampler and carry no loss. This is MDLM's x0 ("SUBS") loss.
   - uniform: on **all** positions (every position may have been resampled).

Weightings (``weighting=``):

- ``"none"`` (default): the mean cross-entropy over the scored positions of the batch. Its minimiser over all
  functions of ``(x_t, t)`` is the true posterior ``q(x0 | x_t)`` at every ``t`` (a proper scoring rule at each time),
  exactly as for the ELBO weighting; on CPU it trains faster and more stably, because the ELBO weight
  ``c(t) ≈ 1/t`` (log-linear) gives the few masked tokens of small-``t`` samples huge weights and the batch loss a heavy
  tail.
- ``"elbo"`` (absorbing only): the continuous-time negative ELBO per token,
  ``E_t[c(t) · Σ_{l masked} -log p_θ(x0_l | x_t)] / L`` with ``c(t) = σ(t) α(t) / (1 - α(t))`` =
  ``noise_schedule.hazard(t)`` (MDLM). :func:`evaluate_denoiser` always reports this bound (in nats per token) on
  held-out data, whatever the training weighting.

:func:`train_denoiser` runs AdamW with linear warm-up and cosine decay, gradient clipping, optional EMA and gradient
accumulation through `accelerate` (``Accelerator.prepare``, ``accumulate``, progress and logs on the main process), so
the same call runs on one CPU, ``accelerate launch`` with several processes, or a GPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .models.adapters import make_denoiser
from .sampling import GeneratorLike, uniform_noise
from .validation import check_int


WEIGHTINGS = ("none", "elbo")

__all__ = [
    "WEIGHTINGS",
    "sample_training_times",
    "token_cross_entropy",
    "denoising_loss",
    "warmup_cosine_lr",
    "evaluate_denoiser",
    "TrainingResult",
    "train_denoiser",
]


# ------------------------------------------------------------------------------------------------------ validation
def _check_float(name: str, value: object, low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        brackets = ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
        raise ValueError(f"`{name}` must be a float in {brackets}, got {value!r}.")
    return float(value)


def _check_weighting(weighting: str, transition: str) -> str:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"`weighting` must be one of {list(WEIGHTINGS)}, got {weighting!r}.")
    if weighting == "elbo" and transition != "absorbing":
        raise ValueError(
            "`weighting='elbo'` applies to absorbing models only (the uniform ELBO is not a weighted x0 "
            f"cross-entropy); the scheduler has `transition={transition!r}`. Use `weighting='none'`."
        )
    return weighting


def _check_clean_tokens(x0: torch.Tensor, scheduler: Any, name: str = "data") -> None:
    """Clean data must be integer ids of data tokens: inside the vocabulary and never the mask token."""
    if not isinstance(x0, torch.Tensor) or x0.dtype.is_floating_point or x0.dtype == torch.bool or x0.is_complex():
        raise TypeError(f"`{name}` must be an integer token tensor of shape (num_sequences, seq_len), got {x0!r:.80}.")
    if x0.dim() != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
        raise ValueError(f"`{name}` must have shape (num_sequences, seq_len), got {tuple(x0.shape)}.")
    config = scheduler.config
    low, high = int(x0.min()), int(x0.max())
    if low < 0 or high >= config.vocab_size:
        raise ValueError(f"`{name}` token ids must lie in [0, {config.vocab_size}), got range [{low}, {high}].")
    if config.transition == "absorbing" and bool((x0 == config.mask_token_id).any()):
        raise ValueError(f"`{name}` contains the mask token ({config.mask_token_id}); clean data must not.")


# ------------------------------------------------------------------------------------------------------ objective
def sample_training_times(
    batch_size: int,
    t_min: float = 1e-3,
    *,
    stratified: bool = True,
    generator: GeneratorLike = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Training times in ``[t_min, 1)``, shape ``(batch_size,)``, float64.

    ``stratified=True``: row ``i`` gets ``t_min + (1 - t_min) (i + u_i) / B`` with ``u_i ~ U[0, 1)`` (one draw in each
    of ``B`` equal strata; each row is still marginally ``U(t_min, 1)``). ``False``: i.i.d. uniform draws.
    """
    check_int("batch_size", batch_size, 1)
    t_min = _check_float("t_min", t_min, 0.0, 1.0, high_open=True)
    u = uniform_noise((batch_size,), generator, device)
    if stratified:
        u = (torch.arange(batch_size, dtype=torch.float64, device=u.device) + u) / batch_size
    return t_min + (1.0 - t_min) * u


def token_cross_entropy(
    logits: torch.Tensor, x0: torch.LongTensor, x_t: torch.LongTensor, scheduler: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position ``-log p_θ(x0 | x_t)`` (float32, `(B, L)`) and the positions the objective scores (bool, `(B, L)`).

    Absorbing: the mask logit is excluded from the softmax and only masked positions of ``x_t`` are scored. Uniform:
    a plain softmax over the ``V`` tokens, every position scored.
    """
    config = scheduler.config
    expected = (*x0.shape, config.vocab_size)
    if tuple(logits.shape) != expected or not logits.is_floating_point():
        raise ValueError(f"`logits` must be floating with shape {expected}, got {logits.dtype} {tuple(logits.shape)}.")
    if x_t.shape != x0.shape:
        raise ValueError(f"`x_t` must have the shape of `x0` {tuple(x0.shape)}, got {tuple(x_t.shape)}.")
    logits = logits.float()
    if config.transition == "absorbing":
        mask_id = config.mask_token_id
        logits = logits.masked_fill(
            torch.arange(config.vocab_size, device=logits.device) == mask_id, float("-inf")
        )
        scored = x_t == mask_id
    else:
        scored = torch.ones_like(x_t, dtype=torch.bool)
    nll = -torch.gather(F.log_softmax(logits, dim=-1), -1, x0.unsqueeze(-1)).squeeze(-1)
    return nll, scored


def denoising_loss(
    logits: torch.Tensor,
    x0: torch.LongTensor,
    x_t: torch.LongTensor,
    t: torch.Tensor,
    scheduler: Any,
    weighting: str = "none",
) -> torch.Tensor:
    """The scalar training loss of one batch (see the module docstring).

    ``"none"``: mean cross-entropy over the scored positions (0 when the batch has none). ``"elbo"``:
    ``Σ_b c(t_b) Σ_{l masked} CE_{b,l} / (B · L)``, an unbiased estimate of the negative ELBO per token restricted to
    ``t ∈ [t_min, 1]``, divided by ``1 - t_min`` (absorbing).
    """
    _check_weighting(weighting, scheduler.config.transition)
    nll, scored = token_cross_entropy(logits, x0, x_t, scheduler)
    nll = nll * scored
    if weighting == "none":
        return nll.sum() / scored.sum().clamp_min(1)
    weight = scheduler.noise_schedule.hazard(t.to(torch.float64)).to(nll.dtype)
    return (weight[:, None] * nll).sum() / nll.numel()


def warmup_cosine_lr(step: int, *, total_steps: int, warmup_steps: int, base_lr: float, min_lr_ratio: float = 0.1):
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up to ``base_lr`` over ``warmup_steps`` steps,
    then cosine decay to ``min_lr_ratio · base_lr`` at ``total_steps - 1``."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(total_steps - 1 - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.inference_mode()
def evaluate_denoiser(
    model: Any,
    scheduler: Any,
    data: torch.LongTensor,
    *,
    batch_size: int = 64,
    t_min: float = 1e-3,
    seed: int = 0,
    adapter: str = "discrete_transformer",
) -> dict[str, float]:
    """Held-out losses with fixed randomness (the same times and noise for every model under the same ``seed``).

    Returns ``{"cross_entropy": mean CE over scored positions (nats), "nelbo": negative ELBO per token (nats,
    absorbing; the integral over [t_min, 1]) or None (uniform), "num_sequences": N}``.
    """
    check_int("batch_size", batch_size, 1)
    _check_clean_tokens(data, scheduler)
    denoiser = make_denoiser(model, scheduler, adapter)
    device = next(iter(model.parameters())).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    absorbing = scheduler.config.transition == "absorbing"
    total_nll = total_scored = total_nelbo = 0.0
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        for start in range(0, data.shape[0], batch_size):
            x0 = data[start : start + batch_size]
            t = sample_training_times(x0.shape[0], t_min, generator=generator)
            x_t = scheduler.add_noise(x0, None, t, generator=generator)
            logits = denoiser(x_t.to(device), t.to(device))
            nll, scored = token_cross_entropy(logits, x0.to(device), x_t.to(device), scheduler)
            nll = (nll * scored).double().cpu()
            total_nll += float(nll.sum())
            total_scored += float(scored.sum())
            if absorbing:
                weight = scheduler.noise_schedule.hazard(t)
                total_nelbo += float((weight[:, None] * nll).sum()) * (1.0 - t_min) / x0.shape[1]
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
    return {
        "cross_entropy": total_nll / max(total_scored, 1.0),
        "nelbo": total_nelbo / data.shape[0] if absorbing else None,
        "num_sequences": int(data.shape[0]),
    }


# ------------------------------------------------------------------------------------------------------ training
@dataclass
class TrainingResult:
    """
    What [`train_denoiser`] returns.

    Args:
        model (`torch.nn.Module`): the trained model, unwrapped from accelerate (EMA weights when `ema_decay` was set).
        history (`list[dict]`): one entry per log point: `step`, `loss` (mean since the last entry, over processes),
            `lr`, `grad_norm` (before clipping), `elapsed_s`.
        steps (`int`): optimizer steps taken.
        sequences_seen (`int`): training sequences over all processes and accumulation micro-batches.
        wall_time_s (`float`): time spent in the loop.
        ema (`bool`): whether `model` holds the EMA weights.
    """

    model: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    sequences_seen: int = 0
    wall_time_s: float = 0.0
    ema: bool = False


def _batches(data: torch.LongTensor | Iterable[torch.LongTensor], batch_size: int, accelerator: Any, seed: int):
    """An endless iterator of clean batches: a shuffled, sharded `DataLoader` over a tensor (new order every epoch),
    or the user's iterable of batches as given."""
    if isinstance(data, torch.Tensor):
        if data.shape[0] < batch_size * accelerator.num_processes:
            raise ValueError(
                f"`data` holds {data.shape[0]} sequences, fewer than one global batch "
                f"(batch_size={batch_size} x {accelerator.num_processes} processes)."
            )
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data),
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(seed),
        )
        loader = accelerator.prepare(loader)

        def endless() -> Iterator[torch.LongTensor]:
            while True:
                for (batch,) in loader:
                    yield batch

        return endless()
    if isinstance(data, Iterable):
        return iter(data)
    raise TypeError(f"`data` must be a LongTensor (num_sequences, seq_len) or an iterable of batches, got {type(data)}.")


def train_denoiser(
    model: torch.nn.Module,
    scheduler: Any,
    data: torch.LongTensor | Iterable[torch.LongTensor],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    warmup_steps: int | None = None,
    min_lr_ratio: float = 0.1,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    ema_decay: float | None = None,
    t_min: float = 1e-3,
    weighting: str = "none",
    stratified: bool = True,
    adapter: str = "discrete_transformer",
    seed: int = 0,
    accelerator: Any | None = None,
    log_every: int = 50,
    progress: bool = True,
) -> TrainingResult:
    """
    Train an ``x0`` denoiser with the objective of this module.

    Args:
        model (`torch.nn.Module`):
            The denoiser, e.g. a [`DiscreteDiffusionTransformer`]; trained in place. Seed its initialisation yourself
            (``accelerate.utils.set_seed``) for reproducible runs.
        scheduler ([`JYSDiscreteScheduler`]):
            Defines the process (absorbing/uniform, mask id, vocabulary) and the noise schedule used by ``add_noise``.
        data (`torch.LongTensor` or iterable of them):
            Clean sequences ``(num_sequences, seq_len)``, shuffled every epoch and sharded over processes, or an
            iterable yielding clean batches (used as given; must last ``steps × accumulation`` batches).
        steps (`int`): optimizer steps.
        batch_size (`int`, defaults to 64): sequences per process and micro-batch (tensor `data` only).
        lr (`float`, defaults to 1e-3): peak AdamW learning rate.
        warmup_steps (`int`, *optional*): linear warm-up steps; default ``min(500, steps // 10)``.
        min_lr_ratio (`float`, defaults to 0.1): final learning rate of the cosine decay, relative to `lr`.
        weight_decay (`float`, defaults to 0.0): AdamW weight decay.
        grad_clip (`float`, *optional*, defaults to 1.0): max global gradient norm; `None` disables clipping.
        ema_decay (`float`, *optional*): keep an exponential moving average of the weights with this decay and load it
            into `model` at the end (`torch.optim.swa_utils.AveragedModel`).
        t_min (`float`, defaults to 1e-3): smallest training time.
        weighting (`str`, defaults to `"none"`): `"none"` or `"elbo"` (absorbing only); see the module docstring.
        stratified (`bool`, defaults to `True`): stratified training times (see [`sample_training_times`]).
        adapter (`str`, defaults to `"discrete_transformer"`): how the model is called (`jys_schedulers.models.adapters`
            kinds that output x0 logits: `"discrete_transformer"`, `"masked_lm"`, `"time_conditioned"`).
        seed (`int`, defaults to 0): seeds the data order and the training times and noise (offset per process).
        accelerator (`accelerate.Accelerator`, *optional*): defaults to a new `Accelerator()`; pass one to choose mixed
            precision, gradient accumulation (`gradient_accumulation_steps`) or the CPU.
        log_every (`int`, defaults to 50): optimizer steps between history entries.
        progress (`bool`, defaults to `True`): tqdm progress bar on the main process.

    Returns:
        [`TrainingResult`].
    """
    from accelerate import Accelerator
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from tqdm.auto import tqdm

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    check_int("log_every", log_every, 1)
    check_int("seed", seed, 0)
    lr = _check_float("lr", lr, 0.0, 1.0, low_open=True)
    min_lr_ratio = _check_float("min_lr_ratio", min_lr_ratio, 0.0, 1.0)
    weight_decay = _check_float("weight_decay", weight_decay, 0.0, 1.0)
    warmup_steps = min(500, steps // 10) if warmup_steps is None else check_int("warmup_steps", warmup_steps, 0)
    if grad_clip is not None:
        grad_clip = _check_float("grad_clip", grad_clip, 0.0, math.inf, low_open=True)
    if ema_decay is not None:
        ema_decay = _check_float("ema_decay", ema_decay, 0.0, 1.0, low_open=True, high_open=True)
    t_min = _check_float("t_min", t_min, 0.0, 1.0, high_open=True)
    weighting = _check_weighting(weighting, scheduler.config.transition)
    if isinstance(data, torch.Tensor):
        _check_clean_tokens(data, scheduler)
    make_denoiser(model, scheduler, adapter)  # validates the model against the scheduler before any work

    accelerator = accelerator if accelerator is not None else Accelerator()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    prepared, optimizer = accelerator.prepare(model, optimizer)
    denoiser = make_denoiser(prepared, scheduler, adapter)  # the wrapped model declares nothing: no re-validation
    batches = _batches(data, batch_size, accelerator, seed)
    ema = None
    if ema_decay is not None:
        ema = AveragedModel(accelerator.unwrap_model(prepared), multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
    generator = torch.Generator(device=accelerator.device).manual_seed(seed + 7919 * (1 + accelerator.process_index))

    history: list[dict[str, float]] = []
    running = torch.zeros((), device=accelerator.device)  # summed on the device: no host sync between log points
    running_count, sequences = 0, 0
    grad_norm = torch.full((), float("nan"))
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="training", disable=not (progress and accelerator.is_local_main_process))
    step = 0
    while step < steps:
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine_lr(
                step, total_steps=steps, warmup_steps=warmup_steps, base_lr=lr, min_lr_ratio=min_lr_ratio
            )
        try:
            x0 = next(batches)
        except StopIteration:
            raise ValueError(f"`data` ran out of batches after {step} of {steps} optimizer steps.") from None
        if not isinstance(data, torch.Tensor):  # a tensor was checked once, up front
            _check_clean_tokens(x0, scheduler, "data batch")
        x0 = x0.to(accelerator.device)
        with accelerator.accumulate(prepared):
            t = sample_training_times(x0.shape[0], t_min, stratified=stratified, generator=generator, device=x0.device)
            x_t = scheduler.add_noise(x0, None, t, generator=generator)
            loss = denoising_loss(denoiser(x_t, t), x0, x_t, t, scheduler, weighting)
            accelerator.backward(loss)
            if accelerator.sync_gradients and grad_clip is not None:
                grad_norm = accelerator.clip_grad_norm_(prepared.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        running += loss.detach()
        running_count += 1
        sequences += x0.shape[0] * accelerator.num_processes
        if not accelerator.sync_gradients:
            continue
        step += 1
        if ema is not None:
            ema.update_parameters(accelerator.unwrap_model(prepared))
        bar.update(1)
        if step % log_every == 0 or step == steps:
            entry = {
                "step": step,
                "loss": float(accelerator.reduce(running, reduction="mean")) / running_count,
                "lr": optimizer.param_groups[0]["lr"],
                "grad_norm": float(grad_norm),
                "elapsed_s": time.perf_counter() - start,
            }
            history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")
            running.zero_()
            running_count = 0
    bar.close()

    trained = accelerator.unwrap_model(prepared)
    if ema is not None:
        with torch.no_grad():
            for target, source in zip(trained.parameters(), ema.module.parameters()):
                target.copy_(source)
    trained.eval()
    return TrainingResult(
        model=trained,
        history=history,
        steps=step,
        sequences_seen=sequences,
        wall_time_s=time.perf_counter() - start,
        ema=ema is not None,
    )
