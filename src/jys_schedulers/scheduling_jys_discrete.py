# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""`JYSDiscreteScheduler`: τ-leaping for discrete diffusion on calibrated (Jump Your Steps) time grids."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from .noise_schedules import NoiseSchedule, get_noise_schedule
from .processes import DiscreteProcess, Transition, get_process
from .sampling import SAMPLING_PRECISIONS, GeneratorLike, sample_transition, uniform_noise
from .schedules import (
    HEURISTIC_GRIDS,
    heuristic_timesteps,
    step_boundaries,
    timesteps_to_token_quota,
    validate_schedule_dict,
    validate_timesteps,
)


PREDICTION_TYPES = ("x0", "score")
SAMPLERS = ("tweedie", "euler")
SCHEDULE_FALLBACKS = ("uniform", "cosine", "error")


@dataclass
class JYSDiscreteSchedulerOutput(BaseOutput):
    """
    Output of [`JYSDiscreteScheduler.step`].

    Args:
        prev_sample (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            Tokens at the next (less noisy) time of the grid; clean tokens after the last step.
        pred_original_sample (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            The most likely clean tokens under the model at this step (mode of the final-denoising law).
        num_clipped (`int`):
            Positions whose jump probability exceeded 1 and was clipped (Euler steps too large for the rate).
    """

    prev_sample: torch.LongTensor
    pred_original_sample: torch.LongTensor
    num_clipped: int = 0


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")
    return value  # type: ignore[return-value]


