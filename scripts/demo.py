#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""The main job: calibrate Jump Your Steps grids for the bundled countdown model and compare them with the uniform and
cosine grids.

1. loads the bundled model (`jys_schedulers.assets.load_bundled_pipeline("countdown")`, offline);
2. calibrates JYS grids for every `--steps` count at once with `jys_schedulers.calibration.calibrate` (global DP on
   the posterior-KL cost) from fresh countdown sequences;
3. samples the model with the uniform, cosine and JYS grids at every step count, with common random numbers (the same
   generator seed for every grid at a step count);
4. prints the table of countdown error rates (the intended metric: share of tokens whose non-zero predecessor is not
   exactly one more; lower is better) and, labelled, the reference code's quirky metric;
5. writes `error_vs_steps.png` (log scale), `results.json` and
6. the calibrated scheduler folder `scheduler/` (`JYSDiscreteScheduler.from_pretrained(<output-dir>/scheduler)`),
all under `--output-dir`.

Example:
    python scripts/demo.py                                   # about 1.5-2 minutes on a 2-core CPU machine
    python scripts/demo.py --num-samples 128 --calibration-samples 128 --output-dir outputs/demo-large
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import non_negative_int, positive_int  # noqa: E402

from jys_schedulers.io_utils import atomic_save_folder, atomic_write_bytes  # noqa: E402


GRIDS = ("uniform", "cosine", "jys")
GRID_LABELS = {"uniform": "uniform", "cosine": "cosine", "jys": "JYS (calibrated)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the arguments; errors name the flag and exit with status 2."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[4, 8, 16, 32, 64],
                        help="step counts (= model calls) to calibrate and compare")
    parser.add_argument("--num-samples", type=positive_int, default=32, help="sequences sampled per grid and count")
    parser.add_argument("--calibration-samples", type=positive_int, default=32,
                        help="clean countdown sequences for the calibration")
    parser.add_argument("--num-candidates", type=positive_int, default=None,
                        help="candidate times of the calibration DP (>= the largest step count; default: "
                             "max(128, 4 x the largest step count))")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="calibration batch size")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch intra-op threads; 1 is robust on a shared machine (2 threads ran 3-5x slower than 1 "
                             "on a busy 2-core machine), 2 is faster on an idle one")
    parser.add_argument("--model", type=Path, default=None,
                        help="a countdown pipeline folder instead of the bundled model (e.g. from scripts/train.py)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.steps = sorted(set(args.steps))
    if args.num_candidates is not None and args.num_candidates < max(args.steps):
        parser.error(f"--num-candidates ({args.num_candidates}) must be >= the largest --steps ({max(args.steps)})")
    if args.model is not None and not (args.model / "model_index.json").is_file():
        parser.error(f"--model {args.model} is not a pipeline folder (no model_index.json)")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output-dir {args.output_dir} exists and is not a folder")
    return args


# --------------------------------------------------------------------------------------------------------- pieces
def load_pipeline(model: Path | None):
    """The bundled countdown pipeline (or `model`) in float32, with its own progress bar off."""
    from jys_schedulers.assets import load_bundled_pipeline
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline

    if model is None:
        pipe = load_bundled_pipeline("countdown")
    else:
        pipe = DiscreteDiffusionPipeline.from_pretrained(model, local_files_only=True)
    pipe.transformer.float()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def countdown_task(pipe):
    """The countdown task matching the model's sequence length and vocabulary (absorbing: digits = mask id)."""
    from jys_schedulers.tasks import CountdownTask

    config = pipe.scheduler.config
    if config.transition != "absorbing":
        raise ValueError(f"the demo expects an absorbing countdown model, got transition={config.transition!r}")
    return CountdownTask(seq_len=pipe.transformer.config.max_seq_len, num_digits=config.mask_token_id)


def sample_all(pipe, schedulers: dict, args: argparse.Namespace, seq_len: int, progress) -> dict:
    """`{grid: {steps: samples}}`: every grid at every step count, the generator seeded by `(seed, steps)` alone so
    all grids share their random numbers."""
    import torch

    def tick(pipe, step_index, timestep, callback_kwargs):
        progress.update(1)
        return {}

    samples: dict[str, dict[int, torch.Tensor]] = {}
    for grid in GRIDS:
        pipe.scheduler = schedulers[grid]
        samples[grid] = {}
        for steps in args.steps:
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + steps)
            out = pipe(batch_size=args.num_samples, seq_len=seq_len, num_inference_steps=steps,
                       schedule=None if grid == "jys" else grid, generator=generator, callback_on_step_end=tick)
            samples[grid][steps] = out.sequences.cpu()
    return samples


def mean_and_stderr(per_sample) -> tuple[float, float]:
    """Mean of per-sample error rates and its standard error (0 for a single sample)."""
    n = per_sample.numel()
    stderr = float(per_sample.std(unbiased=True)) / n**0.5 if n > 1 else 0.0
    return float(per_sample.mean()), stderr


