#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Calibration cost and quality: our DP search against a faithful re-implementation of the reference JYS search.

For each problem (default: three exact-oracle problems) and every step count in `--steps` (powers of two, as the
reference needs), the script calibrates with

- **reference**: the reference code's procedure re-implemented step by step (jys_reference_notes.md §2.3, §3):
  paper insertion gain with `+1e-8` in both logs and no compensator, rates at the interval start recomputed at every
  probe (2 forwards per sequence and probe), two generators seeded 42 at every gain evaluation, its golden-section
  routine (`phi = 1.618`, `b = a + (c - a)/(1 + phi)`, the bracket not shrunk when a probe improves, at most 32
  iterations, tolerance `0.25/1024`, bracket margin `eps = 1e-3`, the best of *all* probes including the bracket ends),
  snapping to `linspace(1, 1e-5, 1025)`, manual corrections A and B, power-of-two levels;
- **ours**: `jys_schedulers.calibration.calibrate` with the DP (default), and the hierarchical / greedy searches with
  both objectives;
- the **uniform** and **cosine** heuristic grids,

and reports sequence-forwards (one model call on one sequence), wall time, the objective reached (the posterior-KL
bound of every grid, scored on our DP statistics with `CalibrationResult.bound`) and sample quality (for the oracle:
exact `KL(data ‖ sampler)`, every grid sampled by the same Tweedie sampler).

Model calls: the reference samples N steps with N + 1 model calls (a final denoising call at t = 1e-5); our scheduler
folds that last denoise into step N, so N steps cost N calls. Quality is compared at equal model calls: the
reference's N-step grid is run by our N-call sampler (its extra call would denoise the ~1e-5 share of tokens still
masked at t = 1e-5).

Problem sources are one function each (`PROBLEMS`): `oracle` (exact posterior of a small explicit distribution) and
`pipeline` (a saved `DiscreteDiffusionPipeline` folder trained on countdown, by default the bundled one; quality =
countdown error rate of sampled sequences). To benchmark another model, add a function that returns a `Problem` and register it.

Examples:
    python scripts/benchmark_calibration.py                       # the three oracle problems -> docs/benchmarks_calibration.md
    python scripts/benchmark_calibration.py --quick --output /tmp/bench.md
    python scripts/benchmark_calibration.py --problem pipeline --pipeline outputs/countdown --steps 4 8 16 --num-samples 256
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jys_schedulers.calibration import calibrate
from jys_schedulers.calibration.objectives import TimeSlice, model_posterior, paper_divergence
from jys_schedulers.schedules import cosine_timesteps, uniform_timesteps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import Problem, environment_line, load_pipeline  # noqa: E402
from _bench_common import fmt as _fmt  # noqa: E402
from _bench_common import oracle_problem as _oracle_problem  # noqa: E402
from _cli import non_negative_int, positive_int  # noqa: E402


# ------------------------------------------------------------------------------------------------------ problems
def oracle_problem(args: argparse.Namespace, distribution: str, transition: str, noise_schedule: str) -> Problem:
    """Exact posterior of a small explicit distribution (METHOD.md §8); quality = exact KL(data ‖ sampler)."""
    return _oracle_problem(
        distribution, transition, noise_schedule,
        vocab=args.vocab, seq_len=args.seq_len, num_samples=args.num_samples, seed=args.seed,
    )


def pipeline_problem(args: argparse.Namespace) -> Problem:
    """A countdown `DiscreteDiffusionPipeline` folder (e.g. from scripts/train.py); quality = countdown error rate of
    `--eval-samples` sequences sampled with a fixed seed (the same draws for every grid)."""
    from jys_schedulers.assets import assets_path
    from jys_schedulers.tasks.countdown import countdown_error_rate, generate_countdown

    args.pipeline = args.pipeline or str(assets_path("countdown"))  # default: the bundled countdown model
    pipe, denoiser, max_seq_len = load_pipeline(args.pipeline)
    seq_len = max_seq_len or args.seq_len
    data = generate_countdown(args.num_samples, seq_len=seq_len, seed=args.seed + 1)

    def quality(grid: list[float]) -> float:
        out = pipe(batch_size=args.eval_samples, seq_len=seq_len, timesteps=grid, generator=torch.Generator().manual_seed(0))
        return float(countdown_error_rate(out.sequences.cpu()).mean())

    description = f"pipeline `{args.pipeline}` on countdown (L={seq_len}); {args.num_samples} calibration sequences"
    return Problem(f"pipeline:{args.pipeline}", description, denoiser, pipe.scheduler, data, quality, "countdown error rate")