class JYSDiscreteScheduler(SchedulerMixin, ConfigMixin):
    """
    τ-leaping scheduler for discrete diffusion models (absorbing/masked and uniform-state) whose sampling grids can be
    calibrated with Jump Your Steps (https://huggingface.co/papers/2410.07761).

    The denoiser is called at the decreasing times ``scheduler.timesteps`` in ``(0, 1]``; each [`~JYSDiscreteScheduler.step`]
    moves every position independently from ``t_i`` to ``t_{i+1}`` (Euler or Tweedie τ-leaping) and the last step
    maps to clean tokens, so ``num_inference_steps`` steps cost exactly that many model calls. Calibrated grids live in
    the config (`jys_schedules`), so [`~SchedulerMixin.save_pretrained`], [`~SchedulerMixin.from_pretrained`] and
    [`~utils.PushToHubMixin.push_to_hub`] carry them with no extra files; `set_timesteps` uses the stored grid for the
    requested step count.

    Args:
        vocab_size (`int`):
            Number of token states, the mask token included for absorbing models.
        mask_token_id (`int`, *optional*):
            Id of the mask token; required for `transition="absorbing"`, must be `None` for `"uniform"`.
        transition (`str`, defaults to `"absorbing"`):
            Corruption process: `"absorbing"` (masking) or `"uniform"` (uniform resampling).
        noise_schedule (`str`, defaults to `"loglinear"`):
            One of `"loglinear"`, `"linear"`, `"cosine"`, `"geometric"` (see `jys_schedulers.noise_schedules`).
        noise_schedule_kwargs (`dict`, *optional*):
            Parameters of the noise schedule, e.g. `{"eps": 1e-3}`.
        prediction_type (`str`, defaults to `"x0"`):
            `"x0"`: the model returns logits of the clean token (MDLM, LLaDA, BERT-style); `"score"`: log concrete
            scores `log q_t(y)/q_t(x_t)` (SEDD).
        sampler (`str`, defaults to `"tweedie"`):
            `"tweedie"` (exact per-position posterior) or `"euler"` (rates frozen over the step).
        t_min (`float`, defaults to 1e-5):
            Smallest time at which the model may be called (grids and calibration candidates stay in `[t_min, 1]`).
        sampling_precision (`str`, defaults to `"float64"`):
            `"float64"` exact categorical sampling, or `"reference"` to reproduce the truncated float32 noise of the
            reference code (lower effective temperature; for comparisons with published numbers only).
        jys_schedules (`dict[str, list[float]]`, *optional*):
            Calibrated grids keyed by step count, e.g. `{"8": [1.0, 0.71, ...]}`; each holds that many decreasing times.
        schedule_fallback (`str`, defaults to `"uniform"`):
            Grid used by `set_timesteps(num_inference_steps=N)` when no calibrated grid exists for `N`: `"uniform"` or
            `"cosine"` (with a warning), or `"error"` to raise.
        calibration_info (`dict`, *optional*):
            Provenance of the calibrated grids (model, data, sample count, sampler, objective, costs...).
    """

    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        vocab_size: int,
        mask_token_id: int | None = None,
        transition: str = "absorbing",
        noise_schedule: str = "loglinear",
        noise_schedule_kwargs: dict[str, Any] | None = None,
        prediction_type: str = "x0",
        sampler: str = "tweedie",
        t_min: float = 1e-5,
        sampling_precision: str = "float64",
        jys_schedules: dict[str, list[float]] | None = None,
        schedule_fallback: str = "uniform",
        calibration_info: dict[str, Any] | None = None,
    ):
        _check_choice("prediction_type", prediction_type, PREDICTION_TYPES)
        _check_choice("sampler", sampler, SAMPLERS)
        _check_choice("sampling_precision", sampling_precision, SAMPLING_PRECISIONS)
        _check_choice("schedule_fallback", schedule_fallback, SCHEDULE_FALLBACKS)
        if not isinstance(t_min, (int, float)) or isinstance(t_min, bool) or not 0.0 < float(t_min) < 1.0:
            raise ValueError(f"`t_min` must be a float in (0, 1), got {t_min!r}.")
        if noise_schedule_kwargs is not None and not isinstance(noise_schedule_kwargs, dict):
            raise TypeError(f"`noise_schedule_kwargs` must be a dict or None, got {type(noise_schedule_kwargs).__name__}.")
        if calibration_info is not None and not isinstance(calibration_info, dict):
            raise TypeError(f"`calibration_info` must be a dict or None, got {type(calibration_info).__name__}.")
        self.process: DiscreteProcess = get_process(transition, vocab_size, mask_token_id)
        self.noise_schedule: NoiseSchedule = get_noise_schedule(noise_schedule, **(noise_schedule_kwargs or {}))
        self._schedules = validate_schedule_dict(jys_schedules, t_min=t_min)
        self.register_to_config(jys_schedules=self._schedules or None)  # normalised: {"N": [floats]}

        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        self.schedule_name: str | None = None
        self._grid: list[float] = []

    @classmethod
    def extract_init_dict(cls, config_dict: dict[str, Any], **kwargs: Any):
        """Reject unknown keys in a (possibly hand-edited) config instead of silently ignoring them."""
        expected = cls._get_init_keys(cls) - {"self", "kwargs"}
        unknown = sorted(k for k in config_dict if not k.startswith("_") and k not in expected)
        if unknown:
            raise ValueError(
                f"Unknown {cls.__name__} config keys {unknown}; allowed keys are {sorted(expected)}."
            )
        return super().extract_init_dict(config_dict, **kwargs)

    # ------------------------------------------------------------------------------------------------ schedules
    @property
    def available_schedules(self) -> list[int]:
        """Step counts that have a calibrated grid."""
        return [int(n) for n in self._schedules]

    def get_timesteps(self, num_inference_steps: int, schedule: str | None = None) -> tuple[list[float], str]:
        """The grid for ``num_inference_steps`` and the name of its source (``"jys"``, ``"uniform"``, ``"cosine"``).

        ``schedule=None`` uses the calibrated grid when one is stored, else ``schedule_fallback``; ``"jys"`` requires a
        stored grid; ``"uniform"`` / ``"cosine"`` always give that heuristic grid.
        """
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool):
            raise TypeError(f"`num_inference_steps` must be an int, got {type(num_inference_steps).__name__}.")
        if num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}.")
        if schedule is not None and schedule != "jys" and schedule not in HEURISTIC_GRIDS:
            raise ValueError(f"`schedule` must be None, 'jys' or one of {sorted(HEURISTIC_GRIDS)}, got {schedule!r}.")
        key = str(num_inference_steps)
        if schedule in (None, "jys") and key in self._schedules:
            return list(self._schedules[key]), "jys"
        if schedule == "jys" or (schedule is None and self.config.schedule_fallback == "error"):
            raise ValueError(
                f"No calibrated grid for `num_inference_steps={num_inference_steps}`; stored step counts: "
                f"{self.available_schedules}. Calibrate one (scripts/calibrate.py --nfe {num_inference_steps}) or pass "
                "`schedule='uniform'` / `'cosine'` or explicit `timesteps`."
            )
        if schedule is None:
            schedule = self.config.schedule_fallback
            warnings.warn(
                f"No calibrated JYS grid for {num_inference_steps} steps (stored: {self.available_schedules}); "
                f"using the {schedule!r} grid.",
                UserWarning,
                stacklevel=3,
            )
        return heuristic_timesteps(schedule, num_inference_steps, self.noise_schedule), schedule

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        timesteps: list[float] | torch.Tensor | None = None,
        schedule: str | None = None,
    ) -> None:
        """
        Set the times at which the denoiser is called (run before inference).

        Args:
            num_inference_steps (`int`, *optional*):
                Number of denoising steps (= model calls). Uses the calibrated grid for this count when one is
                stored, else `schedule_fallback`.
            device (`str` or `torch.device`, *optional*):
                Device of `self.timesteps`.
            timesteps (`list[float]` or `torch.Tensor`, *optional*):
                Custom strictly decreasing times in `[t_min, 1]`; the number of steps is their length. Mutually
                exclusive with `num_inference_steps` and `schedule`.
            schedule (`str`, *optional*):
                Force a grid: `"jys"` (stored calibrated grid, error if missing), `"uniform"` or `"cosine"`.
        """
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError("Pass exactly one of `num_inference_steps` or `timesteps`.")
        if timesteps is not None:
            if schedule is not None:
                raise ValueError("`schedule` cannot be combined with custom `timesteps`.")
            grid, name = validate_timesteps(timesteps, t_min=self.config.t_min), "custom"
        else:
            grid, name = self.get_timesteps(num_inference_steps, schedule)
        self._grid = grid
        self.schedule_name = name
        self.num_inference_steps = len(grid)
        self.timesteps = torch.tensor(grid, dtype=torch.float32, device=device)

    def token_quota(self, seq_len: int, num_inference_steps: int | None = None, schedule: str | None = None) -> list[int]:
        """Integer tokens revealed per step (absorbing models), summing to ``seq_len``, for the current grid or for
        ``num_inference_steps`` (chosen as in `set_timesteps`). Feeds LLaDA-style "transfer k tokens" samplers."""
        if self.config.transition != "absorbing":
            raise ValueError("`token_quota` applies to `transition='absorbing'` only.")
        if num_inference_steps is None:
            if not self._grid:
                raise ValueError("Call `set_timesteps` first or pass `num_inference_steps`.")
            grid = self._grid
        else:
            grid, _ = self.get_timesteps(num_inference_steps, schedule)
        return timesteps_to_token_quota(grid, seq_len, self.noise_schedule)

    # ----------------------------------------------------------------------------------------------- stepping
    def scale_model_input(self, sample: torch.Tensor, timestep: float | torch.Tensor | None = None) -> torch.Tensor:
        """Identity (discrete states are not scaled); present so generic diffusers code paths work."""
        return sample

    def index_for_timestep(self, timestep: float | torch.Tensor) -> int:
        """Position of ``timestep`` in the current grid (a scalar, or a tensor whose entries are all equal)."""
        if not self._grid:
            raise ValueError("Call `set_timesteps` before `step`.")
        if isinstance(timestep, torch.Tensor):
            if timestep.numel() == 0 or timestep.is_complex():
                raise ValueError(f"`timestep` must be a real scalar or a tensor of equal times, got {timestep!r}.")
            flat = timestep.detach().reshape(-1).to(torch.float64)
            if not torch.all(flat == flat[0]):
                raise ValueError("`timestep` must hold one time for the whole batch.")
            value = float(flat[0])
        elif isinstance(timestep, (int, float)) and not isinstance(timestep, bool):
            value = float(timestep)
        else:
            raise TypeError(f"`timestep` must be a float or a tensor, got {type(timestep).__name__}.")
        index = min(range(len(self._grid)), key=lambda i: abs(self._grid[i] - value))
        if not math.isfinite(value) or abs(self._grid[index] - value) > 1e-5 * max(self._grid[index], 1e-12):
            raise ValueError(f"`timestep` {value!r} is not in the current grid {self._grid}.")
        return index

    def _check_inputs(self, model_output: torch.Tensor, sample: torch.Tensor) -> None:
        if not isinstance(sample, torch.Tensor) or sample.dtype.is_floating_point or sample.dtype == torch.bool or sample.is_complex():
            raise TypeError(f"`sample` must be an integer token tensor, got {getattr(sample, 'dtype', type(sample).__name__)}.")
        if sample.dim() != 2:
            raise ValueError(f"`sample` must have shape (batch_size, seq_len), got {tuple(sample.shape)}.")
        if not isinstance(model_output, torch.Tensor) or not model_output.dtype.is_floating_point:
            raise TypeError(
                f"`model_output` must be a floating-point tensor of shape (batch_size, seq_len, vocab_size), got "
                f"{getattr(model_output, 'dtype', type(model_output).__name__)}."
            )
        vocab = self.config.vocab_size
        expected = (*sample.shape, vocab)
        if tuple(model_output.shape) != expected:
            raise ValueError(
                f"`model_output` must have shape {expected} (batch_size, seq_len, vocab_size={vocab}), got "
                f"{tuple(model_output.shape)}."
            )
        # one host synchronisation for both checks: ids out of range, and NaN/+inf in the output (max propagates NaN)
        bad_ids, top = torch.stack(
            [((sample < 0) | (sample >= vocab)).any().to(torch.float64), model_output.max().to(torch.float64)]
        ).tolist()
        if bad_ids:
            raise ValueError(f"`sample` token ids must lie in [0, {vocab}).")
        if math.isnan(top) or top == math.inf:
            raise ValueError("`model_output` contains NaN or +inf values.")

    def _transition(
        self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.LongTensor
    ) -> tuple[int, Transition, torch.Tensor]:
        """Grid index, step law and the model's clean-token posterior ``p(x0 | x_t)`` (float64, `(B, L, V)`)."""
        self._check_inputs(model_output, sample)
        index = self.index_for_timestep(timestep)
        bounds = step_boundaries(self._grid)
        t, s = bounds[index], bounds[index + 1]
        alpha_t = float(self.noise_schedule.alpha(t))
        if self.config.prediction_type == "x0":
            x0_probs = self.process.x0_probs_from_logits(model_output, sample)
            score = self.process.score_from_x0(x0_probs, sample, alpha_t)
        else:
            score = self.process.score_from_log_score(model_output, sample)
            x0_probs = self.process.x0_probs_from_score(score, sample, alpha_t)
        if s == 0.0:  # final denoising step: exact law of the clean tokens given the score
            transition = self.process.tweedie(score, sample, alpha_t, 1.0)
        elif self.config.sampler == "euler":
            transition = self.process.euler(score, sample, float(self.noise_schedule.rate(t)), t - s)
        else:
            transition = self.process.tweedie(score, sample, alpha_t, float(self.noise_schedule.alpha(s)))
        if not bool(torch.isfinite(transition.jump_prob).all()):
            raise ValueError(
                "`model_output` gives no valid distribution at some position (e.g. every allowed logit is -inf)."
            )
        return index, transition, x0_probs

    def step_transition(
        self, model_output: torch.Tensor, timestep: float | torch.Tensor, sample: torch.LongTensor
    ) -> Transition:
        """
        The exact per-position law of the step from ``timestep`` without sampling it (used by `step`, by tests and
        by the exact evaluator in `jys_schedulers.testing`).
        """
        return self._transition(model_output, timestep, sample)[1]

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.LongTensor,
        *,
        generator: GeneratorLike = None,
        return_dict: bool = True,
    ) -> JYSDiscreteSchedulerOutput | tuple:
        """
        One parallel decoding step from `timestep` to the next time of the grid (to clean data after the last one).

        Args:
            model_output (`torch.Tensor` of shape `(batch_size, seq_len, vocab_size)`):
                Denoiser output at `timestep`: clean-token logits (`prediction_type="x0"`) or log-scores (`"score"`),
                any float dtype and device. `-inf` entries are allowed (excluded tokens); NaN/+inf are rejected.
            timestep (`float` or `torch.Tensor`):
                The current time, one of `self.timesteps` (a `(batch_size,)` tensor of equal times is accepted).
            sample (`torch.LongTensor` of shape `(batch_size, seq_len)`):
                Current tokens `x_t`.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Randomness; a list gives one generator per batch row.
            return_dict (`bool`, defaults to `True`):
                Return a [`JYSDiscreteSchedulerOutput`] instead of a tuple.
        """
        _, transition, x0_probs = self._transition(model_output, timestep, sample)
        prev_sample = sample_transition(transition, sample, generator, self.config.sampling_precision)
        pred_original = x0_probs.argmax(-1).to(sample.dtype)
        if not return_dict:
            return prev_sample, pred_original, transition.num_clipped
        return JYSDiscreteSchedulerOutput(
            prev_sample=prev_sample, pred_original_sample=pred_original, num_clipped=transition.num_clipped
        )

    # ---------------------------------------------------------------------------------------- noise & prior
    def sample_prior(
        self,
        batch_size: int,
        seq_len: int,
        *,
        generator: GeneratorLike = None,
        device: str | torch.device | None = None,
    ) -> torch.LongTensor:
        """Starting tokens at `t = 1`: all masks (absorbing) or uniformly random tokens (uniform)."""
        for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if self.config.transition == "absorbing":
            return torch.full((batch_size, seq_len), self.config.mask_token_id, dtype=torch.long, device=device)
        u = uniform_noise((batch_size, seq_len), generator, device)
        return (u * self.config.vocab_size).long().clamp_(max=self.config.vocab_size - 1)

    def add_noise(
        self,
        original_samples: torch.LongTensor,
        noise: torch.Tensor | None,
        timesteps: float | torch.Tensor,
        *,
        generator: GeneratorLike = None,
    ) -> torch.LongTensor:
        """
        Forward-corrupt clean tokens to times `timesteps` (scalar or `(batch_size,)`).

        `noise` holds the coupling uniforms in `[0, 1)`: shape `(batch_size, seq_len)` for absorbing (a position is
        masked where `noise < 1 - α(t)`, so equal noise gives nested masks across times) and
        `(batch_size, seq_len, 2)` for uniform (resample decision, new value). `None` draws it from `generator`.
        """
        if not isinstance(original_samples, torch.Tensor) or original_samples.dtype.is_floating_point:
            raise TypeError("`original_samples` must be an integer token tensor.")
        times = torch.as_tensor(timesteps, dtype=torch.float64, device=original_samples.device)
        if not torch.isfinite(times).all() or (times < 0).any() or (times > 1).any():
            raise ValueError(f"`timesteps` must lie in [0, 1], got {timesteps!r}.")
        if times.dim() > 1 or (times.dim() == 1 and times.shape[0] != original_samples.shape[0]):
            raise ValueError(
                f"`timesteps` must be a scalar or have shape ({original_samples.shape[0]},), got {tuple(times.shape)}."
            )
        shape = tuple(original_samples.shape) + ((2,) if self.process.noise_channels == 2 else ())
        if noise is None:
            noise = uniform_noise(shape, generator, original_samples.device)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"`noise` must have shape {shape}, got {tuple(noise.shape)}.")
        return self.process.add_noise(original_samples, self.noise_schedule.alpha(times), noise)


__all__ = ["JYSDiscreteScheduler", "JYSDiscreteSchedulerOutput"]
