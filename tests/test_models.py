"""Tests for the built-in denoiser `jys_schedulers.models.DiscreteDiffusionTransformer`."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from jys_schedulers.models import DiscreteDiffusionTransformer, DiscreteTransformerOutput


TINY = dict(vocab_size=17, max_seq_len=32, hidden_size=32, num_layers=2, num_heads=2, time_embedding_dim=16)



def _public(config) -> dict:
    return {key: value for key, value in dict(config).items() if not key.startswith("_")}


def _tiny(**overrides) -> DiscreteDiffusionTransformer:
    torch.manual_seed(0)
    return DiscreteDiffusionTransformer(**{**TINY, **overrides}).eval()


def _randomize(model: DiscreteDiffusionTransformer, seed: int = 0, std: float = 0.2) -> DiscreteDiffusionTransformer:
    """Give every parameter (also the zero-initialised modulation and head) random values so all paths are live."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return model


def _ids(batch_size: int = 3, seq_len: int = 10, vocab_size: int = 17, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch_size, seq_len), generator=torch.Generator().manual_seed(seed))


def test_default_config_is_small():
    model = DiscreteDiffusionTransformer(vocab_size=33, max_seq_len=256)
    n = model.num_parameters()
    assert 500_000 <= n <= 1_500_000, n
    n_agnostic = DiscreteDiffusionTransformer(vocab_size=33, max_seq_len=256, time_conditioning=False).num_parameters()
    assert 500_000 <= n_agnostic < n
    assert model.config.hidden_size == 128 and model.config.num_layers == 4 and model.config.num_heads == 4


def test_fresh_model_predicts_uniform():
    model = _tiny()
    with torch.inference_mode():
        logits = model(_ids(), 0.5).logits
    assert torch.count_nonzero(logits) == 0  # zero-initialised head


@pytest.mark.parametrize(
    "timesteps",
    [0.5, 1, torch.tensor(0.3), torch.tensor([0.3]), torch.tensor([0.1, 0.5, 1.0]), torch.tensor([0, 1, 1])],
    ids=["float", "int", "0d", "len1", "batch", "int-tensor"],
)
def test_shapes_and_dtypes(timesteps):
    model = _randomize(_tiny())
    ids = _ids(3, 10)
    with torch.inference_mode():
        out = model(ids, timesteps)
        (logits_tuple,) = model(ids, timesteps, return_dict=False)
    assert isinstance(out, DiscreteTransformerOutput)
    assert out.logits.shape == (3, 10, 17)
    assert out.logits.dtype == torch.float32
    assert torch.isfinite(out.logits).all()
    assert torch.equal(out.logits, logits_tuple)


