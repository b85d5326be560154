#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Calibrate Jump Your Steps grids for a discrete diffusion pipeline and save (or push) its scheduler.

One process:        python scripts/calibrate.py --model bundled --data countdown --nfe 4 8 16 32 64
Several processes:  accelerate launch --multi_gpu --num_processes 2 scripts/calibrate.py ...   (CPU processes here)
Publish:            ... --push-to-hub org/model-jys    (then JYSDiscreteScheduler.from_pretrained(repo, subfolder="scheduler"))

The calibration data is sharded across processes and the statistics are summed, so any process count gives the same
grids. Only the main process writes, under `--output-dir`:

- `scheduler/scheduler_config.json`: the calibrated `JYSDiscreteScheduler` (grids in `jys_schedules`, provenance in
  `calibration_info`);
- `calibration_report.json`: objective values per step count (and those of the uniform and cosine grids), model calls
  (sequence-forwards), wall time, sources;
- `calibration.png`: the grids against the uniform grid, and the bound per step count;
- `calibration_state.json`: the resumable state (rerun with `--resume` after an interruption).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import positive_int  # noqa: E402

from jys_schedulers.io_utils import atomic_save_folder, atomic_write_bytes, atomic_write_text  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", default="bundled",
                        help="'bundled', a local DiscreteDiffusionPipeline folder, or a Hub id of one")
    parser.add_argument("--revision", default=None, help="Hub revision of --model")
    parser.add_argument("--scheduler", default=None,
                        help="optional scheduler folder or Hub id (subfolder 'scheduler' if present) whose config is "
                             "the base of the calibrated scheduler (e.g. its sampler); defaults to the pipeline's")
    parser.add_argument("--data", default="countdown",
                        help="'countdown' or 'text' (bundled tasks), a token tensor file (.pt/.safetensors, "
                             "LongTensor (N, L)) or a text file (.txt) tokenised with --tokenizer or the pipeline's")
    parser.add_argument("--tokenizer", default=None, help="tokenizer.json or transformers tokenizer folder for .txt data")
    parser.add_argument("--num-samples", type=positive_int, default=64, help="calibration sequences")
    parser.add_argument("--data-seed", type=int, default=1234, help="seed of generated task data")
    parser.add_argument("--nfe", type=positive_int, nargs="+", default=[4, 8, 16, 32, 64],
                        help="step counts (= model calls when sampling) to calibrate")
    parser.add_argument("--sampler", choices=["tweedie", "euler"], default=None,
                        help="sampler stored in the output scheduler (default: the base scheduler's)")
    parser.add_argument("--search", choices=["dp", "hierarchical", "greedy"], default="dp")
    parser.add_argument("--objective", choices=["kl", "paper"], default="kl")
    parser.add_argument("--num-candidates", type=positive_int, default=None,
                        help="candidate times of the DP (default: max(128, 4 x the largest --nfe))")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="sequences per global batch")
    parser.add_argument("--top-k", type=positive_int, default=None, help="top-k reduction for large vocabularies")
    parser.add_argument("--polish", action="store_true", help="continuous polish of the DP grids (no model calls)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the coupled calibration noise")
    parser.add_argument("--output-dir", default="outputs/calibration")
    parser.add_argument("--resume", action="store_true", help="continue from --output-dir/calibration_state.json")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO", help="push the scheduler to REPO/scheduler")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.search == "dp" and args.num_candidates is not None and max(args.nfe) > args.num_candidates:
        parser.error(f"--nfe {max(args.nfe)} exceeds --num-candidates {args.num_candidates} (the DP places at most "
                     "that many steps)")
    return args


# ------------------------------------------------------------------------------------------------------- loading
def load_pipeline(model: str, revision: str | None):
    """The pipeline named by `--model`, with a clear error for a missing folder or an unreachable Hub."""
    from jys_schedulers.assets import load_bundled_pipeline
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline

    if model == "bundled":
        return load_bundled_pipeline("countdown"), "bundled:countdown"
    path = Path(model)
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise SystemExit(f"error: --model {model!r} is a path but holds no model_index.json (not a pipeline folder)")
        return DiscreteDiffusionPipeline.from_pretrained(path), str(path.resolve())
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise SystemExit(f"error: --model {model!r}: no such folder (and not a Hub id of the form 'org/name')")
    try:
        return DiscreteDiffusionPipeline.from_pretrained(model, revision=revision), model
    except Exception as err:  # noqa: BLE001 - the Hub client raises many types; report them all the same way
        raise SystemExit(f"error: could not load --model {model!r} from the Hub ({type(err).__name__}: {err}). "
                         "Check the id, your network and HF_HUB_OFFLINE.") from None


def load_base_scheduler(spec: str | None, pipe):
    from jys_schedulers import JYSDiscreteScheduler

    if spec is None:
        return pipe.scheduler
    path = Path(spec)
    subfolder = "scheduler" if (path / "scheduler" / "scheduler_config.json").is_file() else None
    try:
        return JYSDiscreteScheduler.from_pretrained(spec, subfolder=subfolder)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: could not load --scheduler {spec!r}: {err}") from None


