"""`scripts/calibrate.py` end to end: outputs, 2 processes == 1, resume, Hub push/load and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.models import DiscreteDiffusionTransformer
from jys_schedulers.pipelines import DiscreteDiffusionPipeline
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "calibrate.py"
V, MASK, L = 5, 4, 8
FAST = ["--nfe", "2", "3", "--num-candidates", "8", "--num-samples", "8", "--batch-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random-init pipeline and clean calibration data on disk."""
    root = tmp_path_factory.mktemp("calibrate")
    torch.manual_seed(0)
    model = DiscreteDiffusionTransformer(vocab_size=V, max_seq_len=L, hidden_size=16, num_layers=1, num_heads=2,
                                         time_embedding_dim=16)
    for p in model.parameters():  # the zero-initialised heads would make every posterior uniform
        torch.nn.init.normal_(p, std=0.3)
    scheduler = JYSDiscreteScheduler(vocab_size=V, mask_token_id=MASK)
    DiscreteDiffusionPipeline(transformer=model, scheduler=scheduler).save_pretrained(root / "pipe")
    data = torch.randint(0, MASK, (16, L), generator=torch.Generator().manual_seed(0))
    torch.save(data, root / "data.pt")
    torch.save(data[:, :5].contiguous(), root / "short.pt")
    return root


def run(args, env=None, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


calibrate_script = load_script("calibrate")


def main_error(args) -> str:
    """Run the script's `main` in this process (no interpreter start-up) and return its error message."""
    with pytest.raises(SystemExit) as info:
        calibrate_script.main([str(a) for a in args])
    assert info.value.code not in (0, None)
    return str(info.value.code)


def grids(output_dir: Path) -> dict:
    return json.loads((output_dir / "scheduler" / "scheduler_config.json").read_text())["jys_schedules"]


def test_single_process_outputs_and_resume(tiny, tmp_path):
    out = tmp_path / "out"
    args = ["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST, "--output-dir", out]
    first = run(args)
    assert first.returncode == 0, first.stderr
    sched = JYSDiscreteScheduler.from_pretrained(out, subfolder="scheduler")
    assert sched.available_schedules == [2, 3]
    assert sched.config.calibration_info["sequence_forwards"] == 8 * 8  # G candidates x N sequences
    report = json.loads((out / "calibration_report.json").read_text())
    assert report["schedules"] == grids(out) and report["num_processes"] == 1
    assert set(report["reference_bounds"]) == {"uniform", "cosine"}
    for n in ("2", "3"):  # the DP optimum over the candidates is never worse than uniform's cost on them
        assert report["step_counts"][n]["bound"] <= report["reference_bounds"]["uniform"][n] + 1e-9
    assert (out / "calibration.png").stat().st_size > 1000
    assert "--resume" in main_error(args)
    assert calibrate_script.main([str(a) for a in [*args, "--resume"]]) == 0  # finished state: no model calls
    assert grids(out) == report["schedules"]


def test_two_processes_give_the_same_grids(tiny, tmp_path):
    common = ["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST]
    one = run([*common, "--output-dir", tmp_path / "one"])
    assert one.returncode == 0, one.stderr
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
              *map(str, common), "--output-dir", str(tmp_path / "two")]
    two = subprocess.run(launch, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1"))
    assert two.returncode == 0, two.stderr
    report = json.loads((tmp_path / "two" / "calibration_report.json").read_text())
    assert report["num_processes"] == 2
    assert grids(tmp_path / "two") == grids(tmp_path / "one")


def test_push_to_hub_then_load_in_a_fresh_process(tiny, tmp_path, local_hub):
    out = tmp_path / "out"
    pushed = run(["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST, "--output-dir", out,
                  "--push-to-hub", "org/tiny-jys"], env=local_hub.env(tmp_path / "push"))
    assert pushed.returncode == 0, pushed.stderr
    assert "scheduler/scheduler_config.json" in local_hub.server.files("org/tiny-jys")
    loaded = local_hub.run_python(
        "import json; from jys_schedulers import JYSDiscreteScheduler; "
        "s = JYSDiscreteScheduler.from_pretrained('org/tiny-jys', subfolder='scheduler'); "
        "print(json.dumps(s.config.jys_schedules))",
        tmp_path / "load",
    )
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == grids(out)


def test_failed_push_keeps_the_local_output_and_says_what_to_rerun(tiny, tmp_path, local_hub):
    local_hub.server.fail_commits = 403
    out = tmp_path / "out"
    failed = run(["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST, "--output-dir", out,
                  "--push-to-hub", "org/tiny-jys"], env=local_hub.env(tmp_path / "push"))
    assert failed.returncode == 1
    assert "push to 'org/tiny-jys' failed" in failed.stderr and "--resume" in failed.stderr
    assert JYSDiscreteScheduler.from_pretrained(out, subfolder="scheduler").available_schedules == [2, 3]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "does/not/exist/here"], "no such folder"),
        (["--model", "org/unreachable-model"], "could not load --model 'org/unreachable-model' from the Hub"),
        (["--data", "SHORT"], "length 5, the model expects 8"),
        (["--data", "missing.pt"], "no such file"),
        (["--data", "corpus.json"], "expected 'countdown', 'text'"),
        (["--num-samples", "40"], "holds 16 sequences"),
    ],
)
def test_bad_input_is_reported_clearly(tiny, tmp_path, extra, message):
    args = ["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST, "--output-dir", tmp_path / "out"]
    for flag, value in zip(extra[::2], extra[1::2]):
        args[args.index(flag) + 1] = str(tiny / "short.pt") if value == "SHORT" else value
    assert message in main_error(args)


@pytest.mark.parametrize(
    "argv, flag",
    [(["--nfe", "0"], "--nfe"), (["--search", "bisection"], "--search"), (["--objective", "elbo"], "--objective"),
     (["--nfe", "9", "--num-candidates", "8"], "exceeds --num-candidates"), (["--seed", "-1"], "--seed")],
)
def test_bad_arguments_exit_with_usage_errors(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        calibrate_script.parse_args(argv)
    assert info.value.code == 2 and flag in capsys.readouterr().err


def test_library_errors_are_reported_without_a_traceback(tiny, tmp_path):
    """Errors found by `calibrate` (here a top-k as large as the vocabulary) become one-line `error:` exits."""
    args = ["--model", tiny / "pipe", "--data", tiny / "data.pt", *FAST, "--top-k", "5", "--output-dir", tmp_path]
    assert main_error(args).startswith("error: `top_k` must be smaller than the vocabulary")
