"""JYSDiscreteScheduler: config round trips, grid selection rules, stepping and input validation."""

import json
import warnings

import pytest
import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

from jys_schedulers import JYSDiscreteScheduler, JYSDiscreteSchedulerOutput

V, MASK = 6, 5
GRIDS = {"2": [1.0, 0.35], "3": [1.0, 0.6, 0.2]}


def make(**kwargs):
    config = dict(vocab_size=V, mask_token_id=MASK, jys_schedules=GRIDS)
    config.update(kwargs)
    if config.get("transition") == "uniform":
        config["mask_token_id"] = None
    return JYSDiscreteScheduler(**config)


def logits(b=2, l=5, seed=0, dtype=torch.float32):
    return torch.randn(b, l, V, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ---------------------------------------------------------------------------------------------- config & grids
def test_save_load_round_trip_keeps_schedules_exactly(tmp_path):
    grids = {"4": [1.0, 0.7123456789012345, 0.4000000000000001, 0.1], "1": [0.9]}
    sched = make(jys_schedules=grids, calibration_info={"model": "toy", "num_samples": 3})
    sched.save_pretrained(tmp_path / "scheduler")
    loaded = JYSDiscreteScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    assert loaded.config.jys_schedules == {"1": [0.9], "4": grids["4"]}
    assert loaded.config.calibration_info == {"model": "toy", "num_samples": 3}
    loaded.set_timesteps(4)
    assert loaded.timesteps.tolist() == pytest.approx(grids["4"], rel=1e-7)
    assert loaded._grid == grids["4"]  # float64 values are exact
    saved = json.loads((tmp_path / "scheduler" / "scheduler_config.json").read_text())
    assert saved["_class_name"] == "JYSDiscreteScheduler" and saved["jys_schedules"]["4"] == grids["4"]


def test_from_pretrained_overrides_and_unused_kwargs(tmp_path):
    make().save_pretrained(tmp_path)
    sched, unused = JYSDiscreteScheduler.from_pretrained(tmp_path, return_unused_kwargs=True, sampler="euler", foo=1)
    assert sched.config.sampler == "euler"
    assert {k: v for k, v in unused.items() if not k.startswith("_")} == {"foo": 1}


def test_set_timesteps_uses_stored_grid_and_fallbacks():
    sched = make()
    sched.set_timesteps(3)
    assert sched.schedule_name == "jys" and sched.num_inference_steps == 3
    assert sched.timesteps.dtype == torch.float32 and sched.timesteps.tolist() == pytest.approx(GRIDS["3"])
    with pytest.warns(UserWarning, match="uniform"):
        sched.set_timesteps(4)
    assert sched.timesteps.tolist() == [1.0, 0.75, 0.5, 0.25] and sched.schedule_name == "uniform"
    with pytest.warns(UserWarning, match="cosine"):
        make(schedule_fallback="cosine").set_timesteps(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.set_timesteps(3, schedule="uniform")  # explicit choice: no warning
        assert sched.timesteps.tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="No calibrated grid"):
        make(schedule_fallback="error").set_timesteps(4)
    with pytest.raises(ValueError, match="No calibrated grid"):
        sched.set_timesteps(4, schedule="jys")


def test_custom_timesteps_and_diffusers_retrieve_timesteps():
    sched = make()
    ts, n = retrieve_timesteps(sched, timesteps=[1.0, 0.5, 0.1], device="cpu")
    assert n == 3 and ts.tolist() == pytest.approx([1.0, 0.5, 0.1]) and sched.schedule_name == "custom"
    ts, n = retrieve_timesteps(sched, 2, "cpu")
    assert n == 2 and ts.tolist() == pytest.approx(GRIDS["2"])
    with pytest.raises(ValueError, match="exactly one"):
        sched.set_timesteps(2, timesteps=[1.0, 0.5])
    with pytest.raises(ValueError, match="exactly one"):
        sched.set_timesteps()
    with pytest.raises(ValueError, match="schedule"):
        sched.set_timesteps(timesteps=[1.0], schedule="uniform")


def test_public_api_conventions():
    sched = make()
    assert sched.order == 1 and sched.init_noise_sigma == 1.0
    x = torch.zeros(2, 3, dtype=torch.long)
    assert sched.scale_model_input(x, 0.5) is x
    assert sched.available_schedules == [2, 3]
    assert sched.token_quota(30, 3) == [12, 12, 6]


# -------------------------------------------------------------------------------------------------- stepping
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_step_shapes_dtypes_and_absorbing_invariants(dtype):
    sched = make()
    sched.set_timesteps(3)
    x = torch.full((2, 5), MASK)
    x[0, 1] = 2
    gen = torch.Generator().manual_seed(0)
    for i, t in enumerate(sched.timesteps):
        out = sched.step(logits(dtype=dtype, seed=i), t, x, generator=gen)
        assert isinstance(out, JYSDiscreteSchedulerOutput)
        assert out.prev_sample.shape == (2, 5) and out.prev_sample.dtype == torch.long
        assert out.prev_sample[0, 1] == 2, "unmasked tokens never change"
        assert torch.all((out.prev_sample == x) | (x == MASK)), "only masked positions move"
        x = out.prev_sample
    assert not (x == MASK).any(), "the last step returns clean tokens"


def test_step_is_deterministic_per_seed_and_supports_tuples_and_generator_lists():
    sched = make(transition="uniform")
    sched.set_timesteps(3)
    x = torch.randint(0, V, (3, 8), generator=torch.Generator().manual_seed(0))
    out = lambda g: sched.step(logits(3, 8), sched.timesteps[1], x, generator=g).prev_sample  # noqa: E731
    assert torch.equal(out(torch.Generator().manual_seed(7)), out(torch.Generator().manual_seed(7)))
    assert not torch.equal(out(torch.Generator().manual_seed(7)), out(torch.Generator().manual_seed(8)))
    tup = sched.step(logits(3, 8), sched.timesteps[1], x, generator=torch.Generator().manual_seed(7), return_dict=False)
    assert isinstance(tup, tuple) and torch.equal(tup[0], out(torch.Generator().manual_seed(7)))
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    batched = sched.step(logits(3, 8), sched.timesteps[1], x, generator=gens).prev_sample
    single = sched.step(logits(3, 8)[2:], sched.timesteps[1], x[2:], generator=[torch.Generator().manual_seed(2)])
    assert torch.equal(batched[2:], single.prev_sample)


@pytest.mark.parametrize("sampler", ["tweedie", "euler"])
def test_step_transition_closed_form_absorbing(sampler):
    sched = make(sampler=sampler, noise_schedule="cosine")
    sched.set_timesteps(3)
    x = torch.full((1, 4), MASK)
    x[0, 0] = 1
    lg = logits(1, 4, dtype=torch.float64)
    p = torch.softmax(lg[..., :MASK], -1)
    ns = sched.noise_schedule
    t, s = 0.6, 0.2
    a_t, a_s = float(ns.alpha(t)), float(ns.alpha(s))
    jump = (a_s - a_t) / (1 - a_t) if sampler == "tweedie" else (t - s) * float(ns.rate(t)) * a_t / (1 - a_t)
    kernel = sched.step_transition(lg, 0.6, x).probs(x)
    torch.testing.assert_close(kernel[0, 1:, :MASK], min(jump, 1.0) * p[0, 1:], rtol=1e-10, atol=1e-12)
    assert kernel[0, 0].tolist() == [0, 1, 0, 0, 0, 0]
    final = sched.step_transition(lg, 0.2, x).probs(x)  # last step: fill every mask from p
    torch.testing.assert_close(final[0, 1:, :MASK], p[0, 1:], rtol=1e-10, atol=1e-12)


def test_step_samples_follow_step_transition():
    sched = make(transition="uniform", sampler="euler")
    sched.set_timesteps(timesteps=[1.0, 0.5])
    n = 20000
    lg = logits(1, 1, seed=3).expand(n, 1, V)
    x = torch.full((n, 1), 2)
    kernel = sched.step_transition(lg[:1], 1.0, x[:1]).probs(x[:1])[0, 0]
    draws = sched.step(lg, 1.0, x, generator=torch.Generator().manual_seed(0)).prev_sample[:, 0]
    freq = torch.bincount(draws, minlength=V).double() / n
    assert torch.all((freq - kernel).abs() < 4 * (kernel * (1 - kernel) / n).sqrt() + 1e-9)


def test_pred_original_sample_is_model_mode_on_masked_positions():
    sched = make()
    sched.set_timesteps(2)
    lg = logits(2, 5)
    lg[..., MASK] = 100.0  # the mask logit is ignored
    x = torch.full((2, 5), MASK)
    x[1, 4] = 0
    out = sched.step(lg, sched.timesteps[0], x, generator=torch.Generator().manual_seed(0))
    expected = lg[..., :MASK].argmax(-1)
    expected[1, 4] = 0
    assert torch.equal(out.pred_original_sample, expected)


def test_add_noise_and_prior():
    sched = make()
    x0 = torch.randint(0, MASK, (4, 50), generator=torch.Generator().manual_seed(0))
    u = torch.rand(4, 50, generator=torch.Generator().manual_seed(1))
    hi, lo = sched.add_noise(x0, u, torch.full((4,), 0.9)), sched.add_noise(x0, u, 0.3)
    assert torch.all((lo == MASK) <= (hi == MASK))
    drawn = sched.add_noise(x0, None, 0.5, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == x0.shape
    assert torch.all(sched.sample_prior(2, 7) == MASK)
    uni = make(transition="uniform").sample_prior(3, 9, generator=torch.Generator().manual_seed(0))
    assert uni.shape == (3, 9) and int(uni.max()) < V
    noise2 = torch.rand(4, 50, 2)
    assert make(transition="uniform").add_noise(x0, noise2, 0.5).shape == x0.shape


# ------------------------------------------------------------------------------------------------ bad input
def _stepped(**kwargs):
    sched = make(**kwargs)
    sched.set_timesteps(2)
    return sched


BAD_STEP_CASES = [
    ("wrong model_output shape", lambda s: s.step(torch.randn(2, 5, V - 1), 1.0, torch.full((2, 5), MASK)), ValueError, "model_output"),
    ("model_output batch mismatch", lambda s: s.step(torch.randn(3, 5, V), 1.0, torch.full((2, 5), MASK)), ValueError, "model_output"),
    ("integer logits", lambda s: s.step(torch.ones(2, 5, V, dtype=torch.long), 1.0, torch.full((2, 5), MASK)), TypeError, "floating"),
    ("NaN logits", lambda s: s.step(torch.full((2, 5, V), float("nan")), 1.0, torch.full((2, 5), MASK)), ValueError, "NaN"),
    ("+inf logits", lambda s: s.step(torch.full((2, 5, V), float("inf")), 1.0, torch.full((2, 5), MASK)), ValueError, "inf"),
    ("all -inf logits", lambda s: s.step(torch.full((2, 5, V), -float("inf")), 1.0, torch.full((2, 5), MASK)), ValueError, "no valid distribution"),
    ("float sample", lambda s: s.step(torch.randn(2, 5, V), 1.0, torch.zeros(2, 5)), TypeError, "sample"),
    ("1-D sample", lambda s: s.step(torch.randn(5, V), 1.0, torch.full((5,), MASK)), ValueError, "sample"),
    ("token id out of vocab", lambda s: s.step(torch.randn(2, 5, V), 1.0, torch.full((2, 5), V)), ValueError, "token ids"),
    ("timestep not in grid", lambda s: s.step(torch.randn(2, 5, V), 0.77, torch.full((2, 5), MASK)), ValueError, "not in the current grid"),
    ("mixed timesteps", lambda s: s.step(torch.randn(2, 5, V), torch.tensor([1.0, 0.35]), torch.full((2, 5), MASK)), ValueError, "one time"),
    ("string timestep", lambda s: s.step(torch.randn(2, 5, V), "1.0", torch.full((2, 5), MASK)), TypeError, "timestep"),
    ("generator list length", lambda s: s.step(torch.randn(2, 5, V), 1.0, torch.full((2, 5), MASK), generator=[torch.Generator()] * 3), ValueError, "generator"),
    ("zero steps", lambda s: s.set_timesteps(0), ValueError, "num_inference_steps"),
    ("negative steps", lambda s: s.set_timesteps(-3), ValueError, "num_inference_steps"),
    ("float steps", lambda s: s.set_timesteps(2.5), TypeError, "num_inference_steps"),
    ("non-decreasing custom times", lambda s: s.set_timesteps(timesteps=[0.5, 0.9]), ValueError, "strictly decreasing"),
    ("custom time below t_min", lambda s: s.set_timesteps(timesteps=[1.0, 1e-9]), ValueError, "lie in"),
    ("custom time above 1", lambda s: s.set_timesteps(timesteps=[1.5, 0.5]), ValueError, "lie in"),
    ("unknown schedule name", lambda s: s.set_timesteps(2, schedule="karras"), ValueError, "schedule"),
    ("add_noise time > 1", lambda s: s.add_noise(torch.zeros(2, 5, dtype=torch.long), None, 1.5), ValueError, "timesteps"),
    ("add_noise noise shape", lambda s: s.add_noise(torch.zeros(2, 5, dtype=torch.long), torch.rand(2, 4), 0.5), ValueError, "noise"),
    ("prior batch size", lambda s: s.sample_prior(0, 5), ValueError, "batch_size"),
]


@pytest.mark.parametrize("name, call, exc, match", BAD_STEP_CASES, ids=[c[0] for c in BAD_STEP_CASES])
def test_bad_step_and_grid_input(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call(_stepped())


def test_step_before_set_timesteps():
    with pytest.raises(ValueError, match="set_timesteps"):
        make().step(torch.randn(1, 2, V), 1.0, torch.full((1, 2), MASK))


BAD_CONFIGS = [
    (dict(transition="gaussian"), ValueError, "transition"),
    (dict(mask_token_id=None), ValueError, "mask_token_id"),
    (dict(mask_token_id=V), ValueError, "mask_token_id"),
    (dict(transition="uniform", mask_token_id=3, jys_schedules=None), ValueError, "mask_token_id"),
    (dict(vocab_size=1, mask_token_id=0), ValueError, "vocab_size"),
    (dict(prediction_type="epsilon"), ValueError, "prediction_type"),
    (dict(sampler="gillespie"), ValueError, "sampler"),
    (dict(noise_schedule="sqrt"), ValueError, "noise_schedule"),
    (dict(noise_schedule_kwargs={"eps": 2.0}), ValueError, "eps"),
    (dict(sampling_precision="float16"), ValueError, "sampling_precision"),
    (dict(schedule_fallback="nearest"), ValueError, "schedule_fallback"),
    (dict(t_min=0.0), ValueError, "t_min"),
    (dict(jys_schedules={"3": [1.0, 0.5]}), ValueError, "exactly 3"),
    (dict(jys_schedules={"2": [0.2, 0.5]}), ValueError, "strictly decreasing"),
    (dict(jys_schedules={"two": [1.0, 0.5]}), ValueError, "step counts"),
]


@pytest.mark.parametrize("overrides, exc, match", BAD_CONFIGS, ids=[str(c[0]) for c in BAD_CONFIGS])
def test_bad_config_values(overrides, exc, match):
    config = dict(vocab_size=V, mask_token_id=MASK)
    config.update(overrides)
    with pytest.raises(exc, match=match):
        JYSDiscreteScheduler(**config)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c["jys_schedules"].update({"2": [1.0, "0.3"]}), "real numbers"),
        (lambda c: c["jys_schedules"].update({"2": [1.0, 1.7]}), "lie in"),
        (lambda c: c.update({"jys_schedule": {"2": [1.0, 0.5]}}), "Unknown JYSDiscreteScheduler config keys"),
        (lambda c: c.update({"transition": "absorbng"}), "transition"),
    ],
    ids=["string in grid", "time > 1", "misspelt key", "misspelt value"],
)
def test_hand_edited_config_is_rejected_on_load(tmp_path, edit, match):
    make().save_pretrained(tmp_path)
    path = tmp_path / "scheduler_config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises((ValueError, TypeError), match=match):
        JYSDiscreteScheduler.from_pretrained(tmp_path)
