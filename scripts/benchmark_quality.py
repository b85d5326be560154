#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Sample quality against the number of steps: the uniform and cosine grids, our default calibration (posterior-KL
objective + global DP) and the paper's objective with its hierarchical search, for the Euler and Tweedie samplers.

Parts (`--parts`, default: all four):

- `oracle`: exact-oracle problems (absorbing and uniform processes, strongly dependent distributions, log-linear and
  cosine noise schedules). Quality = exact KL(data ‖ sampler) from `jys_schedulers.testing.exact_kl`: no learning
  error and no sampling noise, so one number per cell. Sampling precision does not enter the exact law.
- `countdown`: the bundled absorbing countdown model (`jys_schedulers.assets`, L=256). Quality = countdown error rate
  (intended metric; the reference code's quirky metric in its own table), `--seeds` sampling seeds x
  `--samples-per-seed` sequences, mean ± sd over seeds; float64 and `reference` sampling precision.
- `countdown-uniform`: a uniform-transition countdown model folder (`--countdown-uniform-model`, scripts/train.py).
- `text`: a char-level pydoc text model folder (`--text-model`). Quality = perplexity under an autoregressive judge
  trained once on the held-out split (cached in `--judge-dir`) and unigram entropy (which exposes low-temperature
  gaming: a sampler that only repeats likely characters gets a low perplexity and a low entropy).

The calibrated grids come from `jys_schedulers.calibration.calibrate` (`search="dp", objective="kl"`: the default; and
`search="hierarchical", objective="paper"`, powers of two only); the heuristic grids from `jys_schedulers.schedules`.
Common random numbers: at a step count, every grid, sampler and precision samples with the same generator seeds.
Where the Euler and Tweedie step kernels coincide on every grid used (absorbing process + log-linear schedule,
METHOD.md §5; checked numerically on random inputs, not assumed) the Euler rows reuse the Tweedie samples.

Writes `--output` (default docs/benchmarks.md, the benchmark index) with a targets table computed from the numbers,
log-log PNG plots under `--img-dir`, and the raw numbers as JSON under `--work-dir` (`--render-only` rewrites the page
and plots from it). A hand-written block between `<!-- notes:start -->` and `<!-- notes:end -->` in an existing
output page is kept.

Examples:
    OMP_NUM_THREADS=1 python scripts/benchmark_quality.py                 # everything (about 40 min, one core)
    OMP_NUM_THREADS=1 python scripts/benchmark_quality.py --quick --output /tmp/b.md --img-dir /tmp/img
    OMP_NUM_THREADS=1 python scripts/benchmark_quality.py --parts oracle countdown
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.calibration import calibrate, default_num_candidates
from jys_schedulers.schedules import cosine_timesteps, uniform_timesteps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import environment_line, fmt, load_pipeline, oracle_problem  # noqa: E402
from _cli import non_negative_int, positive_int  # noqa: E402


PARTS = ("oracle", "countdown", "countdown-uniform", "text")
METHODS = ("uniform", "cosine", "dp", "paper")
METHOD_LABELS = {
    "uniform": "uniform grid",
    "cosine": "cosine grid",
    "dp": "JYS default (posterior-KL, DP)",
    "paper": "JYS paper (paper gain, hierarchical)",
}
SAMPLERS = ("tweedie", "euler")
PRECISIONS = ("float64", "reference")
#: (distribution, transition, noise schedule, V, L). V=4 with L=5 keeps `markov` (full support) out: its exact
#: evaluation costs ~13 s per 16-step grid here; V=3 keeps it under 0.5 s.
ORACLE_PROBLEMS = [
    ("all_equal", "absorbing", "loglinear", 4, 5),
    ("markov", "absorbing", "loglinear", 3, 5),
    ("sparse", "absorbing", "loglinear", 4, 5),
    ("markov", "absorbing", "cosine", 3, 5),
    ("sparse", "absorbing", "cosine", 4, 5),
    ("all_equal", "uniform", "loglinear", 4, 5),
    ("markov", "uniform", "loglinear", 3, 5),
    ("sparse", "uniform", "loglinear", 4, 5),
    ("markov", "uniform", "cosine", 3, 5),
]
QUICK_ORACLE_PROBLEMS = [("markov", "absorbing", "loglinear", 3, 4), ("sparse", "uniform", "cosine", 3, 4)]
DEFAULT_MODELS = {"countdown-uniform": "outputs/cd256-uniform", "text": "outputs/text-char"}
ENTROPY_TOLERANCE = 0.1  # nats
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"
LINKED_PAGES = [
    ("benchmarks_calibration.md", "calibration cost and quality: our DP search against a faithful re-implementation "
     "of the reference JYS search, on exact-oracle problems (steps 2-64)"),
    ("benchmarks_calibration_countdown.md", "the same comparison on the bundled countdown model (steps 2-16)"),
    ("benchmarks_pipeline.md", "sampling overhead: scheduler step vs model forward, pipeline vs bare loop, T-Stitch "
     "speed-up (quiet CPU, H100, this machine)"),
]


# ------------------------------------------------------------------------------------------------------ arguments
QUICK = {  # --quick overrides (a smoke test of every code path, not a measurement)
    "oracle_steps": [2, 4, 8],
    "oracle_calibration_samples": 64,
    "steps": [4, 8],
    "extra_uniform_steps": [16],
    "seeds": 2,
    "samples_per_seed": 8,
    "reference_samples_per_seed": 8,
    "calibration_samples": 16,
    "paper_calibration_samples": 8,
    "num_candidates": 32,
    "countdown_uniform_steps": [2, 4],
    "text_steps": [4, 8],
    "other_seeds": 2,
    "other_samples_per_seed": 8,
    "other_calibration_samples": 16,
    "other_paper_calibration_samples": 8,
    "judge_steps": 20,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=None, help="default: all (a part whose model "
                        "folder is missing is then skipped with a note; named explicitly, it is an error)")
    parser.add_argument("--quick", action="store_true", help="tiny defaults for every part (a smoke test; the numbers "
                        "mean nothing): " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seeds calibration data (seed+1), "
                        "calibration noise (seed) and the sampling generators")
    parser.add_argument("--num-candidates", type=positive_int, default=None,
                        help="DP candidate times (default: max(128, 4 x the part's largest step count); measured on "
                        "countdown at 64 steps: 128 candidates give 0.0277 error, 256 give 0.0161)")
    parser.add_argument("--calibration-batch-size", type=positive_int, default=32,
                        help="calibration batch size for the trained models (memory, not results)")

    oracle = parser.add_argument_group("oracle")
    oracle.add_argument("--oracle-steps", type=positive_int, nargs="+", default=[2, 3, 4, 6, 8, 12, 16])
    oracle.add_argument("--oracle-calibration-samples", type=positive_int, default=4096,
                        help="sequences drawn from each distribution (measured: 1024 leaves calibration noise that "
                        "loses to the uniform grid by up to 10%% at 12-16 steps on two problems)")
    oracle.add_argument("--oracle-calibration-batch-size", type=positive_int, default=256)

    cd = parser.add_argument_group("countdown (bundled absorbing model)")
    cd.add_argument("--steps", type=positive_int, nargs="+", default=[4, 8, 16, 32, 64])
    cd.add_argument("--extra-uniform-steps", type=positive_int, nargs="*", default=[128],
                    help="extra step counts for the uniform grid only (float64, Tweedie), for the 'n vs 2n' target")
    cd.add_argument("--seeds", type=positive_int, default=3, help="sampling seeds")
    cd.add_argument("--samples-per-seed", type=positive_int, default=128)
    cd.add_argument("--reference-methods", nargs="*", choices=METHODS, default=["uniform", "dp"],
                    help="grids also sampled with sampling_precision='reference'")
    cd.add_argument("--reference-samples-per-seed", type=positive_int, default=64)
    cd.add_argument("--calibration-samples", type=positive_int, default=256, help="DP calibration sequences")
    cd.add_argument("--paper-calibration-samples", type=positive_int, default=64,
                    help="calibration sequences of the paper's hierarchical search (the first of the DP's)")

    other = parser.add_argument_group("countdown-uniform and text (models trained by scripts/train.py)")
    other.add_argument("--countdown-uniform-model", type=Path, default=None,
                       help=f"pipeline folder (default: {DEFAULT_MODELS['countdown-uniform']})")
    other.add_argument("--text-model", type=Path, default=None, help=f"pipeline folder (default: {DEFAULT_MODELS['text']})")
    other.add_argument("--countdown-uniform-steps", type=positive_int, nargs="+", default=[2, 4, 8, 16],
                       help="(the uniform-transition model is near its floor by 16 steps)")
    other.add_argument("--text-steps", type=positive_int, nargs="+", default=[4, 8, 16, 32])
    other.add_argument("--other-seeds", type=positive_int, default=3)
    other.add_argument("--other-samples-per-seed", type=positive_int, default=64)
    other.add_argument("--other-calibration-samples", type=positive_int, default=64,
                       help="DP calibration sequences (the uniform-process DP costs about 4 s per sequence here)")
    other.add_argument("--other-paper-calibration-samples", type=positive_int, default=32)
    other.add_argument("--judge-dir", type=Path, default=Path("outputs/ar-judge"),
                       help="cache of the text judges (one sub-folder per sequence length and settings)")
    other.add_argument("--judge-steps", type=positive_int, default=1500)

    out = parser.add_argument_group("output")
    out.add_argument("--sample-batch-size", type=positive_int, default=64)
    out.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    out.add_argument("--img-dir", type=Path, default=Path("docs/img"))
    out.add_argument("--work-dir", type=Path, default=Path("outputs/benchmark_quality"),
                     help="results.json and resumable calibration states")
    out.add_argument("--resume", action="store_true", help="reuse finished cells and calibration states in --work-dir")
    out.add_argument("--render-only", action="store_true", help="rewrite --output and plots from --work-dir/results.json")
    out.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and cross-check the arguments; errors name the flag and exit with status 2."""
    parser = build_parser()
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)  # explicit options still win
    args = parser.parse_args(argv)
    args.parts_explicit = args.parts is not None
    args.parts = list(dict.fromkeys(args.parts or PARTS))
    for name in ("oracle_steps", "steps", "extra_uniform_steps", "countdown_uniform_steps", "text_steps"):
        setattr(args, name, sorted(set(getattr(args, name))))
    largest = max(args.steps + args.countdown_uniform_steps + args.text_steps + args.oracle_steps)
    if args.num_candidates is not None and args.num_candidates < largest:
        parser.error(f"--num-candidates ({args.num_candidates}) must be >= the largest step count ({largest})")
    if args.paper_calibration_samples > args.calibration_samples:
        parser.error(f"--paper-calibration-samples ({args.paper_calibration_samples}) must be <= "
                     f"--calibration-samples ({args.calibration_samples})")
    if args.other_paper_calibration_samples > args.other_calibration_samples:
        parser.error(f"--other-paper-calibration-samples ({args.other_paper_calibration_samples}) must be <= "
                     f"--other-calibration-samples ({args.other_calibration_samples})")
    if args.output.exists() and args.output.is_dir():
        parser.error(f"--output {args.output} is a folder; give a .md file path")
    if args.img_dir.exists() and not args.img_dir.is_dir():
        parser.error(f"--img-dir {args.img_dir} exists and is not a folder")
    if args.render_only:
        if not (args.work_dir / "results.json").is_file():
            parser.error(f"--render-only needs {args.work_dir / 'results.json'} (run the benchmark first)")
        return args
    args.skipped = {}
    for part, flag in (("countdown-uniform", "countdown_uniform_model"), ("text", "text_model")):
        explicit = getattr(args, flag) is not None
        path = getattr(args, flag) or Path(DEFAULT_MODELS[part])
        setattr(args, flag, path)
        if part in args.parts and not (path / "model_index.json").is_file():
            option = "--" + flag.replace("_", "-")
            if explicit or args.parts_explicit:
                parser.error(f"{option} {path} is not a pipeline folder (no model_index.json); train one with "
                             "scripts/train.py or leave the part out of --parts")
            args.skipped[part] = f"no pipeline folder at `{path}` (pass {option})"
            args.parts.remove(part)
    return args


# --------------------------------------------------------------------------------------------------------- helpers
def is_power_of_two(n: int) -> bool:
    return n >= 2 and n & (n - 1) == 0


def with_sampling(scheduler: JYSDiscreteScheduler, sampler: str, precision: str = "float64") -> JYSDiscreteScheduler:
    """A copy of `scheduler` with another sampler / sampling precision (same process and noise schedule)."""
    return JYSDiscreteScheduler.from_config(scheduler.config, sampler=sampler, sampling_precision=precision)


def samplers_coincide(scheduler: JYSDiscreteScheduler, grids: list[list[float]], atol: float = 1e-12) -> bool:
    """Whether the Euler and Tweedie step laws agree (max abs difference <= `atol`) at every step of every grid, on
    random model outputs and states (absorbing: half the positions masked)."""
    gen = torch.Generator().manual_seed(1234)
    euler, tweedie = with_sampling(scheduler, "euler"), with_sampling(scheduler, "tweedie")
    vocab = scheduler.config.vocab_size
    for grid in grids:
        euler.set_timesteps(timesteps=grid)
        tweedie.set_timesteps(timesteps=grid)
        for t in grid:
            x = torch.randint(0, vocab, (8, 16), generator=gen)
            if scheduler.config.transition == "absorbing":
                x = torch.where(torch.rand(x.shape, generator=gen) < 0.5, scheduler.config.mask_token_id, x)
            out = torch.randn(8, 16, vocab, generator=gen, dtype=torch.float64) * 3
            a = euler.step_transition(out, t, x).probs(x)
            b = tweedie.step_transition(out, t, x).probs(x)
            if float((a - b).abs().max()) > atol:
                return False
    return True


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def fmt_ms(values: list[float], digits: int = 4) -> str:
    mean, sd = mean_sd(values)
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def cell_key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Store:
    """The JSON results file: written atomically after every finished unit, so `--resume` continues a broken run."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.data: dict[str, Any] = {}
        if resume and path.is_file():
            self.data = json.loads(path.read_text())
        self.data.setdefault("cache", {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def run_calibration(denoiser, scheduler, data, nfe: list[int], *, search: str, objective: str, args, store: Store,
                    tag: str, batch_size: int | None = None) -> dict[str, Any]:
    """`calibrate(...)` with the benchmark's settings; returns grids, settings and the model calls spent."""
    batch_size = batch_size or args.calibration_batch_size
    kwargs: dict[str, Any] = {"search": search, "objective": objective, "batch_size": batch_size,
                              "seed": args.seed, "progress": False}
    if search == "dp":
        kwargs["num_candidates"] = args.num_candidates or default_num_candidates(nfe)
    else:
        kwargs["cache_posteriors"] = True
    key = cell_key("calibration", tag, nfe, kwargs, int(data.shape[0]))
    if key in store.data["cache"]:
        return store.data["cache"][key]
    state = None
    if args.resume:
        state = str(args.work_dir / "states" / f"{tag}-{key}.json")
        Path(state).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = calibrate(denoiser, scheduler, data, nfe, state_path=state, **kwargs)
    entry = {
        "grids": {str(n): result.schedules[str(n)] for n in nfe},
        "search": search,
        "objective": objective,
        "num_sequences": int(data.shape[0]),
        "num_candidates": kwargs.get("num_candidates"),
        "batch_size": batch_size,
        "seed": args.seed,
        "sequence_forwards": int(result.report["sequence_forwards"]),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    store.data["cache"][key] = entry
    store.save()
    print(f"    calibrated {search}/{objective} on {data.shape[0]} sequences: {entry['sequence_forwards']:,} "
          f"sequence-forwards, {entry['wall_s']} s", flush=True)
    return entry


# ------------------------------------------------------------------------------------------------------------ oracle
def run_oracle(args: argparse.Namespace, store: Store) -> dict[str, Any]:
    steps = args.oracle_steps
    powers = [n for n in steps if is_power_of_two(n)]
    problems = []
    for distribution, transition, schedule, vocab, seq_len in (QUICK_ORACLE_PROBLEMS if args.quick else ORACLE_PROBLEMS):
        started = time.perf_counter()
        problem = oracle_problem(distribution, transition, schedule, vocab=vocab, seq_len=seq_len,
                                 num_samples=args.oracle_calibration_samples, seed=args.seed)
        print(f"  oracle {problem.name} (V={vocab}, L={seq_len})", flush=True)
        tag = f"oracle-{distribution}-{transition}-{schedule}-{vocab}-{seq_len}"
        calibration = {
            "dp": run_calibration(problem.denoiser, problem.scheduler, problem.data, steps, search="dp",
                                  objective="kl", args=args, store=store, tag=tag,
                                  batch_size=args.oracle_calibration_batch_size),
        }
        if powers:
            calibration["paper"] = run_calibration(problem.denoiser, problem.scheduler, problem.data, powers,
                                                   search="hierarchical", objective="paper", args=args, store=store,
                                                   tag=tag, batch_size=args.oracle_calibration_batch_size)
        noise = problem.scheduler.noise_schedule
        grids = {
            "uniform": {str(n): uniform_timesteps(n) for n in steps},
            "cosine": {str(n): cosine_timesteps(n, noise) for n in steps},
            **{method: entry["grids"] for method, entry in calibration.items()},
        }
        schedulers = {s: with_sampling(problem.scheduler, s) for s in SAMPLERS}
        kl: dict[str, dict[str, dict[str, float]]] = {}
        for method, by_n in grids.items():
            kl[method] = {s: {n: problem.quality(grid, schedulers[s]) for n, grid in by_n.items()} for s in SAMPLERS}
        coincide = samplers_coincide(problem.scheduler, [g for by_n in grids.values() for g in by_n.values()])
        problems.append({
            "name": problem.name, "description": problem.description.replace(", Tweedie sampler", ""),
            "distribution": distribution, "transition": transition, "noise_schedule": schedule,
            "vocab": vocab, "seq_len": seq_len, "calibration": calibration, "grids": grids, "kl": kl,
            "samplers_coincide": coincide, "wall_s": round(time.perf_counter() - started, 1),
        })
    return {"steps": steps, "calibration_samples": args.oracle_calibration_samples, "problems": problems}


# ----------------------------------------------------------------------------------------------------- sampled tasks
@dataclass
class SampledTask:
    """A pipeline with its calibration data and per-seed quality numbers of a batch of samples."""

    key: str
    title: str
    model: str
    pipe: Any
    denoiser: Any
    seq_len: int
    data: torch.LongTensor
    metrics: Callable[[torch.LongTensor], dict[str, float]]
    metric_info: list[tuple[str, str, bool]]  # (key, label, lower is better); the first is the primary metric
    steps: list[int]
    extra_uniform_steps: list[int]
    seeds: int
    samples_per_seed: int
    paper_samples: int
    reference_methods: list[str]
    reference_samples_per_seed: int
    model_info: dict[str, Any] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)


def training_info(folder: str | Path) -> dict[str, Any]:
    """Size, training command and held-out losses from a scripts/train.py `training_report.json` (if present)."""
    path = Path(folder) / "training_report.json"
    if not path.is_file():
        return {}
    report = json.loads(path.read_text())
    evaluation = report.get("evaluation", {})
    return {
        "command": report.get("command"),
        "num_parameters": report.get("model", {}).get("num_parameters"),
        "training_steps": report.get("training", {}).get("steps"),
        "training_wall_s": report.get("training", {}).get("wall_time_s"),
        "heldout": evaluation.get("heldout"),
        "device": report.get("environment", {}).get("device"),
    }


def countdown_metrics(num_digits: int) -> Callable[[torch.LongTensor], dict[str, float]]:
    from jys_schedulers.tasks import countdown_error_rate, countdown_error_rate_reference

    def metrics(samples: torch.LongTensor) -> dict[str, float]:
        return {"error_rate": float(countdown_error_rate(samples, num_digits).mean()),
                "error_rate_quirk": float(countdown_error_rate_reference(samples).mean())}

    return metrics


COUNTDOWN_METRICS = [("error_rate", "countdown error rate (intended metric)", True),
                     ("error_rate_quirk", "countdown error rate, reference-code quirk metric (every other "
                      "transition checked; for comparison with published numbers only)", True)]


def countdown_task(args: argparse.Namespace, key: str) -> SampledTask:
    from jys_schedulers.tasks import generate_countdown

    bundled = key == "countdown"
    folder = None if bundled else args.countdown_uniform_model
    pipe, denoiser, seq_len = load_pipeline(folder)
    config = pipe.scheduler.config
    expected = "absorbing" if bundled else "uniform"
    if config.transition != expected:
        raise SystemExit(f"error: the {key} part expects a {expected} countdown model, {folder} is {config.transition}")
    num_digits = config.mask_token_id if config.transition == "absorbing" else config.vocab_size
    n_cal = args.calibration_samples if bundled else args.other_calibration_samples
    data = generate_countdown(n_cal, seq_len=seq_len, num_digits=num_digits, seed=args.seed + 1)
    from jys_schedulers.assets import assets_path

    model = "bundled countdown model (`jys_schedulers.assets`)" if bundled else f"`{folder}`"
    info = training_info(assets_path("countdown") if bundled else folder)
    title = ("Countdown, bundled absorbing model" if bundled else "Countdown, uniform-transition model")
    return SampledTask(
        key, title, model, pipe, denoiser, seq_len, data, countdown_metrics(num_digits), COUNTDOWN_METRICS,
        args.steps if bundled else args.countdown_uniform_steps,
        args.extra_uniform_steps if bundled else [],
        args.seeds if bundled else args.other_seeds,
        args.samples_per_seed if bundled else args.other_samples_per_seed,
        args.paper_calibration_samples if bundled else args.other_paper_calibration_samples,
        args.reference_methods if bundled else [],
        args.reference_samples_per_seed,
        {**info, "transition": config.transition, "noise_schedule": config.noise_schedule, "seq_len": seq_len,
         "vocab_size": config.vocab_size},
        {"random_tokens_error_rate": _random_error_rate(seq_len, num_digits)},
    )


def _random_error_rate(seq_len: int, num_digits: int) -> float:
    from jys_schedulers.tasks import expected_random_error_rate

    return expected_random_error_rate(seq_len, num_digits)


def load_or_train_judge(task, args: argparse.Namespace):
    """The AR judge for `task` (trained on its held-out split), cached under `--judge-dir`."""
    from jys_schedulers.tasks import ARJudge, train_ar_judge

    settings = {"seq_len": task.seq_len, "vocab": task.num_data_tokens, "steps": args.judge_steps, "batch_size": 32,
                "num_train_windows": 20000, "valid_fraction": 0.1, "seed": 0}
    folder = args.judge_dir / f"char-L{task.seq_len}-{cell_key(settings)[:8]}"
    train, valid = task.judge_data(num_train_windows=20000, valid_fraction=0.1, seed=0)
    if (folder / "config.json").is_file():
        judge = ARJudge.from_pretrained(folder)
    else:
        print(f"    training the AR judge ({args.judge_steps} steps) -> {folder}", flush=True)
        judge = train_ar_judge(train, task.num_data_tokens, steps=args.judge_steps, seed=0, batch_size=32,
                               valid_windows=valid, num_threads=args.threads)
        judge.save_pretrained(folder)
    info = {"folder": str(folder), **settings, **judge.training_info,
            "valid_perplexity": judge.perplexity(valid), "num_valid_windows": int(valid.shape[0])}
    return judge, info


def text_task(args: argparse.Namespace) -> SampledTask:
    from jys_schedulers.tasks import CharTokenizer, TextTask, unigram_entropy

    pipe, denoiser, seq_len = load_pipeline(args.text_model)
    config = pipe.scheduler.config
    num_data = config.mask_token_id if config.transition == "absorbing" else config.vocab_size
    if num_data != CharTokenizer().vocab_size:
        raise SystemExit(f"error: --text-model {args.text_model} has {num_data} data tokens; only char-tokenizer "
                         f"models ({CharTokenizer().vocab_size} tokens) are supported")
    task = TextTask(seq_len=seq_len, tokenizer="char")
    data = task.windows("train", args.other_calibration_samples, seed=args.seed + 1)
    judge, judge_info = load_or_train_judge(task, args)
    # the denoiser's training split: real text the judge never saw (the held-out split is the judge's training data)
    train_windows = task.windows("train", 512, seed=args.seed + 2)

    def metrics(samples: torch.LongTensor) -> dict[str, float]:
        return {"perplexity": math.exp(float(judge.nll(samples).mean())),
                "unigram_entropy": unigram_entropy(samples, num_data)}

    references = {
        "judge": judge_info,
        "train_windows": metrics(train_windows),
    }
    return SampledTask(
        "text", "Text (pydoc, char tokenizer)", f"`{args.text_model}`", pipe, denoiser, seq_len, data, metrics,
        [("perplexity", "perplexity under the AR judge", True),
         ("unigram_entropy", "unigram entropy (nats; the data's value is the target, not the maximum)", False)],
        args.text_steps, [], args.other_seeds, args.other_samples_per_seed, args.other_paper_calibration_samples,
        [], args.reference_samples_per_seed,
        {**training_info(args.text_model), "transition": config.transition, "noise_schedule": config.noise_schedule,
         "seq_len": seq_len, "vocab_size": config.vocab_size},
        references,
    )


def sample_cell(task: SampledTask, scheduler: JYSDiscreteScheduler, grid: list[float], samples_per_seed: int,
                args: argparse.Namespace) -> dict[str, list[float]]:
    """Per-seed metrics of `samples_per_seed` sequences for each of `task.seeds` seeds. The generator seeds depend on
    (seed, seed index, batch index) only: every grid, sampler and precision shares them (common random numbers)."""
    task.pipe.scheduler = scheduler
    per_seed: dict[str, list[float]] = {}
    for seed_index in range(task.seeds):
        chunks = []
        for batch_index, start in enumerate(range(0, samples_per_seed, args.sample_batch_size)):
            size = min(args.sample_batch_size, samples_per_seed - start)
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + seed_index * 1_000 + batch_index)
            out = task.pipe(batch_size=size, seq_len=task.seq_len, timesteps=grid, generator=generator)
            chunks.append(out.sequences.cpu())
        for name, value in task.metrics(torch.cat(chunks)).items():
            per_seed.setdefault(name, []).append(value)
    return per_seed


def run_sampled(task: SampledTask, args: argparse.Namespace, store: Store) -> dict[str, Any]:
    started = time.perf_counter()
    base = task.pipe.scheduler
    steps, powers = task.steps, [n for n in task.steps if is_power_of_two(n)]
    tag = f"{task.key}-{cell_key(task.model, task.seq_len)[:8]}"
    calibration = {"dp": run_calibration(task.denoiser, base, task.data, steps, search="dp", objective="kl",
                                         args=args, store=store, tag=tag)}
    if powers:
        calibration["paper"] = run_calibration(task.denoiser, base, task.data[: task.paper_samples], powers,
                                               search="hierarchical", objective="paper", args=args, store=store,
                                               tag=tag)
    noise = base.noise_schedule
    uniform_steps = sorted(set(steps) | set(task.extra_uniform_steps))
    grids = {
        "uniform": {str(n): uniform_timesteps(n) for n in uniform_steps},
        "cosine": {str(n): cosine_timesteps(n, noise) for n in steps},
        **{method: entry["grids"] for method, entry in calibration.items()},
    }
    coincide = samplers_coincide(base, [g for by_n in grids.values() for g in by_n.values()])
    samplers = ["tweedie"] if coincide else list(SAMPLERS)
    plan = [("float64", s, m, task.samples_per_seed) for s in samplers for m in grids]
    plan += [("reference", s, m, task.reference_samples_per_seed) for s in samplers for m in task.reference_methods
             if m in grids]
    cells = []
    for precision, sampler, method, n_samples in plan:
        scheduler = with_sampling(base, sampler, precision)
        for n, grid in grids[method].items():
            if method == "uniform" and int(n) not in steps and (precision, sampler) != ("float64", "tweedie"):
                continue  # the extra uniform step counts are sampled once (float64, Tweedie)
            key = cell_key("cell", task.key, task.model, precision, sampler, grid, task.seeds, n_samples,
                           args.sample_batch_size, args.seed)
            if key not in store.data["cache"]:
                t0 = time.perf_counter()
                store.data["cache"][key] = sample_cell(task, scheduler, grid, n_samples, args)
                store.save()
                primary = task.metric_info[0][0]
                print(f"    {precision:9s} {sampler:7s} {method:7s} N={n:>3}: {primary} "
                      f"{fmt_ms(store.data['cache'][key][primary])} ({time.perf_counter() - t0:.0f} s)", flush=True)
            cells.append({"precision": precision, "sampler": sampler, "method": method, "n": int(n),
                          "samples_per_seed": n_samples, "metrics": store.data["cache"][key]})
    task.pipe.scheduler = base
    return {
        "key": task.key, "title": task.title, "model": task.model, "model_info": task.model_info,
        "references": task.references, "steps": steps, "extra_uniform_steps": task.extra_uniform_steps,
        "seeds": task.seeds, "samples_per_seed": task.samples_per_seed,
        "reference_samples_per_seed": task.reference_samples_per_seed, "reference_methods": task.reference_methods,
        "calibration_data": f"{task.data.shape[0]} sequences (seed {args.seed + 1})",
        "metric_info": task.metric_info, "calibration": calibration, "grids": grids,
        "samplers_coincide": coincide, "cells": cells, "wall_s": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------------------------------------------------- targets
def _lookup(part: dict[str, Any]) -> dict[tuple[str, str, str, int], dict[str, list[float]]]:
    return {(c["precision"], c["sampler"], c["method"], c["n"]): c["metrics"] for c in part["cells"]}


def _compare(a: list[float], b: list[float]) -> tuple[float, bool]:
    """Ratio mean(b)/mean(a) (> 1: a is better) and whether the gap exceeds two standard errors of the difference."""
    ma, sa = mean_sd(a)
    mb, sb = mean_sd(b)
    se = math.sqrt(((sa or 0.0) ** 2) / len(a) + ((sb or 0.0) ** 2) / len(b))
    return (mb / ma if ma > 0 else math.inf), abs(mb - ma) > 2 * se


def _check(ok: bool) -> str:
    return "✓" if ok else "✗"


def oracle_targets(oracle: dict[str, Any]) -> list[list[str]]:
    """Default calibration vs the uniform (brief + DESIGN.md) and cosine (DESIGN.md) grids at every N in 2-16, one row
    per process and noise schedule."""
    rows = []
    steps = [n for n in oracle["steps"] if 2 <= n <= 16]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in oracle["problems"]:
        groups.setdefault((p["transition"], p["noise_schedule"]), []).append(p)
    for rival in ("uniform", "cosine"):
        for (transition, schedule), problems in groups.items():
            if not steps:
                continue
            worst, where, losses = math.inf, "", 0
            for p in problems:
                for s in SAMPLERS:
                    for n in steps:
                        ratio = p["kl"][rival][s][str(n)] / p["kl"]["dp"][s][str(n)]
                        losses += ratio <= 1.0
                        if ratio < worst:
                            worst, where = ratio, f"{p['distribution']}, {s}, N={n}"
            cells = len(problems) * len(SAMPLERS) * len(steps)
            scope = "brief + DESIGN.md" if rival == "uniform" else "DESIGN.md"
            names = ", ".join(p["distribution"] for p in problems)
            rows.append([
                f"Oracle, {transition} process, {schedule} schedule ({names}; Euler and Tweedie): default calibration "
                f"has lower exact KL than the {rival} grid at every N in {steps[0]}-{steps[-1]} ({scope})",
                f"{cells - losses}/{cells} cells; worst {rival}/default KL ratio {worst:.3f} ({where})",
                _check(losses == 0),
            ])
    return rows


def sampled_targets(part: dict[str, Any], design: bool) -> list[list[str]]:
    """Calibrated beats uniform at every N; (countdown) calibrated at N at least as good as uniform at 2N."""
    rows = []
    look = _lookup(part)
    primary, label, lower = part["metric_info"][0]
    scope = "brief + DESIGN.md" if design else "brief; no DESIGN.md target"
    precisions = [p for p in PRECISIONS if any(c["precision"] == p for c in part["cells"] if c["method"] == "dp")]
    for precision in precisions:
        for sampler in sorted({c["sampler"] for c in part["cells"] if c["precision"] == precision}, reverse=True):
            sampler_label = "Euler = Tweedie" if part["samplers_coincide"] else sampler.capitalize()
            values, wins, insignificant, unresolved_wins = [], 0, [], 0
            for n in part["steps"]:
                a, b = look.get((precision, sampler, "dp", n)), look.get((precision, sampler, "uniform", n))
                if a is None or b is None:
                    continue
                ratio, significant = _compare(a[primary], b[primary]) if lower else _compare(b[primary], a[primary])
                wins += ratio > 1.0
                values.append(f"{n}: {ratio:.2f}")
                if not significant:
                    insignificant.append(str(n))
                    unresolved_wins += ratio > 1.0
            if not values:
                continue
            note = f"; within 2 SE at N={', '.join(insignificant)}" if insignificant else ""
            rows.append([
                f"{part['title']} ({precision}, {sampler_label}): default calibration beats the uniform grid in "
                f"{label.split(' (')[0]} at every N ({scope})",
                f"uniform/default ratio {', '.join(values)}{note}",
                _check(wins == len(values)) + (" (some wins within noise)" if wins == len(values) and unresolved_wins
                                               else ""),
            ])
            for metric, metric_label, metric_lower in part["metric_info"][1:]:
                reference = part["references"].get("train_windows", {}).get(metric)
                if metric_lower or reference is None:
                    continue
                gaps = [(n, mean_sd(look[precision, sampler, m, n][metric])[0] - reference)
                        for n in part["steps"] for m in ("dp",) if (precision, sampler, m, n) in look]
                rows.append([
                    f"{part['title']} ({precision}, {sampler_label}): the default calibration's {metric_label.split(' (')[0]} "
                    f"stays within {ENTROPY_TOLERANCE} nats of real text ({reference:.3f}) at every N (guard against "
                    "low-temperature gaming of the judge)",
                    "default − real text: " + ", ".join(f"{n}: {gap:+.3f}" for n, gap in gaps),
                    _check(all(abs(gap) <= ENTROPY_TOLERANCE for _, gap in gaps)),
                ])
            if not design:
                continue
            pairs, ok = [], True
            for n in part["steps"]:
                a = look.get((precision, sampler, "dp", n))
                # the extra uniform step counts are sampled with float64 + Tweedie only
                b = look.get((precision, sampler, "uniform", 2 * n))
                if b is None and precision == "float64":
                    b = look.get((precision, "tweedie", "uniform", 2 * n))
                if a is None or b is None:
                    continue
                ma, mb = mean_sd(a[primary])[0], mean_sd(b[primary])[0]
                ok &= ma <= mb if lower else ma >= mb
                pairs.append(f"{n}: {ma:.4f} vs {mb:.4f}")
            if pairs:
                rows.append([
                    f"{part['title']} ({precision}, {sampler_label}): default calibration at N is at least as good "
                    f"as the uniform grid at 2N ({scope})",
                    "default@N vs uniform@2N: " + "; ".join(pairs), _check(ok),
                ])
    return rows


# ----------------------------------------------------------------------------------------------------------- plots
def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


STYLE = {"uniform": ("o", "tab:gray"), "cosine": ("s", "tab:orange"), "dp": ("D", "tab:blue"), "paper": ("^", "tab:green")}


def _log_axes(ax, steps: list[int], ylabel: str, log_y: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(n) for n in steps])
    ax.xaxis.set_minor_locator(NullLocator())
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("steps (model calls)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def plot_oracle(oracle: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = oracle["problems"]
    cols = min(3, len(problems))
    rows = math.ceil(len(problems) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), dpi=110, squeeze=False)
    for ax, p in zip(axes.flat, problems):
        for method, by_sampler in p["kl"].items():
            marker, color = STYLE[method]
            for sampler, dash in (("tweedie", "-"), ("euler", "--")):
                if sampler == "euler" and p["samplers_coincide"]:
                    continue
                ns = sorted(int(n) for n in by_sampler[sampler])
                ax.plot(ns, [by_sampler[sampler][str(n)] for n in ns], dash, marker=marker, color=color, ms=4)
        _log_axes(ax, oracle["steps"], "exact KL (nats)")
        ax.set_title(f"{p['name']} (V={p['vocab']}, L={p['seq_len']})", fontsize=9)
    for ax in list(axes.flat)[len(problems):]:
        ax.axis("off")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=STYLE[m][1], marker=STYLE[m][0], label=METHOD_LABELS[m]) for m in METHODS]
    handles += [Line2D([], [], color="k", ls="-", label="Tweedie"),
                Line2D([], [], color="k", ls="--", label="Euler (drawn where it differs from Tweedie)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Exact oracle: KL(data ‖ sampler) vs steps", fontsize=10)
    fig.tight_layout(rect=(0, 0.1 if rows == 1 else 0.06, 1, 0.97))
    _save_figure(fig, path)


def plot_sampled(part: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(c["precision"], c["sampler"]) for c in part["cells"]}, key=lambda k: (PRECISIONS.index(k[0]), k[1] != "tweedie"))
    metrics = [m for m in part["metric_info"] if m[0] != "error_rate_quirk"]
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(max(6.4, 4.6 * len(panels)), 3.6 * len(metrics)), dpi=110,
                             squeeze=False)
    all_steps = sorted({c["n"] for c in part["cells"]})
    for col, (precision, sampler) in enumerate(panels):
        for row, (metric, label, _) in enumerate(metrics):
            ax = axes[row][col]
            for method in METHODS:
                cells = sorted((c for c in part["cells"] if (c["precision"], c["sampler"], c["method"]) ==
                                (precision, sampler, method)), key=lambda c: c["n"])
                if not cells:
                    continue
                marker, color = STYLE[method]
                stats = [mean_sd(c["metrics"][metric]) for c in cells]
                ax.errorbar([c["n"] for c in cells], [m for m, _ in stats], yerr=[sd or 0.0 for _, sd in stats],
                            marker=marker, color=color, ms=4, capsize=2, label=METHOD_LABELS[method])
            log_y = metric != "unigram_entropy"
            if metric in ("unigram_entropy", "perplexity") and "train_windows" in part["references"]:
                ax.axhline(part["references"]["train_windows"][metric], color="k", ls=":", lw=1, label="real text")
            _log_axes(ax, all_steps, label.split(" (")[0], log_y)
            sampler_label = "Euler = Tweedie" if part["samplers_coincide"] else sampler.capitalize()
            ax.set_title(f"{precision} sampling, {sampler_label}", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(f"{part['title']}: quality vs steps (mean ± sd over {part['seeds']} seeds)", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path)


# -------------------------------------------------------------------------------------------------------- markdown
def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _calibration_rows(calibration: dict[str, Any]) -> list[list[str]]:
    rows = []
    for method, entry in calibration.items():
        search = (f"DP over {entry['num_candidates']} candidate times" if entry["search"] == "dp"
                  else "hierarchical (golden section per interval, start posteriors cached)")
        rows.append([METHOD_LABELS[method], f"`{entry['objective']}`", search, str(entry["num_sequences"]),
                     str(entry["seed"]), ", ".join(entry["grids"]), f"{entry['sequence_forwards']:,}",
                     f"{entry['wall_s']:.1f}"])
    return rows


CAL_HEADER = ["grid", "objective", "search", "calibration sequences", "noise seed", "step counts",
              "model calls (sequence-forwards)", "wall s"]


def oracle_markdown(oracle: dict[str, Any], img: str) -> list[str]:
    steps = oracle["steps"]
    out = [
        "## 1. Exact oracle",
        "",
        "Exact `KL(data ‖ sampler)` in nats (`jys_schedulers.testing.exact_kl`): the oracle denoiser is the true "
        "posterior of a small explicit distribution (`jys_schedulers.tasks.oracle`), so the numbers hold the sampler's "
        "compounding decoding error only, with no sampling noise (one exact number per cell; sampling precision does "
        "not enter). In brackets: uniform grid's KL / this grid's KL (> 1: better than uniform). The paper's "
        "hierarchical search gives powers of two only (`-` elsewhere). Calibration data: "
        f"{oracle['calibration_samples']} sequences drawn from each distribution.",
        "",
        f"![exact KL vs steps]({img})",
        "",
    ]
    for p in oracle["problems"]:
        out += [f"### {p['name']} (V={p['vocab']}, L={p['seq_len']})", "", p["description"] + ".", ""]
        rows = []
        for method in METHODS:
            if method not in p["kl"]:
                continue
            samplers = ["tweedie"] if p["samplers_coincide"] else list(SAMPLERS)
            for s in samplers:
                cells = []
                for n in steps:
                    value = p["kl"][method][s].get(str(n))
                    cells.append("-" if value is None else
                                 f"{fmt(value)} ({p['kl']['uniform'][s][str(n)] / value:.2f})")
                sampler_label = "Euler = Tweedie" if p["samplers_coincide"] else s.capitalize()
                rows.append([METHOD_LABELS[method], sampler_label] + cells)
        out += _table(["grid", "sampler"] + [f"N={n}" for n in steps], rows)
        cal = "; ".join(f"{METHOD_LABELS[m]}: {e['sequence_forwards']:,} sequence-forwards ({e['wall_s']:.1f} s)"
                        for m, e in p["calibration"].items())
        coincide = ("Euler and Tweedie step laws coincide on every grid here (checked), so they give the same KL."
                    if p["samplers_coincide"] else "Euler and Tweedie differ here.")
        out += ["", f"Calibration: {cal}. {coincide}", ""]
    return out


def sampled_markdown(part: dict[str, Any], number: int, img: str) -> list[str]:
    info = part["model_info"]
    look = _lookup(part)
    out = [f"## {number}. {part['title']}", ""]
    desc = (f"Model: {part['model']}: {info.get('transition')} process, {info.get('noise_schedule')} noise schedule, "
            f"L={info.get('seq_len')}, vocabulary {info.get('vocab_size')}")
    if info.get("num_parameters"):
        desc += f", {info['num_parameters']:,} parameters"
    if info.get("training_steps"):
        desc += f", {info['training_steps']:,} training steps"
    heldout = info.get("heldout") or {}
    if heldout.get("cross_entropy") is not None:
        desc += f", held-out cross-entropy {heldout['cross_entropy']:.4f} nats"
    out += [desc + ".", ""]
    if info.get("command"):
        out += [f"Trained with `{info['command']}`.", ""]
    coincide = part["samplers_coincide"]
    out += [
        f"Sampling: {part['seeds']} seeds × {part['samples_per_seed']} sequences per cell (float64)"
        + (f", {part['seeds']} × {part['reference_samples_per_seed']} for `sampling_precision=\"reference\"` "
           f"({', '.join(METHOD_LABELS[m] for m in part['reference_methods'])})" if part["reference_methods"] else "")
        + "; mean ± sd over seeds. The same generator seeds for every grid, sampler and precision at a step count. "
        + ("The Euler and Tweedie step laws coincide on every grid used here (checked numerically; absorbing + "
           "log-linear, METHOD.md §5), so the Euler rows are the Tweedie samples."
           if coincide else "Euler and Tweedie are sampled separately."),
        "",
        f"Calibration data: {part['calibration_data']}.",
        "",
    ]
    out += _table(CAL_HEADER, _calibration_rows(part["calibration"])) + [""]
    refs = part["references"]
    if "random_tokens_error_rate" in refs:
        out += [f"For scale: data scores 0; i.i.d. uniform random tokens score "
                f"{refs['random_tokens_error_rate']:.4f} (intended metric).", ""]
    if "judge" in refs:
        judge = refs["judge"]
        out += [
            f"Judge: `ARJudge` (d_model 64, 2 layers) trained by `train_ar_judge` on {judge['num_train_windows']:,} "
            f"windows of the held-out split ({judge['steps']} of {judge['requested_steps']} steps, batch "
            f"{judge['batch_size']}, seed {judge['seed']}, best validation step {judge.get('best_step')}; cached in "
            f"`{judge['folder']}`, trained in {judge['seconds']:.0f} s, not counted in the wall time above when "
            f"cached). Its own held-out perplexity (its {judge['num_valid_windows']} validation windows, the last 10% "
            f"of the held-out split): **{judge['valid_perplexity']:.3f}**. Real text under the same judge: 512 windows "
            f"of the training split (the denoiser's data, never seen by the judge): perplexity "
            f"**{refs['train_windows']['perplexity']:.3f}**, unigram entropy "
            f"**{refs['train_windows']['unigram_entropy']:.4f}** nats (the dotted lines in the plot).",
            "",
        ]
    out += [f"![quality vs steps]({img})", ""]
    steps = sorted({c["n"] for c in part["cells"]})
    for precision in PRECISIONS:
        samplers = [s for s in SAMPLERS if any((c["precision"], c["sampler"]) == (precision, s) for c in part["cells"])]
        for metric, label, lower in part["metric_info"]:
            rows = []
            for sampler in samplers:
                for method in METHODS:
                    if not any((precision, sampler, method, n) in look for n in steps):
                        continue
                    cells = [fmt_ms(look[precision, sampler, method, n][metric])
                             if (precision, sampler, method, n) in look else "-" for n in steps]
                    sampler_label = "Euler = Tweedie" if coincide else sampler.capitalize()
                    rows.append([METHOD_LABELS[method], sampler_label] + cells)
            if not rows:
                continue
            better = "lower is better" if lower else "closer to the data's value is better"
            out += [f"**{label}**, `sampling_precision=\"{precision}\"` ({better})", ""]
            out += _table(["grid", "sampler"] + [f"N={n}" for n in steps], rows) + [""]
    return out


def grids_markdown(results: dict[str, Any]) -> list[str]:
    out = ["## Calibrated grids", "", "The call times of the calibrated grids measured above (rounded to 4 digits).", ""]
    for key in ("countdown", "countdown-uniform", "text"):
        part = results.get(key)
        if not part:
            continue
        out += [f"<details><summary>{part['title']}</summary>", ""]
        for method in ("dp", "paper"):
            for n, grid in part["grids"].get(method, {}).items():
                out.append(f"- {METHOD_LABELS[method]}, N={n}: `{[round(t, 4) for t in grid]}`")
        out += ["", "</details>", ""]
    return out


def render(results: dict[str, Any], args: argparse.Namespace, notes: str) -> str:
    meta = results["meta"]
    img_rel = os.path.relpath(args.img_dir, args.output.parent)
    targets: list[list[str]] = []
    if "oracle" in results:
        targets += oracle_targets(results["oracle"])
    for key, design in (("countdown", True), ("countdown-uniform", False), ("text", False)):
        if key in results:
            targets += sampled_targets(results[key], design)
    met = sum(r[2].startswith("✓") for r in targets)
    out = [
        "# Benchmarks",
        "",
        "The index of the measured benchmarks (each page is written by its script; rerun to refresh):",
        "",
        "- **this page**: sample quality vs steps (`scripts/benchmark_quality.py`): uniform and cosine grids, our "
        "default calibration and the paper's, Euler and Tweedie samplers, on the exact oracle, the bundled countdown "
        "model, a uniform-transition countdown model and a text model;",
        *[f"- [{page}]({page}): {what};" for page, what in LINKED_PAGES],
        "",
        "# Sample quality vs steps",
        "",
        meta["environment"] + f" Total wall time {meta['total_wall_s'] / 60:.1f} min ("
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in meta["part_wall_s"].items()) + ").",
        "",
        "Grids: " + "; ".join(f"**{METHOD_LABELS[m]}**" for m in METHODS) + ". The default calibration is "
        "`calibrate(denoiser, scheduler, data, nfe)` (`search=\"dp\"`, `objective=\"kl\"`); the paper's is "
        "`calibrate(..., search=\"hierarchical\", objective=\"paper\")` (powers of two only). N steps cost N model "
        "calls for every grid. Samplers: `JYSDiscreteScheduler(sampler=\"tweedie\" | \"euler\")`.",
        "",
        f"## Targets ({met}/{len(targets)} met; computed from the numbers below)",
        "",
        "Ratios are uniform / default (quality measures where lower is better), so > 1 means the calibrated grid is "
        "better. \"Within 2 SE\" marks step counts where the gap is smaller than two standard errors of the difference "
        "of the seed means (not resolved by this many seeds).",
        "",
        *_table(["target", "measured", "met"], targets),
        "",
    ]
    if meta.get("skipped"):
        out += ["Skipped parts: " + "; ".join(f"`{k}`: {v}" for k, v in meta["skipped"].items()) + ".", ""]
    out += ["## Notes", "", NOTES_START, notes.strip() or "_(no hand-written notes for this run)_", NOTES_END, ""]
    out += ["## How to rerun", "", "```bash", meta["command"], "```", "",
            "Every option has a default; `--quick` runs every code path in a minute or two (numbers not meaningful), "
            "`--parts` picks parts, `--resume` continues a broken run from `--work-dir`, `--render-only` rewrites this "
            "page and the plots from `--work-dir/results.json`. Defaults: "
            "`OMP_NUM_THREADS=1 python scripts/benchmark_quality.py` (oracle, countdown, countdown-uniform from "
            f"`{DEFAULT_MODELS['countdown-uniform']}`, text from `{DEFAULT_MODELS['text']}`).", ""]
    commands = []
    for key in ("countdown-uniform", "text"):
        command = results.get(key, {}).get("model_info", {}).get("command")
        if command:
            commands.append(f"python {command}" if not command.startswith(("python", "accelerate")) else command)
    if commands:
        out += ["The trained models come from:", "", "```bash", *commands, "```", ""]
    number = 1
    if "oracle" in results:
        out += oracle_markdown(results["oracle"], f"{img_rel}/quality_oracle.png")
    for key in ("countdown", "countdown-uniform", "text"):
        if key in results:
            number += 1
            out += sampled_markdown(results[key], number, f"{img_rel}/quality_{key.replace('-', '_')}.png")
    out += grids_markdown(results)
    return "\n".join(out).rstrip() + "\n"