DEFAULT_ORACLES = [
    ("all_equal", "absorbing", "loglinear"),
    ("markov", "absorbing", "loglinear"),
    ("markov", "absorbing", "cosine"),
    ("markov", "uniform", "loglinear"),
]
PROBLEMS: dict[str, Callable[[argparse.Namespace], list[Problem]]] = {
    "oracle": lambda args: [oracle_problem(args, *spec) for spec in (DEFAULT_ORACLES[:1] if args.quick else DEFAULT_ORACLES)],
    "pipeline": lambda args: [pipeline_problem(args)],
}


# ------------------------------------------------------------------------------------ the reference, faithfully
class ReferenceSearch:
    """The reference hierarchical JYS search (τ-leaping branch of main.py + jys.py), re-implemented.

    Differences that are not the algorithm's: the denoiser is our `(ids, t)` callable (the reference passes σ̄(t)),
    rates come from the scheduler's process (for an `x0` model the same `σ α/(1-α) p` as the reference's legacy
    MaskGIT branch), uniforms are drawn on the CPU, and the uniform process uses our two-channel coupled noise.
    """

    def __init__(self, problem: Problem, batch_size: int, src: int = 1024, eps: float = 1e-3):
        self.problem, self.batch_size, self.src, self.eps = problem, batch_size, src, eps
        self.grid = torch.linspace(1.0, 1e-5, src + 1)  # float32, as the reference
        self.err = 0.25 / src
        self.phi, self.max_iter = 1.618, 32
        self.forwards = 0
        self.evaluations = 0

    def _slice(self, x0: torch.LongTensor, u: torch.Tensor, t: float) -> TimeSlice:
        sched = self.problem.scheduler
        t32 = float(np.float32(t))
        x_t = sched.process.add_noise(x0, sched.noise_schedule.alpha(t32), u)
        with torch.no_grad():
            out = self.problem.denoiser(x_t, torch.full((x0.shape[0],), t32, dtype=torch.float32))
        self.forwards += x0.shape[0]
        alpha = float(sched.noise_schedule.alpha(t32))
        return TimeSlice(t32, x_t, model_posterior(sched.process, out, x_t, alpha, sched.config.prediction_type))

    def klub(self, v1: float, v2: float, v3: float) -> float:
        """`klub_algorithm1_t_q_data`: mean over batches of `mean_{b,l} Σ_y dt R2 (log(R2+1e-8) - log(R1+1e-8))`."""
        self.evaluations += 1
        gen = torch.Generator().manual_seed(42)  # gen1 and gen2 seeded alike: the same uniforms for both times
        sched, data = self.problem.scheduler, self.problem.data
        total, batches = 0.0, 0
        for start in range(0, data.shape[0], self.batch_size):
            x0 = data[start : start + self.batch_size]
            shape = tuple(x0.shape) + ((2,) if sched.process.noise_channels == 2 else ())
            u = torch.rand(shape, generator=gen)
            first, second = self._slice(x0, u, v1), self._slice(x0, u, v2)
            values = paper_divergence(sched.process, sched.noise_schedule, second, first)
            total += (v2 - v3) * float(values.mean())
            batches += 1
        return total / batches

    def golden(self, f: Callable[[float], float], a: float, c: float) -> float:
        """`golden_section_algo`: minimises f; returns the key of the smallest value among all probes."""
        b = a + (c - a) / (1 + self.phi)
        values = {a: f(a), b: f(b), c: f(c)}
        fb, n_iter = values[b], 0
        while c - a > self.err and n_iter < self.max_iter:
            left = b - a > c - b
            x = b - (b - a) / (1 + self.phi) if left else b + (c - b) / (1 + self.phi)
            fx = values[x] = f(x)
            if fx < fb:
                b, fb = x, fx  # the bracket is not shrunk on improvement
            elif left:
                a = x
            else:
                c = x
            n_iter += 1
        return min(values, key=values.get)

    def run(self, levels: int) -> tuple[dict[int, list[float]], dict[int, int]]:
        """Grids for 2^k steps, k = 1..levels, and the cumulative sequence-forwards after each level."""
        src, grid = self.src, self.grid
        schedule_list = [[0, src]]
        grids, forwards = {}, {}
        for level in range(1, levels + 1):
            s = schedule_list[-1]  # correction A mutates the previous level's saved list, as the reference
            for i in range(len(s) - 1):
                if s[i + 1] - s[i] < 2:
                    s[i + 1] = min(s[i] + 2, src)
            for i in range(len(s) - 1, 0, -1):
                if s[i] - s[i - 1] < 2:
                    s[i - 1] = max(s[i] - 2, 0)
            v = [float(grid[i]) for i in s]
            new = []
            for v1, v3 in zip(v, v[1:]):
                new += [v1, self.golden(lambda v2: -self.klub(v1, v2, v3), v3 + self.eps, v1 - self.eps)]
            new.append(v[-1])
            snapped = [int(torch.argmin((grid - value).abs())) for value in new]
            for i in range(len(snapped) - 1):  # correction B
                if snapped[i + 1] - snapped[i] < 1:
                    snapped[i + 1] = min(snapped[i] + 1, src + 1)
            if max(snapped) > src:
                raise RuntimeError("reference correction B produced index src+1 (the reference would crash here)")
            schedule_list.append(snapped)
            grids[2**level] = [float(grid[i]) for i in snapped[:-1]]  # N call times; index src (t=1e-5) is the end
            forwards[2**level] = self.forwards
        return grids, forwards