def test_scalar_timestep_broadcasts_like_batch_tensor():
    model = _randomize(_tiny())
    ids = _ids(4, 12)
    with torch.inference_mode():
        a = model(ids, 0.25).logits
        b = model(ids, torch.full((4,), 0.25)).logits
        c = model(ids, torch.tensor(0.25, dtype=torch.float64)).logits
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_per_sample_timesteps_are_used_per_sample():
    model = _randomize(_tiny())
    ids = _ids(1, 12).repeat(2, 1)
    with torch.inference_mode():
        both = model(ids, torch.tensor([0.2, 0.8])).logits
        first = model(ids[:1], 0.2).logits
        second = model(ids[:1], 0.8).logits
    torch.testing.assert_close(both[0], first[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[1], second[0], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(both[0], both[1])


def test_time_conditioning_changes_output():
    model = _randomize(_tiny())
    ids = _ids()
    with torch.inference_mode():
        early, late = model(ids, 0.1).logits, model(ids, 0.9).logits
    assert (early - late).abs().max() > 1e-3


def test_time_conditioning_becomes_active_after_training_from_default_init():
    model = _tiny().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    ids = _ids(8, 12)
    for step in range(6):
        t = torch.linspace(0.05, 1.0, 8)
        loss = F.cross_entropy(model(ids, t).logits.reshape(-1, 17), ids.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode():
        early, late = model(ids, 0.1).logits, model(ids, 0.9).logits
    assert (early - late).abs().max() > 1e-4


def test_time_agnostic_model_ignores_timesteps():
    model = _randomize(_tiny(time_conditioning=False))
    assert model.time_embedding is None
    ids = _ids()
    with torch.inference_mode():
        ref = model(ids).logits
        for t in (0.0, 0.7, torch.tensor([0.1, 0.5, 0.9])):
            torch.testing.assert_close(model(ids, t).logits, ref, rtol=0, atol=0)


def test_attention_is_bidirectional():
    model = _randomize(_tiny())
    ids = _ids(2, 10)
    changed_last = ids.clone()
    changed_last[:, -1] = (changed_last[:, -1] + 1) % 17
    changed_first = ids.clone()
    changed_first[:, 0] = (changed_first[:, 0] + 1) % 17
    with torch.inference_mode():
        ref = model(ids, 0.5).logits
        last = model(changed_last, 0.5).logits
        first = model(changed_first, 0.5).logits
    assert (ref[:, 0] - last[:, 0]).abs().max() > 1e-4  # a later token changes the first position
    assert (ref[:, -1] - first[:, -1]).abs().max() > 1e-4  # an earlier token changes the last position


def test_positions_are_distinguished_when_all_tokens_are_equal():
    model = _randomize(_tiny())
    all_masked = torch.full((1, 16), 16)
    with torch.inference_mode():
        logits = model(all_masked, 1.0).logits[0]
    assert (logits[1:] - logits[:1]).abs().amax(dim=-1).min() > 1e-4


@pytest.mark.parametrize("time_conditioning", [True, False])
def test_save_pretrained_from_pretrained_roundtrip(tmp_path, time_conditioning):
    model = _randomize(_tiny(time_conditioning=time_conditioning, dropout=0.1), seed=3)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "config.json").is_file()
    assert not any(name.endswith(".bin") for name in os.listdir(tmp_path))

    loaded = DiscreteDiffusionTransformer.from_pretrained(tmp_path).eval()
    assert _public(loaded.config) == _public(model.config)
    ids = _ids(3, 20)
    t = torch.tensor([0.1, 0.5, 0.95])
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids, t).logits, model(ids, t).logits, rtol=0, atol=0)


def test_determinism():
    a, b = _randomize(_tiny()), _randomize(_tiny())
    ids = _ids(4, 16)
    with torch.inference_mode():
        out1, out2, out3 = a(ids, 0.4).logits, a(ids, 0.4).logits, b(ids, 0.4).logits
    assert torch.equal(out1, out2)
    assert torch.equal(out1, out3)
    # Same seed, same initial weights.
    for p, q in zip(_tiny().parameters(), _tiny().parameters()):
        assert torch.equal(p, q)


def test_dropout_only_in_training_mode():
    model = _randomize(_tiny(dropout=0.3))
    ids = _ids(2, 16)
    with torch.inference_mode():
        assert torch.equal(model(ids, 0.5).logits, model(ids, 0.5).logits)
        model.train()
        assert not torch.equal(model(ids, 0.5).logits, model(ids, 0.5).logits)


