# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Output of [`DiscreteDiffusionPipeline`]."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput


@dataclass
class DiscreteDiffusionPipelineOutput(BaseOutput):
    """
    Output of [`DiscreteDiffusionPipeline`].

    Args:
        sequences (`torch.LongTensor` of shape `(batch_size, seq_len)`):
            The generated token ids, fixed (prefix / infill) positions included.
        texts (`list[str]`, *optional*):
            The decoded sequences when `output_type="text"`, else `None`.
    """

    sequences: torch.LongTensor
    texts: list[str] | None = None


__all__ = ["DiscreteDiffusionPipelineOutput"]
