"""`jys_schedulers.validation.check_int`, the integer check behind the public entry points: wrong types raise
TypeError, values below the minimum raise ValueError, and both name the parameter."""

import pytest
import torch

from jys_schedulers import JYSDiscreteScheduler
from jys_schedulers.calibration import calibrate
from jys_schedulers.models import DiscreteDiffusionTransformer
from jys_schedulers.tasks import ARJudgeConfig, generate_countdown, make_oracle_distribution
from jys_schedulers.validation import check_int


def test_check_int_accepts_ints_at_or_above_the_minimum():
    assert check_int("n", 3) == 3
    assert check_int("seed", 0, 0) == 0


@pytest.mark.parametrize("value", [2.0, "2", True, None, torch.tensor(2)])
def test_check_int_rejects_other_types_with_type_error(value):
    with pytest.raises(TypeError, match=r"`n` must be an int >= 1"):
        check_int("n", value)


def test_check_int_rejects_small_values_with_value_error():
    with pytest.raises(ValueError, match=r"`num_heads` must be an int >= 1, got 0"):
        check_int("num_heads", 0)
    with pytest.raises(ValueError, match=r"`vocab_size` must be an int >= 2, got 1"):
        check_int("vocab_size", 1, 2)


def test_entry_points_share_the_check():
    sched = JYSDiscreteScheduler(vocab_size=4, mask_token_id=3)
    data = torch.zeros(4, 3, dtype=torch.long)
    cases = [
        (lambda: calibrate(lambda x, t: None, sched, data, [2], batch_size=2.0), TypeError, "batch_size"),
        (lambda: calibrate(lambda x, t: None, sched, data, [2], seed=-1), ValueError, "seed"),
        (lambda: generate_countdown(2.5), TypeError, "num_samples"),
        (lambda: DiscreteDiffusionTransformer(vocab_size=1, max_seq_len=8), ValueError, "vocab_size"),
        (lambda: ARJudgeConfig(vocab_size=4, max_len=8, num_heads=0), ValueError, "num_heads"),
        (lambda: make_oracle_distribution("markov", 3, 0), ValueError, "seq_len"),
    ]
    for call, error, name in cases:
        with pytest.raises(error, match=f"`{name}`"):
            call()
