"""`calibrate()`: input validation, model-call accounting, batching invariance, resume, distribution over processes,
and the calibrated scheduler."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.calibration import CalibrationResult, calibrate, default_num_candidates
from jys_schedulers.schedules import validate_timesteps
from jys_schedulers.tasks.oracle import make_oracle_distribution, sample_from_distribution
from jys_schedulers.testing import ExactDenoiser

DIST = make_oracle_distribution("markov", 3, 3, seed=1)
DATA = sample_from_distribution(DIST.sequences, DIST.probs, 10, seed=2)
FAST = dict(num_candidates=12, batch_size=4, progress=False)
INTERVAL = dict(batch_size=4, progress=False, max_evaluations=6, line_search_rtol=0.1)


def make(transition="absorbing", prediction_type="x0", noise_schedule="loglinear"):
    kwargs = dict(vocab_size=4, mask_token_id=3) if transition == "absorbing" else dict(vocab_size=3, transition="uniform")
    sched = JYSDiscreteScheduler(**kwargs, prediction_type=prediction_type, noise_schedule=noise_schedule)
    oracle = ExactDenoiser(DIST.sequences, DIST.probs, sched.process, sched.noise_schedule, prediction_type)
    return sched, oracle


class Counting:
    """Counts sequence-forwards; raises after `fail_after` calls (an interruption)."""

    def __init__(self, denoiser, fail_after=None):
        self.denoiser, self.fail_after, self.calls, self.sequences = denoiser, fail_after, 0, 0

    def __call__(self, x, t):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("interrupted")
        self.calls += 1
        self.sequences += x.shape[0]
        return self.denoiser(x, t)


def test_default_num_candidates_grows_with_the_largest_grid():
    assert default_num_candidates([2, 8]) == 128
    assert default_num_candidates([4, 64]) == 256  # 4 candidates per step of the largest grid
    assert default_num_candidates(range(1, 101)) == 400
    with pytest.raises(ValueError, match="step_counts"):
        default_num_candidates([])
    sched, oracle = make()
    counting = Counting(oracle)
    result = calibrate(counting, sched, DATA[:4], [2, 40], batch_size=4, progress=False)
    assert result.report["num_candidates"] == 160
    assert counting.sequences == 4 * 160  # the DP calls the model once per candidate and sequence
    assert len(result.schedules["40"]) == 40


# ------------------------------------------------------------------------------------------------------ bad input
def test_bad_arguments_raise_naming_the_parameter():
    sched, oracle = make()
    cases = [
        (dict(search="bisect"), "search"),
        (dict(objective="elbo"), "objective"),
        (dict(nfe=0), "nfe"),
        (dict(nfe=13), "nfe"),  # more than num_candidates=12
        (dict(nfe=[]), "nfe"),
        (dict(nfe=2.5), "nfe"),
        (dict(batch_size=0), "batch_size"),
        (dict(num_candidates=1), "num_candidates"),
        (dict(seed=-1), "seed"),
        (dict(top_k=2, objective="paper"), "top_k"),
        (dict(top_k=4), "top_k"),
        (dict(data=DATA.float()), "data"),
        (dict(data=DATA[:, :2], seq_len=3), "shorter"),
        (dict(data=torch.cat([DATA, DATA], 1), seq_len=3), "longer"),
        (dict(data=torch.full((4, 3), 3)), "mask token"),
        (dict(data=DATA + 5), "data"),
    ]
    for override, match in cases:
        args = dict(denoiser=oracle, scheduler=sched, data=DATA, nfe=[2]) | FAST | override
        with pytest.raises(ValueError, match=match):
            calibrate(**args)
    fake_accelerator = SimpleNamespace(num_processes=11, process_index=0, is_main_process=True, device="cpu")
    with pytest.raises(ValueError, match="fewer than the 11 process"):
        calibrate(oracle, sched, DATA, 2, accelerator=fake_accelerator, **FAST)


@pytest.mark.parametrize(
    "output, match",
    [(lambda x, t: torch.full((*x.shape, 4), float("nan")), "NaN"), (lambda x, t: torch.zeros(*x.shape, 5), "shape")],
)
def test_bad_model_outputs_are_rejected(output, match):
    sched, _ = make()
    with pytest.raises(ValueError, match=f"`denoiser`.*{match}|{match}.*"):
        calibrate(output, sched, DATA, 2, **FAST)


# ------------------------------------------------------------------------------------------- accounting, report
def test_dp_accounting_report_and_batching_invariance():
    sched, oracle = make()
    counter = Counting(oracle)
    result = calibrate(counter, sched, DATA, [1, 2, 3, 5, 12], **FAST)
    assert result.report["sequence_forwards"] == counter.sequences == 12 * 10  # G per sequence, whatever the nfe
    assert result.report["sequence_forwards_this_run"] == 120 and not result.report["resumed"]
    json.dumps(result.report)  # JSON-serialisable
    bounds = [result.report["step_counts"][n]["bound"] for n in ("1", "2", "3", "5")]
    assert all(b >= a for a, b in zip(bounds[1:], bounds))  # more steps never cost more
    for n, grid in result.schedules.items():
        assert len(grid) == int(n) and validate_timesteps(grid, t_min=sched.config.t_min) == grid and grid[0] == 1.0
    for n, grid in result.schedules.items():  # `bound` re-scores any grid from the DP statistics
        assert result.bound(grid) == pytest.approx(result.report["step_counts"][n]["bound"], rel=1e-12)
    assert result.bound([1.0, 0.5, 0.2]) > 0.0
    other = calibrate(oracle, sched, DATA, [1, 2, 3, 5, 12], **(FAST | dict(batch_size=7)))
    assert other.schedules == result.schedules
    for n in result.schedules:
        assert other.report["step_counts"][n]["bound"] == pytest.approx(result.report["step_counts"][n]["bound"], rel=1e-12)


@pytest.mark.parametrize("search", ["hierarchical", "greedy"])
def test_interval_search_accounting(search):
    sched, oracle = make()
    counter = Counting(oracle)
    result = calibrate(counter, sched, DATA, [2, 3, 4], search=search, cache_posteriors=True, **INTERVAL)
    report = result.report
    assert report["sequence_forwards"] == counter.sequences
    per_interval = sum(item["sequence_forwards"] for item in report["intervals"])
    assert per_interval == counter.sequences
    # with cached start posteriors: one forward per sequence and probe, plus one per distinct interval start
    probes = sum(item["evaluations"] for item in report["intervals"])
    starts = {item["start"] for item in report["intervals"]}
    assert counter.sequences == 10 * (probes + len(starts))
    assert set(result.schedules["2"]) <= set(result.schedules["4"])  # nested grids
    assert report["step_counts"]["4"]["total_gain"] == pytest.approx(math.fsum(report["step_counts"]["4"]["gains"]))
    with pytest.raises(ValueError, match="search='dp'"):
        result.bound([1.0, 0.5])
    uncached = calibrate(Counting(oracle), sched, DATA, [2, 3, 4], search=search, **INTERVAL)
    assert uncached.schedules == result.schedules
    assert uncached.report["sequence_forwards"] == 2 * 10 * probes


# ----------------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize(
    "search, extra, fail_after",
    [("dp", FAST, 12 + 5), ("hierarchical", INTERVAL, 50), ("greedy", INTERVAL, 80)],  # calls: 12 per DP batch, <= 36 per interval
)
def test_interrupted_run_resumes_to_the_same_schedules(tmp_path, search, extra, fail_after):
    sched, oracle = make()
    nfe = [2, 3, 4]
    reference = calibrate(oracle, sched, DATA, nfe, search=search, **extra)
    state = tmp_path / "state.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        calibrate(Counting(oracle, fail_after), sched, DATA, nfe, search=search, state_path=str(state), **extra)
    saved = json.loads(state.read_text())["progress"]
    assert saved.get("batches_done", len(saved.get("solved", {}))) >= 1  # at least one unit was saved
    resumed = calibrate(Counting(oracle), sched, DATA, nfe, search=search, state_path=str(state), **extra)
    assert resumed.schedules == reference.schedules
    assert resumed.report["resumed"]
    assert resumed.report["sequence_forwards"] == reference.report["sequence_forwards"]
    assert 0 < resumed.report["sequence_forwards_this_run"] < reference.report["sequence_forwards"]
    # a finished state serves other step counts without model calls (the state holds statistics)
    if search == "dp":
        again = calibrate(Counting(oracle, fail_after=0), sched, DATA, [6], search=search, state_path=str(state), **extra)
        assert len(again.schedules["6"]) == 6


def test_resume_refuses_a_state_made_with_other_arguments(tmp_path):
    sched, oracle = make()
    state = str(tmp_path / "state.json")
    calibrate(oracle, sched, DATA, [2], state_path=state, **FAST)
    with pytest.raises(ValueError, match="different calibration arguments.*seed"):
        calibrate(oracle, sched, DATA, [2], state_path=state, seed=1, **FAST)
    with pytest.raises(ValueError, match="different calibration arguments.*data_sha256"):
        calibrate(oracle, sched, DATA.flip(0), [2], state_path=state, **FAST)
    with pytest.raises(ValueError, match="different calibration arguments"):
        calibrate(oracle, sched, DATA, [2], state_path=state, search="greedy", progress=False, batch_size=4)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="state_path"):
        calibrate(oracle, sched, DATA, [2], state_path=str(tmp_path / "junk.json"), **FAST)


# ----------------------------------------------------------------------------------------------- two processes
def _distributed_run(out_dir):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    sched, oracle = make()
    results = {
        "dp": calibrate(oracle, sched, DATA, [2, 3, 5], accelerator=accelerator, **FAST),
        "greedy": calibrate(oracle, sched, DATA, [2, 3], search="greedy", accelerator=accelerator, **INTERVAL),
    }
    if accelerator.is_main_process:
        payload = {k: {"schedules": r.schedules, "report": r.report} for k, r in results.items()}
        (out_dir / "two.json").write_text(json.dumps(payload))


def test_two_processes_give_the_single_process_result(tmp_path):
    from accelerate import debug_launcher

    debug_launcher(_distributed_run, args=(tmp_path,), num_processes=2)
    two = json.loads((tmp_path / "two.json").read_text())
    sched, oracle = make()
    single = {
        "dp": calibrate(oracle, sched, DATA, [2, 3, 5], **FAST),
        "greedy": calibrate(oracle, sched, DATA, [2, 3], search="greedy", **INTERVAL),
    }
    for key, result in single.items():
        assert two[key]["report"]["num_processes"] == 2
        assert two[key]["schedules"] == result.schedules
        assert two[key]["report"]["sequence_forwards"] == result.report["sequence_forwards"]
        for n, entry in result.report["step_counts"].items():
            for name, value in entry.items():
                assert two[key]["report"]["step_counts"][n][name] == pytest.approx(value, rel=1e-12)


# ------------------------------------------------------------------------------------------ calibrated scheduler
def test_to_scheduler_carries_the_grids_and_provenance(tmp_path):
    sched, oracle = make()
    result = calibrate(oracle, sched, DATA, [2, 4], **FAST)
    assert isinstance(result, CalibrationResult)
    calibrated = result.to_scheduler()
    assert calibrated.available_schedules == [2, 4]
    calibrated.set_timesteps(4)
    assert calibrated.schedule_name == "jys" and calibrated.timesteps.tolist() == result.schedules["4"]
    info = calibrated.config.calibration_info
    assert info["search"] == "dp" and info["sequence_forwards"] == 120 and set(info["bound"]) == {"2", "4"}
    calibrated.save_pretrained(tmp_path)
    reloaded = JYSDiscreteScheduler.from_pretrained(tmp_path)
    assert reloaded.config.jys_schedules == result.schedules and reloaded.config.calibration_info == info
    euler = result.to_scheduler(JYSDiscreteScheduler(vocab_size=4, mask_token_id=3, sampler="euler"))
    assert euler.config.sampler == "euler" and euler.available_schedules == [2, 4]
    with pytest.raises(ValueError, match="noise_schedule"):
        result.to_scheduler(JYSDiscreteScheduler(vocab_size=4, mask_token_id=3, noise_schedule="cosine"))


def test_score_models_calibrate_like_x0_models():
    sched_x0, oracle_x0 = make(prediction_type="x0")
    sched_score, oracle_score = make(prediction_type="score")
    a = calibrate(oracle_x0, sched_x0, DATA, [2, 3, 4], **FAST)
    b = calibrate(oracle_score, sched_score, DATA, [2, 3, 4], **FAST)
    assert a.schedules == b.schedules
    for n in a.schedules:
        assert b.report["step_counts"][n]["bound"] == pytest.approx(a.report["step_counts"][n]["bound"], rel=1e-9)
