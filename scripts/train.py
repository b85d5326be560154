#!/usr/bin/env python
# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Train the built-in `DiscreteDiffusionTransformer` on a ground-truth task and save a pipeline folder.

The folder is a `DiscreteDiffusionPipeline` (`model_index.json`, `transformer/`, `scheduler/` with no calibrated
grids yet) plus `training_report.json` (command, arguments, model size, loss history, held-out cross-entropy and
negative ELBO, sample quality at `--eval-steps` uniform steps, wall times, versions). Calibrate it afterwards with
`jys_schedulers.calibration`.

Examples:
    python scripts/train.py --task countdown --output-dir outputs/countdown
    python scripts/train.py --task text --tokenizer char --seq-len 128 --steps 3000 --output-dir outputs/text
    accelerate launch --multi_gpu --num_processes 2 --cpu scripts/train.py --task countdown --output-dir outputs/cd
    accelerate launch scripts/train.py --mixed-precision bf16 --task countdown --output-dir outputs/cd   # a GPU

Batch sizes are per process; the global batch is `--batch-size x processes x --gradient-accumulation-steps`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import non_negative_int, positive_float, positive_int  # noqa: E402

from jys_schedulers.io_utils import atomic_save_folder  # noqa: E402

import torch


TASKS = ("countdown", "text")
TRANSITIONS = ("absorbing", "uniform")
SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_SEQ_LEN = {"countdown": 256, "text": 128}





