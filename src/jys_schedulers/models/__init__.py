"""The built-in small denoiser (a diffusers `ModelMixin` + `ConfigMixin` model)."""

from .transformer_discrete import DiscreteDiffusionTransformer, DiscreteTransformerOutput


__all__ = ["DiscreteDiffusionTransformer", "DiscreteTransformerOutput"]