def existing_notes(path: Path) -> str:
    if not path.is_file():
        return ""
    match = re.search(re.escape(NOTES_START) + r"\n(.*?)\n?" + re.escape(NOTES_END), path.read_text(), re.S)
    notes = match.group(1) if match else ""
    return "" if notes.strip() == "_(no hand-written notes for this run)_" else notes


def write_outputs(results: dict[str, Any], args: argparse.Namespace) -> None:
    if "oracle" in results:
        plot_oracle(results["oracle"], args.img_dir / "quality_oracle.png")
    for key in ("countdown", "countdown-uniform", "text"):
        if key in results:
            plot_sampled(results[key], args.img_dir / f"quality_{key.replace('-', '_')}.png")
    text = render(results, args, existing_notes(args.output))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, args.output)


# ------------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    store = Store(args.work_dir / "results.json", resume=args.resume or args.render_only)
    if args.render_only:
        write_outputs(store.data["results"], args)
        print(f"wrote {args.output} and plots under {args.img_dir} from {store.path}")
        return 0
    argv_used = sys.argv[1:] if argv is None else argv
    command = "OMP_NUM_THREADS=1 python scripts/benchmark_quality.py " + " ".join(argv_used)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    part_wall: dict[str, float] = {}
    for part in args.parts:
        print(f"[{part}]", flush=True)
        t0 = time.perf_counter()
        if part == "oracle":
            results[part] = run_oracle(args, store)
        else:
            task = text_task(args) if part == "text" else countdown_task(args, part)
            results[part] = run_sampled(task, args, store)
        part_wall[part] = time.perf_counter() - t0
        print(f"[{part}] done in {part_wall[part] / 60:.1f} min", flush=True)
    results["meta"] = {
        "command": command.strip(),
        "environment": environment_line("scripts/benchmark_quality.py", command),
        "date": datetime.date.today().isoformat(),
        "total_wall_s": time.perf_counter() - started,
        "part_wall_s": part_wall,
        "skipped": args.skipped,
    }
    store.data["results"] = results
    store.save()
    write_outputs(results, args)
    print(f"wrote {args.output}, plots under {args.img_dir}, numbers in {store.path} "
          f"({results['meta']['total_wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
