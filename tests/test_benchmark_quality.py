"""scripts/benchmark_quality.py: a tiny end-to-end run of every part, the page it writes, and its argument errors."""

import json

import pytest
import torch
from _scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_quality")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """An untrained uniform-transition countdown pipeline and an absorbing char-text pipeline, L=16."""
    from jys_schedulers import JYSDiscreteScheduler
    from jys_schedulers.models import DiscreteDiffusionTransformer
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    small = dict(max_seq_len=16, hidden_size=16, num_layers=1, num_heads=2)
    DiscreteDiffusionPipeline(
        transformer=DiscreteDiffusionTransformer(vocab_size=32, **small),
        scheduler=JYSDiscreteScheduler(vocab_size=32, transition="uniform"),
    ).save_pretrained(root / "cd-uniform")
    DiscreteDiffusionPipeline(
        transformer=DiscreteDiffusionTransformer(vocab_size=98, **small),
        scheduler=JYSDiscreteScheduler(vocab_size=98, mask_token_id=97),
    ).save_pretrained(root / "text")
    return root


def test_samplers_coincide_only_where_the_kernels_agree(bench):
    from jys_schedulers import JYSDiscreteScheduler

    grids = [[1.0, 0.5, 0.1], [0.9, 0.3]]
    assert bench.samplers_coincide(JYSDiscreteScheduler(vocab_size=5, mask_token_id=4), grids)  # absorbing, log-linear
    assert not bench.samplers_coincide(JYSDiscreteScheduler(vocab_size=5, mask_token_id=4, noise_schedule="cosine"), grids)
    assert not bench.samplers_coincide(JYSDiscreteScheduler(vocab_size=4, transition="uniform"), grids)


def test_tiny_run_writes_page_plots_and_keeps_notes(bench, tiny_models, tmp_path):
    out, img, work = tmp_path / "bench.md", tmp_path / "img", tmp_path / "work"
    argv = [
        "--quick", "--oracle-steps", "2", "4", "--oracle-calibration-samples", "16", "--steps", "4",
        "--extra-uniform-steps", "8", "--samples-per-seed", "4", "--reference-samples-per-seed", "4",
        "--calibration-samples", "8", "--paper-calibration-samples", "4", "--num-candidates", "8",
        "--countdown-uniform-steps", "2", "--text-steps", "2", "--other-samples-per-seed", "4", "--other-calibration-samples", "8",
        "--other-paper-calibration-samples", "4", "--judge-steps", "5", "--sample-batch-size", "4",
        "--countdown-uniform-model", str(tiny_models / "cd-uniform"), "--text-model", str(tiny_models / "text"),
        "--judge-dir", str(tmp_path / "judge"), "--output", str(out), "--img-dir", str(img), "--work-dir", str(work),
    ]
    assert bench.main(argv) == 0
    text = out.read_text()
    assert "## Targets" in text and "| target | measured | met |" in text
    for page in ("benchmarks_calibration.md", "benchmarks_calibration_countdown.md", "benchmarks_pipeline.md"):
        assert f"]({page})" in text
    for title in ("## 1. Exact oracle", "## 2. Countdown, bundled absorbing model", "## 3. Countdown, uniform-transition",
                  "## 4. Text"):
        assert title in text
    assert 'sampling_precision="reference"' in text and "Euler = Tweedie" in text
    assert "at least as good as the uniform grid at 2N" in text
    for name in ("quality_oracle", "quality_countdown", "quality_countdown_uniform", "quality_text"):
        assert (img / f"{name}.png").stat().st_size > 1000
    results = json.loads((work / "results.json").read_text())["results"]
    cells = results["countdown"]["cells"]
    # common random numbers: the extra uniform step count is sampled once; every cell has one value per seed
    assert {(c["method"], c["n"]) for c in cells if c["n"] == 8} == {("uniform", 8)}
    assert all(len(c["metrics"]["error_rate"]) == 2 for c in cells)
    assert results["countdown"]["samplers_coincide"] and not results["countdown-uniform"]["samplers_coincide"]
    assert {"dp", "paper"} <= set(results["countdown"]["calibration"])

    # a hand-written note survives a re-render from the saved numbers
    out.write_text(text.replace("_(no hand-written notes for this run)_", "Hand-written reading."))
    assert bench.main(["--render-only", "--output", str(out), "--img-dir", str(img), "--work-dir", str(work)]) == 0
    assert "Hand-written reading." in out.read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num-candidates", "32"], "--num-candidates (32) must be >= the largest step count (64)"),
        (["--seeds", "0"], "must be a positive integer"),
        (["--paper-calibration-samples", "512"], "--paper-calibration-samples (512) must be <="),
        (["--parts", "text", "--text-model", "/nonexistent"], "--text-model /nonexistent is not a pipeline folder"),
        (["--parts", "bogus"], "invalid choice"),
    ],
)
def test_bad_arguments_name_the_flag(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as err:
        bench.parse_args(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err
