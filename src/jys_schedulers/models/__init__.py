"""The built-in small denoiser (a diffusers `ModelMixin` + `ConfigMixin` model)."""

from .transformer_discrete import DiscreteDiffusionTransformer, DiscreteTransformerOutput


__all__ = ["DiscreteDiffusionTransformer", "DiscreteTransformerOutput"]

# Denoiser adapters: any model -> `denoiser(input_ids, t)` for a scheduler (used by pipelines and calibration).
from .adapters import (  # noqa: E402
    ADAPTER_KINDS,
    TIME_INPUTS,
    CallableDenoiser,
    Denoiser,
    DenoiserAdapter,
    DiscreteTransformerDenoiser,
    MaskedLMDenoiser,
    StitchedDenoiser,
    TimeConditionedDenoiser,
    check_stitch_compatible,
    make_denoiser,
)


__all__ += [
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
