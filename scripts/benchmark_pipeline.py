#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Benchmark `DiscreteDiffusionPipeline` and write the tables to docs/benchmarks_pipeline.md.

Parts (each timing is the median of `--repeats` runs, the compared variants interleaved run by run so that a busy
machine slows them alike; the minimum is reported too):

1. Overhead, built-in model at a countdown-like size (V=33, L=256, B=64, default `DiscreteDiffusionTransformer`):
   scheduler step time vs model forward time over a whole sampling run (target: step <= 5% of a forward), the pipeline
   vs a bare loop of model calls + scheduler steps (target: within 10%), tokens/s.
2. T-Stitch speed: a small (default config) and a large model (hidden 256, 8 layers, 8 heads); cost ratio
   `c = t_small / t_large` measured; speed-up at draft ratios r = 0, .2, .4, .6 and a small-large-small sandwich,
   against the ideal `1 / (f·c + 1 - f)` with `f` the draft share of the steps (target: within 10%).
3. T-Stitch quality (optional): countdown error rate of the same runs with two models trained on countdown
   (`--small-model DIR --large-model DIR`: folders of `DiscreteDiffusionTransformer.save_pretrained` or pipeline
   folders); skipped with a message when they are not given.

Usage:
    python scripts/benchmark_pipeline.py                       # parts 1 and 2 at the sizes above, CPU
    python scripts/benchmark_pipeline.py --small-model runs/countdown-small --large-model runs/countdown-large
    python scripts/benchmark_pipeline.py --quick --output /tmp/bench.md   # tiny sizes (smoke test)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import DiscreteDiffusionTransformer
from jys_schedulers.pipelines import DiscreteDiffusionPipeline, sandwich_stitch_schedule


