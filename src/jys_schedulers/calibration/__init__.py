# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Calibration of Jump-Your-Steps sampling grids from model calls on clean data.

```python
from jys_schedulers.calibration import calibrate

result = calibrate(denoiser, scheduler, data, nfe=[4, 8, 16])  # global DP on the posterior-KL cost
scheduler = result.to_scheduler()  # JYSDiscreteScheduler with `jys_schedules` and `calibration_info`
```

Modules: ``objectives`` (the integrands and their pairwise sums), ``grid`` (candidates, quadrature, DP),
``line_search`` (golden section), ``search`` (DP / hierarchical / greedy runners), ``data`` (coupled noise,
sharding, counted model calls), ``state`` (resumable JSON state), ``api`` (:func:`calibrate`).
"""

from .api import CalibrationResult, calibrate
from .grid import candidate_times, default_num_candidates, interval_costs, optimal_grids
from .line_search import LineSearchResult, golden_section_max
from .objectives import OBJECTIVES, frozen_posterior_divergence, paper_divergence
from .search import SEARCHES


__all__ = [
    "calibrate",
    "CalibrationResult",
    "OBJECTIVES",
    "SEARCHES",
    "candidate_times",
    "default_num_candidates",
    "interval_costs",
    "optimal_grids",
    "golden_section_max",
    "LineSearchResult",
    "frozen_posterior_divergence",
    "paper_divergence",
]
