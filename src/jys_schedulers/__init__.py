"""jys-schedulers: calibrated sampling schedules (Jump Your Steps) for discrete diffusion models.

The math lives in small modules (``noise_schedules``, ``processes``, ``sampling``, ``schedules``); the diffusers-style
``JYSDiscreteScheduler`` composes them; ``testing`` holds the exact oracle.
"""

from .noise_schedules import (
    NOISE_SCHEDULES,
    CosineSchedule,
    GeometricSchedule,
    LinearSchedule,
    LogLinearSchedule,
    NoiseSchedule,
    get_noise_schedule,
)
from .processes import AbsorbingProcess, DiscreteProcess, Transition, UniformProcess, get_process
from .sampling import sample_categorical, sample_transition, uniform_noise
from .scheduling_jys_discrete import JYSDiscreteScheduler, JYSDiscreteSchedulerOutput
from .schedules import (
    cosine_timesteps,
    heuristic_timesteps,
    timesteps_to_token_quota,
    uniform_timesteps,
    validate_timesteps,
)


__version__ = "0.1.0"

__all__ = [
    "JYSDiscreteScheduler",
    "JYSDiscreteSchedulerOutput",
    "NoiseSchedule",
    "LogLinearSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "GeometricSchedule",
    "NOISE_SCHEDULES",
    "get_noise_schedule",
    "DiscreteProcess",
    "AbsorbingProcess",
    "UniformProcess",
    "Transition",
    "get_process",
    "uniform_noise",
    "sample_categorical",
    "sample_transition",
    "uniform_timesteps",
    "cosine_timesteps",
    "heuristic_timesteps",
    "timesteps_to_token_quota",
    "validate_timesteps",
]
