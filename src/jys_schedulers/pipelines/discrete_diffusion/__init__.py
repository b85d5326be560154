"""`DiscreteDiffusionPipeline` and its output; the folder doubles as a diffusers custom pipeline."""

from .pipeline_discrete_diffusion import (
    DiscreteDiffusionPipeline,
    resolve_stitch_schedule,
    sandwich_stitch_schedule,
)
from .pipeline_output import DiscreteDiffusionPipelineOutput


__all__ = [
    "DiscreteDiffusionPipeline",
    "DiscreteDiffusionPipelineOutput",
    "resolve_stitch_schedule",
    "sandwich_stitch_schedule",
]