def build_parser() -> argparse.ArgumentParser:
    from jys_schedulers.noise_schedules import NOISE_SCHEDULES
    from jys_schedulers.training import WEIGHTINGS

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    task = parser.add_argument_group("task")
    task.add_argument("--task", choices=TASKS, default="countdown")
    task.add_argument("--transition", choices=TRANSITIONS, default="absorbing")
    task.add_argument("--noise-schedule", choices=sorted(NOISE_SCHEDULES), default="loglinear")
    task.add_argument("--seq-len", type=positive_int, default=None, help="default: 256 (countdown), 128 (text)")
    task.add_argument("--num-digits", type=positive_int, default=32, help="countdown digits 0..N-1")
    task.add_argument("--tokenizer", choices=("char", "bpe"), default="char", help="text task tokenizer")
    task.add_argument("--bpe-vocab-size", type=positive_int, default=512, help="text task, --tokenizer bpe")
    task.add_argument("--num-train", type=positive_int, default=32768, help="training sequences")
    task.add_argument("--num-heldout", type=positive_int, default=512, help="held-out sequences for the losses")

    model = parser.add_argument_group("model (DiscreteDiffusionTransformer)")
    model.add_argument("--hidden-size", type=positive_int, default=128)
    model.add_argument("--num-layers", type=positive_int, default=4)
    model.add_argument("--num-heads", type=positive_int, default=4)
    model.add_argument("--mlp-ratio", type=positive_float, default=4.0)
    model.add_argument("--dropout", type=float, default=0.0)
    model.add_argument("--no-time-conditioning", action="store_true", help="a time-agnostic model (MDLM-OWT style)")

    train = parser.add_argument_group("training")
    train.add_argument("--steps", type=positive_int, default=2000, help="optimizer steps")
    train.add_argument("--batch-size", type=positive_int, default=64, help="per process and micro-batch")
    train.add_argument("--gradient-accumulation-steps", type=positive_int, default=1)
    train.add_argument("--lr", type=positive_float, default=1e-3)
    train.add_argument("--warmup-steps", type=non_negative_int, default=None, help="default: min(500, steps // 10)")
    train.add_argument("--min-lr-ratio", type=float, default=0.1)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--grad-clip", type=positive_float, default=1.0)
    train.add_argument("--ema-decay", type=float, default=None)
    train.add_argument("--t-min-train", type=float, default=1e-3, help="smallest training time")
    train.add_argument("--weighting", choices=WEIGHTINGS, default="none")
    train.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
                       help="default: accelerate's configuration")
    train.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--log-every", type=positive_int, default=50)

    evaluation = parser.add_argument_group("evaluation and output")
    evaluation.add_argument("--eval-samples", type=non_negative_int, default=256, help="0 skips sampling")
    evaluation.add_argument("--eval-steps", type=positive_int, nargs="+", default=[64],
                            help="uniform-grid step counts to sample at")
    evaluation.add_argument("--eval-batch-size", type=positive_int, default=64)
    evaluation.add_argument("--save-dtype", choices=sorted(SAVE_DTYPES), default="float32",
                            help="dtype of the saved weights")
    evaluation.add_argument("--output-dir", type=Path, required=True)
    evaluation.add_argument("--overwrite", action="store_true", help="replace an existing --output-dir")
    evaluation.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and cross-check the arguments; errors name the flag and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.seq_len = args.seq_len or DEFAULT_SEQ_LEN[args.task]
    if args.seq_len < 2:
        parser.error(f"--seq-len must be >= 2, got {args.seq_len}")
    if args.task == "countdown" and args.num_digits < 2:
        parser.error(f"--num-digits must be >= 2, got {args.num_digits}")
    if args.hidden_size % args.num_heads or (args.hidden_size // args.num_heads) % 2:
        parser.error(
            f"--hidden-size ({args.hidden_size}) must be divisible by --num-heads ({args.num_heads}) with an even head "
            "size"
        )
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0.0 <= args.min_lr_ratio <= 1.0:
        parser.error(f"--min-lr-ratio must be in [0, 1], got {args.min_lr_ratio}")
    if not 0.0 <= args.weight_decay <= 1.0:
        parser.error(f"--weight-decay must be in [0, 1], got {args.weight_decay}")
    if args.ema_decay is not None and not 0.0 < args.ema_decay < 1.0:
        parser.error(f"--ema-decay must be in (0, 1), got {args.ema_decay}")
    if not 0.0 <= args.t_min_train < 1.0:
        parser.error(f"--t-min-train must be in [0, 1), got {args.t_min_train}")
    if args.weighting == "elbo" and args.transition != "absorbing":
        parser.error("--weighting elbo applies to --transition absorbing only")
    if args.output_dir.exists() and not args.overwrite and (not args.output_dir.is_dir() or any(args.output_dir.iterdir())):
        parser.error(f"--output-dir {args.output_dir} exists and is not empty; pass --overwrite to replace it")
    return args


# ------------------------------------------------------------------------------------------------------- task data
def load_task(args: argparse.Namespace):
    """`(train, heldout, num_data_tokens, task_info, metric)`: clean sequences and the task's sample metric, a function
    `samples -> dict` of quality numbers."""
    if args.task == "countdown":
        from jys_schedulers.tasks import CountdownTask, expected_random_error_rate

        task = CountdownTask(seq_len=args.seq_len, num_digits=args.num_digits)
        train = task.sample(args.num_train, seed=args.seed)
        heldout = task.sample(args.num_heldout, seed=args.seed + 1_000_003)
        info = {"name": "countdown", "seq_len": args.seq_len, "num_digits": args.num_digits,
                "random_error_rate": expected_random_error_rate(args.seq_len, args.num_digits)}

        def metric(samples: torch.Tensor) -> dict:
            return {"countdown_error_rate": float(task.error_rate(samples).mean()),
                    "countdown_error_rate_reference_quirk": float(task.error_rate_reference(samples).mean())}

        return train, heldout, task.num_data_tokens, info, metric

    from jys_schedulers.tasks import TextTask, unigram_entropy

    task = TextTask(seq_len=args.seq_len, tokenizer=args.tokenizer,
                    vocab_size=args.bpe_vocab_size if args.tokenizer == "bpe" else None)
    train = task.windows("train", num_windows=args.num_train, seed=args.seed)
    heldout = task.windows("heldout", num_windows=args.num_heldout, seed=args.seed + 1_000_003)
    info = {"name": "text", **task.info(), "heldout_unigram_entropy": unigram_entropy(heldout, task.num_data_tokens)}

    def metric(samples: torch.Tensor) -> dict:
        return {"unigram_entropy": unigram_entropy(samples, task.num_data_tokens),
                "example": task.decode(samples[0])[:200]}

    return train, heldout, task.num_data_tokens, info, metric


# ---------------------------------------------------------------------------------------------------------- output
def save_atomically(pipe, report: dict, output_dir: Path, overwrite: bool) -> None:
    """Write the pipeline and the report to a temporary sibling folder, then move it into place (a crash leaves
    either the old folder or the new one, never a half-written one). An empty existing folder is replaced."""

    def write(folder: Path) -> None:
        pipe.save_pretrained(folder)
        (folder / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")

    replaceable = overwrite or not output_dir.exists() or (output_dir.is_dir() and not any(output_dir.iterdir()))
    try:
        atomic_save_folder(output_dir, write, overwrite=replaceable)
    except FileExistsError:
        raise FileExistsError(f"{output_dir} appeared during training; not replacing it without --overwrite") from None


def folder_size(path: Path) -> int:
    """Total bytes of the files under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@torch.inference_mode()
def sample_quality(pipe, args: argparse.Namespace, metric, device: torch.device, num_steps: int) -> dict:
    """Quality of `--eval-samples` samples drawn with `num_steps` uniform steps (seeded per chunk)."""
    chunks = []
    for index, start in enumerate(range(0, args.eval_samples, args.eval_batch_size)):
        size = min(args.eval_batch_size, args.eval_samples - start)
        generator = torch.Generator(device=device).manual_seed(args.seed + index)
        out = pipe(batch_size=size, seq_len=args.seq_len, num_inference_steps=num_steps, schedule="uniform",
                   generator=generator)
        chunks.append(out.sequences.cpu())
    return {"num_samples": args.eval_samples, "num_inference_steps": num_steps, "schedule": "uniform",
            **metric(torch.cat(chunks))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import accelerate
    import diffusers
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    import jys_schedulers
    from jys_schedulers import JYSDiscreteScheduler
    from jys_schedulers.models import DiscreteDiffusionTransformer
    from jys_schedulers.pipelines import DiscreteDiffusionPipeline
    from jys_schedulers.training import evaluate_denoiser, train_denoiser

    accelerator = Accelerator(
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
    )
    started = time.perf_counter()
    train_data, heldout, num_data_tokens, task_info, metric = load_task(args)
    absorbing = args.transition == "absorbing"
    vocab_size = num_data_tokens + (1 if absorbing else 0)
    scheduler = JYSDiscreteScheduler(
        vocab_size=vocab_size,
        mask_token_id=num_data_tokens if absorbing else None,
        transition=args.transition,
        noise_schedule=args.noise_schedule,
    )
    set_seed(args.seed)
    model = DiscreteDiffusionTransformer(
        vocab_size=vocab_size,
        max_seq_len=args.seq_len,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        mlp_ratio=args.mlp_ratio,
        dropout=args.dropout,
        time_conditioning=not args.no_time_conditioning,
    )
    num_params = sum(p.numel() for p in model.parameters())
    if accelerator.is_main_process:
        print(f"task {args.task} ({args.transition}, L={args.seq_len}, V={vocab_size}); model {num_params:,} "
              f"parameters; {accelerator.num_processes} process(es) on {accelerator.device}", flush=True)

    result = train_denoiser(
        model, scheduler, train_data, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, min_lr_ratio=args.min_lr_ratio, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, ema_decay=args.ema_decay, t_min=args.t_min_train, weighting=args.weighting,
        seed=args.seed, accelerator=accelerator, log_every=args.log_every, progress=not args.no_progress,
    )
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return 0

    model = result.model.float()
    with torch.no_grad():  # evaluate the weights as they will be saved
        for p in model.parameters():
            p.copy_(p.to(SAVE_DTYPES[args.save_dtype]))
    eval_start = time.perf_counter()
    losses = evaluate_denoiser(model, scheduler, heldout, batch_size=args.eval_batch_size, t_min=args.t_min_train, seed=args.seed)
    pipe = DiscreteDiffusionPipeline(transformer=model, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    quality = [sample_quality(pipe, args, metric, accelerator.device, n) for n in args.eval_steps if args.eval_samples]
    eval_time = time.perf_counter() - eval_start

    report = {
        "command": " ".join(sys.argv) if argv is None else " ".join(argv),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "task": task_info,
        "model": {"class": "DiscreteDiffusionTransformer", "num_parameters": num_params,
                  "config": {k: v for k, v in dict(model.config).items() if not k.startswith("_")},
                  "saved_dtype": args.save_dtype},
        "training": {"steps": result.steps, "sequences_seen": result.sequences_seen,
                     "tokens_seen": result.sequences_seen * args.seq_len, "ema": result.ema,
                     "wall_time_s": round(result.wall_time_s, 2), "final_loss": result.history[-1]["loss"],
                     "history": result.history},
        "evaluation": {"heldout": losses, "samples": quality, "wall_time_s": round(eval_time, 2)},
        "environment": {"device": str(accelerator.device), "num_processes": accelerator.num_processes,
                        "mixed_precision": accelerator.mixed_precision, "torch_threads": torch.get_num_threads(),
                        "platform": platform.platform(), "python": platform.python_version(),
                        "torch": torch.__version__, "diffusers": diffusers.__version__,
                        "accelerate": accelerate.__version__, "jys_schedulers": jys_schedulers.__version__},
        "total_wall_time_s": round(time.perf_counter() - started, 2),
    }
    if args.save_dtype != "float32":
        pipe.transformer.to(SAVE_DTYPES[args.save_dtype])
    save_atomically(pipe, report, args.output_dir, args.overwrite)
    size = folder_size(args.output_dir)
    print(f"held-out cross-entropy {losses['cross_entropy']:.4f} nats"
          + (f", NELBO {losses['nelbo']:.4f} nats/token" if losses["nelbo"] is not None else ""))
    for entry in quality:
        print(f"samples at {entry['num_inference_steps']} uniform steps:",
              {k: round(v, 4) for k, v in entry.items() if isinstance(v, float)})
    print(f"saved {args.output_dir} ({size / 1e6:.2f} MB) in {report['total_wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
