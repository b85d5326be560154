"""Smoke test: scripts/benchmark_pipeline.py runs standalone at tiny sizes and writes its report."""

from __future__ import annotations

import torch
from _scripts import load_script


def test_benchmark_pipeline_quick(tmp_path):
    module = load_script("benchmark_pipeline")
    output = tmp_path / "bench.md"
    previous = torch.get_num_threads()
    try:
        assert module.main(["--quick", "--threads", "1", "--output", str(output)]) == 0
    finally:
        torch.set_num_threads(previous)
    report = output.read_text()
    for heading in ("## 1. Overhead", "## 2. T-Stitch speed-up", "## 3. T-Stitch quality"):
        assert heading in report
    assert "identical samples under the same seed: yes" in report
    assert "Skipped: pass `--small-model DIR --large-model DIR`" in report
    assert report.count("| r = ") == 4 and "| sandwich 0.2/0.2 |" in report
