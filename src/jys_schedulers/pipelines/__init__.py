"""Pipelines of jys-schedulers (diffusers `DiffusionPipeline` subclasses).

They sit on top of the library (scheduler, adapters); nothing in the library imports them.
"""

from .discrete_diffusion import (
    DiscreteDiffusionPipeline,
    DiscreteDiffusionPipelineOutput,
    resolve_stitch_schedule,
    sandwich_stitch_schedule,
)


__all__ = [
    "DiscreteDiffusionPipeline",
    "DiscreteDiffusionPipelineOutput",
    "resolve_stitch_schedule",
    "sandwich_stitch_schedule",
]