# ----------------------------------------------------------------------------------------------------- running
@dataclass
class Row:
    method: str
    grids: dict[int, list[float]]
    forwards: int | None
    wall_s: float | None
    forwards_by_n: dict[int, int] | None = None


def run_problem(problem: Problem, args: argparse.Namespace) -> tuple[list[Row], dict, list[str]]:
    steps = sorted(args.steps)
    common = dict(batch_size=args.batch_size, seed=args.seed, progress=False)
    rows: list[Row] = []
    notes: list[str] = []

    def ours(label: str, **kwargs) -> object:
        start = time.perf_counter()
        result = calibrate(problem.denoiser, problem.scheduler, problem.data, steps, **common, **kwargs)
        wall = time.perf_counter() - start
        rows.append(Row(label, {n: result.schedules[str(n)] for n in steps}, result.report["sequence_forwards"], wall))
        print(f"  {label}: {result.report['sequence_forwards']:,} forwards, {wall:.1f} s", flush=True)
        return result

    dp = ours(f"ours: DP, kl (G={args.num_candidates})", num_candidates=args.num_candidates)
    ours("ours: DP, kl (G=64)", num_candidates=64)
    if not args.quick:
        ours(f"ours: DP, paper (G={args.num_candidates})", num_candidates=args.num_candidates, objective="paper")
        for search in ("hierarchical", "greedy"):
            for objective in ("kl", "paper"):
                ours(f"ours: {search}, {objective}", search=search, objective=objective, cache_posteriors=True)

    if all(n & (n - 1) == 0 and n >= 2 for n in steps):
        reference = ReferenceSearch(problem, args.batch_size)
        start = time.perf_counter()
        grids, forwards = reference.run(int(math.log2(max(steps))))
        wall = time.perf_counter() - start
        rows.append(Row("reference (paper gain, reference golden section)", grids, reference.forwards, wall, forwards))
        print(f"  reference: {reference.forwards:,} forwards, {reference.evaluations} gain evaluations, {wall:.1f} s", flush=True)
    else:
        notes.append("The reference search needs power-of-two step counts; it was skipped.")

    ns = problem.scheduler.noise_schedule
    rows.append(Row("uniform grid", {n: uniform_timesteps(n) for n in steps}, None, None))
    rows.append(Row("cosine grid", {n: cosine_timesteps(n, ns) for n in steps}, None, None))
    values = {}
    for row in rows:
        for n in steps:
            values[row.method, n] = (problem.quality(row.grids[n]), dp.bound(row.grids[n]))
    return rows, values, notes