@pytest.mark.parametrize(
    "input_ids, timesteps, error, match",
    [
        (torch.zeros(2, 5), 0.5, TypeError, "input_ids"),  # float ids
        ([[1, 2, 3]], 0.5, TypeError, "input_ids"),  # not a tensor
        (torch.zeros(2, 5, dtype=torch.bool), 0.5, TypeError, "input_ids"),
        (torch.zeros(5, dtype=torch.long), 0.5, ValueError, "input_ids.*2-D"),
        (torch.zeros(2, 3, 4, dtype=torch.long), 0.5, ValueError, "input_ids.*2-D"),
        (torch.zeros(0, 5, dtype=torch.long), 0.5, ValueError, "input_ids.*non-empty"),
        (torch.zeros(2, 33, dtype=torch.long), 0.5, ValueError, "max_seq_len"),
        (torch.full((2, 5), 17), 0.5, ValueError, "input_ids.*vocab_size=17"),
        (torch.full((2, 5), -1), 0.5, ValueError, "input_ids.*vocab_size=17"),
        (torch.zeros(2, 5, dtype=torch.long), None, ValueError, "timesteps.*required"),
        (torch.zeros(2, 5, dtype=torch.long), torch.rand(3), ValueError, r"timesteps.*\(2,\)"),
        (torch.zeros(2, 5, dtype=torch.long), torch.rand(2, 1), ValueError, "timesteps"),
        (torch.zeros(2, 5, dtype=torch.long), float("nan"), ValueError, "timesteps.*finite"),
        (torch.zeros(2, 5, dtype=torch.long), torch.tensor([0.5, float("inf")]), ValueError, "timesteps"),
        (torch.zeros(2, 5, dtype=torch.long), 2.0, ValueError, r"timesteps.*\[0, 1\]"),
        (torch.zeros(2, 5, dtype=torch.long), -0.1, ValueError, r"timesteps.*\[0, 1\]"),
        (torch.zeros(2, 5, dtype=torch.long), True, TypeError, "timesteps"),
        (torch.zeros(2, 5, dtype=torch.long), "0.5", TypeError, "timesteps"),
    ],
)
def test_bad_forward_inputs_raise(input_ids, timesteps, error, match):
    model = _tiny()
    with pytest.raises(error, match=match):
        model(input_ids, timesteps)


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(vocab_size=1), ValueError, "vocab_size"),
        (dict(vocab_size=17.0), TypeError, "vocab_size"),
        (dict(max_seq_len=0), ValueError, "max_seq_len"),
        (dict(hidden_size=30, num_heads=4), ValueError, "hidden_size"),
        (dict(hidden_size=36, num_heads=4), ValueError, "head size"),  # odd head size (9)
        (dict(dropout=1.0), ValueError, "dropout"),
        (dict(mlp_ratio=0), ValueError, "mlp_ratio"),
        (dict(time_embedding_dim=15), ValueError, "time_embedding_dim"),
        (dict(time_conditioning="yes"), TypeError, "time_conditioning"),
    ],
)
def test_bad_config_raises(overrides, error, match):
    with pytest.raises(error, match=match):
        DiscreteDiffusionTransformer(**{**TINY, **overrides})


def test_overfits_a_single_sequence_with_random_masking():
    """Masked-token training on one fixed sequence: the model must reconstruct it from a fully masked input."""
    vocab_size, seq_len, batch_size = 12, 16, 32
    mask_id = vocab_size - 1
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, mask_id, (seq_len,), generator=generator)
    torch.manual_seed(0)
    model = DiscreteDiffusionTransformer(
        vocab_size=vocab_size, max_seq_len=seq_len, hidden_size=32, num_layers=2, num_heads=2, time_embedding_dim=16
    ).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    clean = target.expand(batch_size, seq_len)
    losses = []
    for step in range(200):
        t = torch.rand(batch_size, generator=generator) * 0.95 + 0.05
        masked = torch.rand(batch_size, seq_len, generator=generator) < t[:, None]
        masked[:, 0] |= ~masked.any(dim=1)  # at least one masked position per row
        noisy = torch.where(masked, torch.full_like(clean, mask_id), clean)
        logits = model(noisy, t).logits
        loss = F.cross_entropy(logits[masked], clean[masked])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    final_loss = sum(losses[-20:]) / 20
    assert final_loss < 0.05, f"masked cross-entropy after 200 steps is {final_loss:.4f} (start {losses[0]:.3f})"
    model.eval()
    with torch.inference_mode():
        prediction = model(torch.full((1, seq_len), mask_id), 1.0).logits.argmax(-1)[0]
    assert torch.equal(prediction, target)
