# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Models shipped inside the package, loadable offline after any install (editable or not).

Each bundled model is a `DiscreteDiffusionPipeline` folder under this package (`model_index.json`, `transformer/`,
`scheduler/` carrying its calibrated JYS grids), with a `README.md` that records how it was trained and calibrated.

```python
from jys_schedulers.assets import load_bundled_pipeline

pipe = load_bundled_pipeline("countdown")
samples = pipe(batch_size=4, num_inference_steps=16).sequences  # the stored JYS grid for 16 steps
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


#: Names of the bundled pipelines (sub-folders of this package).
BUNDLED_MODELS = ("countdown",)

__all__ = ["BUNDLED_MODELS", "assets_path", "load_bundled_pipeline"]


def assets_path(name: str = "countdown") -> Path:
    """The folder of the bundled pipeline `name` (pass it to `DiscreteDiffusionPipeline.from_pretrained`)."""
    if name not in BUNDLED_MODELS:
        raise ValueError(f"`name` must be one of {list(BUNDLED_MODELS)}, got {name!r}.")
    path = Path(__file__).resolve().parent / name
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"The bundled model {name!r} is missing from {path}; the package was installed without its data files "
            "(reinstall jys-schedulers)."
        )
    return path


def load_bundled_pipeline(name: str = "countdown", **kwargs: Any):
    """Load the bundled pipeline `name` from the package, without network access.

    Args:
        name (`str`, defaults to `"countdown"`): one of `BUNDLED_MODELS`.
        **kwargs: passed to `DiscreteDiffusionPipeline.from_pretrained` (e.g. `torch_dtype`).

    Returns:
        `DiscreteDiffusionPipeline` with the bundled model and its calibrated `JYSDiscreteScheduler`.
    """
    from ..pipelines import DiscreteDiffusionPipeline

    return DiscreteDiffusionPipeline.from_pretrained(assets_path(name), local_files_only=True, **kwargs)