REPO_ROOT = Path(__file__).resolve().parents[1]
LARGE_CONFIG = {"hidden_size": 256, "num_layers": 8, "num_heads": 8}
STITCH_RATIOS = (0.0, 0.2, 0.4, 0.6)
SANDWICH = (0.2, 0.2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--vocab-size", type=int, default=33, help="vocabulary incl. mask (default: 33, countdown)")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64, help="batch of the overhead part")
    parser.add_argument("--steps", type=int, default=16, help="sampling steps of the overhead part")
    parser.add_argument("--stitch-batch-size", type=int, default=16, help="batch of the stitching part")
    parser.add_argument("--stitch-steps", type=int, default=10, help="steps of the stitching part")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant (median reported)")
    parser.add_argument("--small-model", type=Path, default=None, help="trained small model folder (quality part)")
    parser.add_argument("--large-model", type=Path, default=None, help="trained large model folder (quality part)")
    parser.add_argument("--scheduler", type=Path, default=None, help="scheduler folder for the quality part")
    parser.add_argument("--quality-samples", type=int, default=256)
    parser.add_argument("--quality-steps", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks_pipeline.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.seq_len, args.batch_size, args.steps, args.stitch_batch_size, args.repeats = 32, 4, 4, 2, 2
        args.stitch_steps, args.quality_samples, args.quality_steps = 5, 8, 4
    return args


# ---------------------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Wall times (s) of each function, one warm-up call each, then `repeats` rounds calling each once in turn."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# -------------------------------------------------------------------------------------------------------- builders
def _model(vocab_size: int, seq_len: int, device: torch.device, seed: int = 0, **config) -> DiscreteDiffusionTransformer:
    torch.manual_seed(seed)
    model = DiscreteDiffusionTransformer(vocab_size=vocab_size, max_seq_len=seq_len, **config).to(device).eval()
    with torch.no_grad():  # random weights everywhere (the zero-initialised head would predict uniform logits)
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def _pipe(transformer, scheduler, draft=None) -> DiscreteDiffusionPipeline:
    pipe = DiscreteDiffusionPipeline(transformer=transformer, scheduler=scheduler, draft_transformer=draft)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generator(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


# ------------------------------------------------------------------------------------------------------- 1 overhead
def bench_overhead(args: argparse.Namespace, device: torch.device) -> tuple[str, dict[str, float]]:
    vocab, length, batch, steps = args.vocab_size, args.seq_len, args.batch_size, args.steps
    model = _model(vocab, length, device)
    scheduler = JYSDiscreteScheduler(vocab_size=vocab, mask_token_id=vocab - 1)
    pipe = _pipe(model, scheduler)
    split = {"model": 0.0, "step": 0.0}

    @torch.inference_mode()
    def bare_loop(record: bool = False) -> torch.Tensor:
        generator = _generator(device)
        scheduler.set_timesteps(steps, device=device, schedule="uniform")
        sample = scheduler.sample_prior(batch, length, generator=generator, device=device)
        for t in scheduler.timesteps:
            start = time.perf_counter()
            logits = model(sample, timesteps=t.expand(batch)).logits
            if record:
                _sync(device)
                middle = time.perf_counter()
            sample = scheduler.step(logits, t, sample, generator=generator).prev_sample
            if record:
                _sync(device)
                split["model"] += middle - start
                split["step"] += time.perf_counter() - middle
        return sample

    def pipeline_run() -> torch.Tensor:
        return pipe(
            batch_size=batch, seq_len=length, num_inference_steps=steps, schedule="uniform",
            generator=_generator(device),
        ).sequences

    identical = torch.equal(bare_loop(), pipeline_run())
    times = interleaved({"bare": bare_loop, "pipeline": pipeline_run}, args.repeats, device)
    for _ in range(args.repeats):
        bare_loop(record=True)
    step_share = split["step"] / split["model"]
    bare, piped = _med(times["bare"]), _med(times["pipeline"])
    results = {
        "forward_ms": split["model"] / (args.repeats * steps) * 1e3,
        "step_ms": split["step"] / (args.repeats * steps) * 1e3,
        "step_share": step_share,
        "pipeline_ratio": piped / bare,
        "pipeline_ratio_min": min(times["pipeline"]) / min(times["bare"]),
        "tokens_per_s": batch * length / piped,
    }
    ok = lambda good: "yes" if good else "**no**"
    text = "\n\n".join(
        [
            f"Built-in `DiscreteDiffusionTransformer` (default config, {model.num_parameters():,} parameters), "
            f"V={vocab}, L={length}, B={batch}, {steps} steps (uniform grid), Tweedie sampler, float64 sampling. "
            f"Pipeline and bare loop give identical samples under the same seed: {ok(identical)}.",
            _table(
                ["measure", "value", "target", "met"],
                [
                    ["model forward (mean over the run)", f"{results['forward_ms']:.1f} ms", "", ""],
                    ["scheduler step (mean over the run)", f"{results['step_ms']:.1f} ms", "", ""],
                    ["step / forward", f"{step_share:.1%}", "<= 5%", ok(step_share <= 0.05)],
                    ["bare loop (median / min)", f"{_ms(bare)} / {_ms(min(times['bare']))} ms", "", ""],
                    ["pipeline (median / min)", f"{_ms(piped)} / {_ms(min(times['pipeline']))} ms", "", ""],
                    [
                        "pipeline / bare loop (median; min)",
                        f"{results['pipeline_ratio']:.3f}; {results['pipeline_ratio_min']:.3f}",
                        "<= 1.10",
                        ok(results["pipeline_ratio"] <= 1.10),
                    ],
                    ["tokens/s (pipeline, B·L / run time)", f"{results['tokens_per_s']:,.0f}", "", ""],
                ],
            ),
        ]
    )
    return text, results


# ------------------------------------------------------------------------------------------------------ 2 stitching
def stitch_specs(steps: int) -> list[tuple[str, dict]]:
    specs = [(f"r = {r:g}", {"stitch_ratio": r}) for r in STITCH_RATIOS]
    head, tail = SANDWICH
    specs.append((f"sandwich {head:g}/{tail:g}", {"stitch_schedule": sandwich_stitch_schedule(steps, head, tail)}))
    return specs


def bench_stitching(args: argparse.Namespace, device: torch.device) -> tuple[str, dict[str, float]]:
    vocab, length, batch, steps = args.vocab_size, args.seq_len, args.stitch_batch_size, args.stitch_steps
    small = _model(vocab, length, device, seed=1)
    large = _model(vocab, length, device, seed=2, **LARGE_CONFIG)
    scheduler = JYSDiscreteScheduler(vocab_size=vocab, mask_token_id=vocab - 1)
    pipe = _pipe(large, scheduler, draft=small)

    ids = torch.full((batch, length), vocab - 1, device=device)
    t = torch.full((batch,), 0.5, device=device)
    forward = lambda model: (lambda: model(ids, timesteps=t))
    with torch.inference_mode():
        forwards = interleaved({"small": forward(small), "large": forward(large)}, 2 * args.repeats, device)
    cost_ratio = _med(forwards["small"]) / _med(forwards["large"])

    specs = stitch_specs(steps)
    runs = {
        name: (lambda kw=kw: pipe(batch_size=batch, seq_len=length, num_inference_steps=steps, schedule="uniform",
                                  generator=_generator(device), **kw))
        for name, kw in specs
    }
    times = interleaved(runs, args.repeats, device)
    baseline = _med(times[specs[0][0]])
    rows, worst = [], 0.0
    for name, kw in specs:
        plan = kw.get("stitch_schedule") or ["draft"] * int(kw["stitch_ratio"] * steps + 1e-9)
        share = plan.count("draft") / steps
        ideal = 1.0 / (share * cost_ratio + 1.0 - share)
        measured = baseline / _med(times[name])
        worst = max(worst, abs(measured / ideal - 1.0))
        rows.append([name, f"{share:.2f}", _ms(_med(times[name])), f"{measured:.2f}x", f"{ideal:.2f}x",
                     f"{measured / ideal - 1.0:+.1%}"])
    text = "\n\n".join(
        [
            f"Small (draft) = default config ({small.num_parameters():,} parameters); large = hidden 256, 8 layers, "
            f"8 heads ({large.num_parameters():,} parameters). V={vocab}, L={length}, B={batch}, {steps} steps. "
            f"Forward cost ratio c = t_small / t_large = {_ms(_med(forwards['small']))} / "
            f"{_ms(_med(forwards['large']))} ms = **{cost_ratio:.3f}**. `f` = draft share of the steps; ideal "
            "speed-up `1 / (f·c + 1 - f)` ignores the (model-independent) scheduler step.",
            _table(["stitching", "f", "run (ms, median)", "speed-up", "ideal", "vs ideal"], rows),
            f"Largest deviation from ideal: {worst:.1%} (target: within 10%: {'yes' if worst <= 0.10 else '**no**'}).",
        ]
    )
    return text, {"cost_ratio": cost_ratio, "worst_deviation": worst}


# -------------------------------------------------------------------------------------------------------- 3 quality
def _load_transformer(path: Path) -> DiscreteDiffusionTransformer:
    if (path / "model_index.json").is_file():
        return DiscreteDiffusionTransformer.from_pretrained(path, subfolder="transformer")
    return DiscreteDiffusionTransformer.from_pretrained(path)


def _quality_scheduler(args: argparse.Namespace, vocab_size: int) -> tuple[JYSDiscreteScheduler, str]:
    if args.scheduler is not None:
        return JYSDiscreteScheduler.from_pretrained(args.scheduler), str(args.scheduler)
    if (args.large_model / "model_index.json").is_file():
        return JYSDiscreteScheduler.from_pretrained(args.large_model, subfolder="scheduler"), f"{args.large_model}/scheduler"
    default = JYSDiscreteScheduler(vocab_size=vocab_size, mask_token_id=vocab_size - 1)
    return default, f"default absorbing scheduler, mask id {vocab_size - 1} (countdown convention)"


def bench_quality(args: argparse.Namespace, device: torch.device) -> str:
    if args.small_model is None or args.large_model is None:
        return (
            "Skipped: pass `--small-model DIR --large-model DIR`, two `DiscreteDiffusionTransformer`s trained on the "
            "countdown task (scripts/train.py), to measure the countdown error rate of each stitching."
        )
    try:
        from jys_schedulers.tasks.countdown import countdown_error_rate
    except ImportError as error:
        return f"Skipped: the countdown task is not available ({error})."
    small, large = _load_transformer(args.small_model).to(device), _load_transformer(args.large_model).to(device)
    scheduler, scheduler_source = _quality_scheduler(args, large.config.vocab_size)
    pipe = _pipe(large.eval(), scheduler, draft=small.eval())
    length = min(small.config.max_seq_len, large.config.max_seq_len)
    rows = []
    for name, kw in stitch_specs(args.quality_steps):
        samples = pipe(
            batch_size=args.quality_samples, seq_len=length, num_inference_steps=args.quality_steps,
            generator=_generator(device), **kw,
        ).sequences.cpu()
        errors = countdown_error_rate(samples, num_digits=large.config.vocab_size - 1)
        stderr = errors.std().item() / max(1, len(errors) - 1) ** 0.5
        rows.append([name, f"{errors.mean().item():.4f} ± {stderr:.4f}"])
    return "\n\n".join(
        [
            f"Models: small `{args.small_model}`, large `{args.large_model}`; scheduler: {scheduler_source}; "
            f"{args.quality_samples} samples of length {length}, {args.quality_steps} steps, seed 0.",
            _table(["stitching", "countdown error rate (mean ± s.e.)"], rows),
        ]
    )


# ------------------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overhead, _ = bench_overhead(args, device)
    print(overhead, flush=True)
    stitching, _ = bench_stitching(args, device)
    print(stitching, flush=True)
    quality = bench_quality(args, device)
    print(quality, flush=True)

    machine = f"{platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
    machine += f"{torch.get_num_threads()} intra-op threads, device `{device}`"
    if device.type == "cuda":
        machine += f" ({torch.cuda.get_device_name(device)})"
    report = "\n\n".join(
        [
            "# Pipeline benchmarks",
            f"Written by `scripts/benchmark_pipeline.py` on {datetime.date.today().isoformat()}: {machine}. "
            f"Command: `python scripts/benchmark_pipeline.py {' '.join(argv if argv is not None else sys.argv[1:])}`. "
            f"Median of {args.repeats} interleaved runs per variant.",
            "## 1. Overhead: scheduler step and pipeline vs bare loop",
            overhead,
            "## 2. T-Stitch speed-up",
            stitching,
            "## 3. T-Stitch quality (countdown)",
            quality,
        ]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