def problem_markdown(problem: Problem, rows: list[Row], values: dict, notes: list[str], steps: list[int]) -> str:
    reference = next((r for r in rows if r.method.startswith("reference")), None)
    uniform = next(r for r in rows if r.method == "uniform grid")
    out = [f"### {problem.name}", "", problem.description + ".", ""]
    head = "| method | sequence-forwards (all N) | vs reference | wall s | " + " | ".join(f"N={n}" for n in steps) + " |"
    out += [f"**{problem.quality_name}** of each grid (lower is better; in brackets: uniform grid / this grid)", ""]
    out += [head, "|" + "---|" * (4 + len(steps))]
    for row in rows:
        fw = f"{row.forwards:,}" if row.forwards is not None else "0"
        ratio = f"1/{reference.forwards / row.forwards:.1f}" if reference and row.forwards else "-"
        wall = f"{row.wall_s:.1f}" if row.wall_s is not None else "-"
        cells = [f"{_fmt(values[row.method, n][0])} ({values[uniform.method, n][0] / values[row.method, n][0]:.2f})" for n in steps]
        out.append(f"| {row.method} | {fw} | {ratio} | {wall} | " + " | ".join(cells) + " |")
    out += ["", "**Objective reached**: posterior-KL bound of each grid (nats per token, scored on the DP statistics "
            "with `CalibrationResult.bound`; the DP rows minimise it over their candidates)", ""]
    out += ["| method | " + " | ".join(f"N={n}" for n in steps) + " |", "|" + "---|" * (1 + len(steps))]
    for row in rows:
        out.append(f"| {row.method} | " + " | ".join(_fmt(values[row.method, n][1]) for n in steps) + " |")
    if reference is not None and reference.forwards_by_n:
        dp = rows[0]
        per_n = ", ".join(
            f"N={n}: {reference.forwards_by_n[n]:,} (ours {dp.forwards:,}, 1/{reference.forwards_by_n[n] / dp.forwards:.1f})"
            for n in steps
        )
        out += ["", f"Reference forwards to reach each N (levels are sequential): {per_n}."]
    out += [""] + [f"- {note}" for note in notes]
    return "\n".join(out).rstrip() + "\n"


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def summary_row(problem: Problem, rows: list[Row], values: dict, steps: list[int]) -> str:
    """One line per problem: forwards of our DP and of the reference, and quality ratios over all step counts."""
    dp, uniform = rows[0], next(r for r in rows if r.method == "uniform grid")
    reference = next((r for r in rows if r.method.startswith("reference")), None)

    def ratio(a: Row, b: Row) -> str:  # quality of a / quality of b, over N (> 1: b is better)
        return _span([values[a.method, n][0] / values[b.method, n][0] for n in steps])

    if reference is None:
        return f"| {problem.name} | {dp.forwards:,} | - | - | {ratio(uniform, dp)} | - | - |"
    return (
        f"| {problem.name} | {dp.forwards:,} | {reference.forwards:,} | 1/{reference.forwards / dp.forwards:.1f} | "
        f"{ratio(uniform, dp)} | {ratio(uniform, reference)} | {ratio(reference, dp)} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="oracle")
    parser.add_argument(
        "--pipeline", help="saved DiscreteDiffusionPipeline folder (--problem pipeline; default: the bundled countdown one)"
    )
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--num-samples", type=positive_int, default=1024, help="calibration sequences")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--num-candidates", type=positive_int, default=128)
    parser.add_argument("--vocab", type=positive_int, default=3, help="oracle data tokens")
    parser.add_argument("--seq-len", type=positive_int, default=4, help="oracle sequence length")
    parser.add_argument("--eval-samples", type=positive_int, default=512, help="sampled sequences per grid (--problem pipeline)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--quick", action="store_true", help="one problem, DP and reference rows only (a smoke test)")
    parser.add_argument("--output", default="docs/benchmarks_calibration.md")
    args = parser.parse_args(argv)

    sections, summary = [], []
    for problem in PROBLEMS[args.problem](args):
        print(f"{problem.name}:", flush=True)
        rows, values, notes = run_problem(problem, args)
        sections.append(problem_markdown(problem, rows, values, notes, sorted(args.steps)))
        summary.append(summary_row(problem, rows, values, sorted(args.steps)))
    command = "python scripts/benchmark_calibration.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [
        "# Calibration benchmarks",
        "",
        environment_line("scripts/benchmark_calibration.py", command),
        "",
        "A *sequence-forward* is one model call on one sequence. Our scheduler samples N steps with N model calls; the "
        "reference spends N + 1 (a final denoising call at t = 1e-5): every grid below is sampled by the same N-call "
        "Tweedie sampler, i.e. quality is compared at equal model calls. `vs reference` is the share of the "
        "reference's forwards (for all step counts together).",
        "",
        f"## Summary (N = {', '.join(str(n) for n in sorted(args.steps))}; ranges over N)",
        "",
        "`A / B` is the quality measure of A's grid divided by B's, as a range over N; lower quality measures are "
        "better, so `A / B > 1` means B's grid is better.",
        "",
        "| problem | DP forwards | reference forwards | DP share | uniform / DP | uniform / reference | "
        "reference / DP |",
        "|---|---|---|---|---|---|---|",
        *summary,
        "",
        "## Details",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