def _windows(tokens, seq_len: int, num: int, source: str):
    import torch

    tokens = torch.as_tensor(tokens, dtype=torch.long).reshape(-1)
    available = tokens.numel() // seq_len
    if available < num:
        raise SystemExit(f"error: --data {source!r} gives {available} windows of {seq_len} tokens; --num-samples "
                         f"asks for {num}")
    return tokens[: num * seq_len].reshape(num, seq_len)


def load_data(args: argparse.Namespace, pipe, seq_len: int, vocab_size: int, mask_token_id: int | None):
    """Clean calibration sequences (N, seq_len) from `--data`, checked against the model's vocabulary."""
    import torch

    source = args.data
    if source == "countdown":
        from jys_schedulers.tasks import CountdownTask

        num_digits = mask_token_id if mask_token_id is not None else vocab_size
        data = CountdownTask(seq_len=seq_len, num_digits=num_digits).sample(args.num_samples, seed=args.data_seed)
    elif source == "text":
        from jys_schedulers.tasks import TextTask

        data = TextTask(seq_len=seq_len, tokenizer="char").windows("train", args.num_samples, seed=args.data_seed)
    elif source.endswith((".pt", ".pth", ".safetensors")):
        path = Path(source)
        if not path.is_file():
            raise SystemExit(f"error: --data {source!r}: no such file")
        if source.endswith(".safetensors"):
            from safetensors.torch import load_file

            tensors = load_file(str(path))
            data = tensors.get("input_ids", next(iter(tensors.values())) if len(tensors) == 1 else None)
            if data is None:
                raise SystemExit(f"error: --data {source!r} must hold one tensor or an 'input_ids' tensor")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.dtype.is_floating_point:
            raise SystemExit(f"error: --data {source!r} must hold an integer tensor of shape (N, L)")
        if data.shape[1] != seq_len:
            raise SystemExit(f"error: --data sequences have length {data.shape[1]}, the model expects {seq_len}")
        if data.shape[0] < args.num_samples:
            raise SystemExit(f"error: --data holds {data.shape[0]} sequences, --num-samples asks for {args.num_samples}")
        data = data[: args.num_samples].long()
    elif source.endswith(".txt"):
        path = Path(source)
        if not path.is_file():
            raise SystemExit(f"error: --data {source!r}: no such file")
        text = path.read_text(encoding="utf-8")
        data = _windows(_tokenize(text, args.tokenizer, pipe), seq_len, args.num_samples, source)
    else:
        raise SystemExit(f"error: --data {source!r}: expected 'countdown', 'text', a .pt/.safetensors file or a .txt file")
    data = torch.as_tensor(data, dtype=torch.long)
    if int(data.min()) < 0 or int(data.max()) >= vocab_size or (mask_token_id is not None and bool((data == mask_token_id).any())):
        raise SystemExit(f"error: --data token ids must lie in [0, {vocab_size}) and exclude the mask id {mask_token_id}")
    return data


def _tokenize(text: str, tokenizer_spec: str | None, pipe) -> list[int]:
    if tokenizer_spec is None:
        if getattr(pipe, "tokenizer", None) is None:
            raise SystemExit("error: --data is a text file: pass --tokenizer (the pipeline has none)")
        return pipe.tokenizer(text, add_special_tokens=False)["input_ids"]
    path = Path(tokenizer_spec)
    if path.is_file():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(path)).encode(text).ids
    if path.is_dir():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(path, local_files_only=True)(text, add_special_tokens=False)["input_ids"]
    raise SystemExit(f"error: --tokenizer {tokenizer_spec!r}: no such file or folder")