def format_table(values: dict, steps: list[int], title: str) -> str:
    """A plain-text table: one row per step count, one column per grid, `mean ± standard error` in percent."""
    header = f"{'steps':>5} | " + " | ".join(f"{GRID_LABELS[g]:>16}" for g in GRIDS)
    lines = [title, header, "-" * len(header)]
    for n in steps:
        cells = (f"{100 * values[g][n][0]:6.2f}% ± {100 * values[g][n][1]:4.2f}" for g in GRIDS)
        lines.append(f"{n:>5} | " + " | ".join(f"{cell:>16}" for cell in cells))
    return "\n".join(lines)


def save_plot(values: dict, steps: list[int], path: Path, title: str) -> None:
    """Error rate vs steps, log-log, one line per grid."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for grid, marker in zip(GRIDS, ("o", "s", "D")):
        ys = [max(values[grid][n][0], 1e-5) for n in steps]
        errors = [values[grid][n][1] for n in steps]
        ax.errorbar(steps, ys, yerr=errors, marker=marker, capsize=3, label=GRID_LABELS[grid])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(steps, [str(n) for n in steps])
    ax.set_xlabel("sampling steps (model calls)")
    ax.set_ylabel("countdown error rate")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


# ----------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    import torch
    from tqdm.auto import tqdm

    from jys_schedulers.calibration import calibrate

    torch.set_num_threads(args.threads)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    pipe = load_pipeline(args.model)
    task = countdown_task(pipe)
    model_name = str(args.model) if args.model else "bundled countdown model (jys_schedulers.assets)"
    num_params = sum(p.numel() for p in pipe.transformer.parameters())
    print(f"[1/6] loaded the {model_name}: {num_params:,} parameters, L={task.seq_len}, "
          f"{task.num_digits} digits + mask", flush=True)
    timings["load_s"] = time.perf_counter() - started

    clock = time.perf_counter()
    calibration_data = task.sample(args.calibration_samples, seed=args.seed + 1)
    result = calibrate(pipe.denoiser(), pipe.scheduler, calibration_data, args.steps,
                       num_candidates=args.num_candidates, batch_size=args.batch_size, seed=args.seed,
                       progress=not args.no_progress)
    calibrated = result.to_scheduler(base_scheduler=pipe.scheduler)
    timings["calibration_s"] = time.perf_counter() - clock
    print(f"[2/6] calibrated JYS grids for {args.steps} steps from {args.calibration_samples} sequences "
          f"({result.report['sequence_forwards']:,} sequence-forwards, {timings['calibration_s']:.0f} s); "
          f"{args.steps[0]} steps: {[round(t, 3) for t in result.schedules[str(args.steps[0])]]}", flush=True)

    clock = time.perf_counter()
    schedulers = {"uniform": pipe.scheduler, "cosine": pipe.scheduler, "jys": calibrated}
    total_calls = len(GRIDS) * sum(args.steps)
    with tqdm(total=total_calls, desc="sampling (model calls)", disable=args.no_progress) as progress:
        samples = sample_all(pipe, schedulers, args, task.seq_len, progress)
    timings["sampling_s"] = time.perf_counter() - clock
    print(f"[3/6] sampled {args.num_samples} sequences per grid and step count ({timings['sampling_s']:.0f} s)",
          flush=True)

    intended = {g: {n: mean_and_stderr(task.error_rate(samples[g][n])) for n in args.steps} for g in GRIDS}
    quirk = {g: {n: mean_and_stderr(task.error_rate_reference(samples[g][n])) for n in args.steps} for g in GRIDS}
    print(f"[4/6] countdown error rates, mean ± standard error over {args.num_samples} samples (lower is better; the "
          "same random numbers for every grid):\n")
    print(format_table(intended, args.steps, "intended metric (every transition checked):"))
    print()
    print(format_table(quirk, args.steps, "reference-code metric (checks every other transition; for comparison only):"))
    print()

    plot_path = args.output_dir / "error_vs_steps.png"
    save_plot(intended, args.steps, plot_path,
              f"countdown L={task.seq_len}, {args.num_samples} samples per point")
    print(f"[5/6] plot: {plot_path}")
    scheduler_path = args.output_dir / "scheduler"
    atomic_save_folder(scheduler_path, calibrated.save_pretrained)
    print(f"[6/6] calibrated scheduler: {scheduler_path} "
          f"(JYSDiscreteScheduler.from_pretrained({str(scheduler_path)!r}))")

    timings["total_s"] = time.perf_counter() - started
    results = {
        "command": " ".join(sys.argv) if argv is None else " ".join(["scripts/demo.py", *argv]),
        "model": model_name,
        "num_parameters": num_params,
        "seq_len": task.seq_len,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "error_rate": {g: {str(n): v[0] for n, v in intended[g].items()} for g in GRIDS},
        "error_rate_stderr": {g: {str(n): v[1] for n, v in intended[g].items()} for g in GRIDS},
        "error_rate_reference_quirk": {g: {str(n): v[0] for n, v in quirk[g].items()} for g in GRIDS},
        "jys_schedules": result.schedules,
        "calibration_report": result.report,
        "torch_threads": torch.get_num_threads(),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    atomic_write_bytes(args.output_dir / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    print(f"done in {timings['total_s']:.0f} s; numbers in {args.output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