# ------------------------------------------------------------------------------------------------------- outputs
def plot(result, reference: dict[str, dict[int, float]], path: Path) -> None:
    """Left: calibrated call times against the uniform grid. Right: the objective per step count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for n, grid in sorted(result.schedules.items(), key=lambda kv: int(kv[0])):
        n = int(n)
        left.plot([i / n for i in range(n)] + [1.0], grid + [0.0], marker="o", ms=2.5, lw=1, label=f"JYS, {n} steps")
    left.plot([0, 1], [1, 0], "k--", lw=1, label="uniform")
    left.set(xlabel="step index / N", ylabel="time t", title="calibrated grids")
    left.legend(fontsize=7)
    counts = sorted(int(n) for n in result.schedules)
    key = "bound" if result.report["search"] == "dp" else "total_gain"
    ours = [result.report["step_counts"][str(n)][key] for n in counts]
    right.plot(counts, ours, marker="o", label=f"JYS ({key})")
    for name, values in reference.items():
        right.plot(counts, [values[n] for n in counts], marker="s", ls="--", label=name)
    right.set(xscale="log", yscale="log", xlabel="steps", ylabel=f"{result.report['objective']} objective (nats/token)",
              title="bound per step count" if key == "bound" else "total insertion gain")
    right.set_xticks(counts, [str(n) for n in counts])
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def push(scheduler, repo: str, output_dir: Path, argv: list[str]) -> bool:
    """Push `scheduler` to `repo` (subfolder `scheduler`); on failure keep the local output and say what to rerun."""
    try:
        url = scheduler.push_to_hub(repo, subfolder="scheduler")
    except Exception as err:  # noqa: BLE001 - any client/network failure is reported the same way
        rerun = " ".join(["python", "scripts/calibrate.py", *argv] + ([] if "--resume" in argv else ["--resume"]))
        print(f"error: push to {repo!r} failed ({type(err).__name__}: {err}).\n"
              f"The calibrated scheduler is saved in {output_dir / 'scheduler'}; nothing was lost. Rerun (it resumes "
              f"from the finished state, no model calls) with:\n  {rerun}", file=sys.stderr)
        return False
    print(f"pushed to {url}")
    return True


# ---------------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import torch
    from accelerate import Accelerator

    from jys_schedulers import JYSDiscreteScheduler
    from jys_schedulers.calibration import calibrate
    from jys_schedulers.schedules import cosine_timesteps, uniform_timesteps

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    output_dir = Path(args.output_dir)
    state_path = output_dir / "calibration_state.json"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if state_path.exists() and not args.resume:
            raise SystemExit(f"error: {state_path} exists: pass --resume to continue it, or choose another --output-dir")
    accelerator.wait_for_everyone()

    pipe, model_source = load_pipeline(args.model, args.revision)
    pipe.to(accelerator.device)
    base = load_base_scheduler(args.scheduler, pipe)
    if not isinstance(base, JYSDiscreteScheduler):
        raise SystemExit(f"error: the pipeline's scheduler is a {type(base).__name__}, not a JYSDiscreteScheduler")
    if args.sampler is not None:
        base = JYSDiscreteScheduler.from_config(base.config, sampler=args.sampler)
    pipe.scheduler = base
    denoiser = pipe.denoiser("main")
    seq_len = getattr(denoiser, "max_seq_len", None)
    if seq_len is None:
        raise SystemExit("error: the model does not declare its sequence length (max_seq_len)")
    data = load_data(args, pipe, seq_len, base.config.vocab_size, base.config.mask_token_id)

    started = time.perf_counter()
    try:
        result = calibrate(
            denoiser, base, data, args.nfe, search=args.search, objective=args.objective,
            num_candidates=args.num_candidates, batch_size=args.batch_size, seed=args.seed, top_k=args.top_k,
            state_path=str(state_path), accelerator=accelerator, polish=args.polish, progress=not args.no_progress,
        )
    except ValueError as err:  # bad data/arguments found by the library: report them without a traceback
        raise SystemExit(f"error: {err}") from None
    scheduler = result.to_scheduler(base)
    if not accelerator.is_main_process:
        return 0

    info = dict(scheduler.config.calibration_info)
    info.update(model=model_source, model_revision=args.revision, data=args.data, num_samples=args.num_samples,
                sampler=scheduler.config.sampler)
    scheduler.register_to_config(calibration_info=info)
    atomic_save_folder(output_dir / "scheduler", scheduler.save_pretrained)
    reference: dict[str, dict[int, float]] = {}
    if result.divergence is not None:  # the DP statistics also score the heuristic grids, at no model calls
        for name, make in (("uniform", uniform_timesteps), ("cosine", cosine_timesteps)):
            reference[name] = {n: result.bound(make(n, base.noise_schedule)) for n in args.nfe}
    report = {
        **result.report,
        "model": model_source,
        "data": args.data,
        "num_processes": accelerator.num_processes,
        "device": str(accelerator.device),
        "total_wall_time_s": time.perf_counter() - started,
        "reference_bounds": {name: {str(n): v for n, v in values.items()} for name, values in reference.items()},
        "schedules": result.schedules,
    }
    atomic_write_text(output_dir / "calibration_report.json", json.dumps(report, indent=2))
    plot(result, reference, output_dir / "calibration.png")

    print(f"calibrated {len(result.schedules)} grids with {report['sequence_forwards']} sequence-forwards "
          f"in {report['total_wall_time_s']:.1f} s on {accelerator.num_processes} process(es)")
    key = "bound" if result.report["search"] == "dp" else "total_gain"
    header = f"{'steps':>6} {('JYS ' + key):>14}" + "".join(f" {name:>12}" for name in reference)
    print(header)
    for n in sorted(int(k) for k in result.schedules):
        row = f"{n:>6} {result.report['step_counts'][str(n)][key]:>14.5f}"
        print(row + "".join(f" {reference[name][n]:>12.5f}" for name in reference))
    print(f"scheduler saved to {output_dir / 'scheduler'}")
    if args.push_to_hub and not push(scheduler, args.push_to_hub, output_dir, argv):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
