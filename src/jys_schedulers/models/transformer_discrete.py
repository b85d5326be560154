# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""A small bidirectional transformer denoiser for discrete (token) diffusion.

The model maps a (partly noised) token sequence and, optionally, the diffusion time `t` in `[0, 1]` to per-position
logits over the vocabulary. It is the "bundled model" of the library: small enough to train and sample on a laptop CPU,
and a regular diffusers model (`ModelMixin` + `ConfigMixin`), so `save_pretrained` / `from_pretrained` (safetensors)
and the Hub work as for any diffusers model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

from ..validation import check_int


__all__ = ["DiscreteDiffusionTransformer", "DiscreteTransformerOutput"]


# The time `t` in [0, 1] is multiplied by this before the sinusoidal features are taken, so that the features span the
# usual range of frequencies (as for the integer timesteps of DDPM-style models) instead of being almost linear in `t`.
_TIME_SCALE = 1000.0
_MAX_PERIOD = 10000.0
_ROPE_BASE = 10000.0


@dataclass
class DiscreteTransformerOutput(BaseOutput):
    """
    The output of [`DiscreteDiffusionTransformer`].

    Args:
        logits (`torch.Tensor` of shape `(batch_size, seq_len, vocab_size)`):
            Unnormalised log-probabilities of the clean token at every position (floating point, in the model's dtype).
    """

    logits: torch.Tensor


def _sinusoidal_time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features `[cos(s·f_i), sin(s·f_i)]` of `s = 1000·t`, `f_i = 10000^(-i/(dim/2))`; shape `(B, dim)`."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(_MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = (t.to(torch.float32) * _TIME_SCALE)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _rotary_cos_sin(seq_len: int, head_dim: int, device: torch.device, dtype: torch.dtype):
    """Cos / sin tables of rotary position embedding (rotate-half layout); each of shape `(seq_len, head_dim)`."""
    inv_freq = 1.0 / (_ROPE_BASE ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    angles = torch.arange(seq_len, dtype=torch.float32, device=device)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x` of shape `(..., L, D)` by the position angles (rotate-half convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class _TimeEmbedding(nn.Module):
    """Sinusoidal features of `t` followed by `Linear -> SiLU -> Linear`."""

    def __init__(self, feature_dim: int, hidden_size: int):
        super().__init__()
        self.feature_dim = feature_dim
        self.linear_1 = nn.Linear(feature_dim, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        features = _sinusoidal_time_features(t, self.feature_dim).to(dtype)
        return self.linear_2(F.silu(self.linear_1(features)))


class _SelfAttention(nn.Module):
    """Non-causal multi-head self-attention with rotary position embedding on queries and keys."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.dropout = dropout
        self.to_qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.to_out = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch_size, seq_len, hidden_size = x.shape
        qkv = self.to_qkv(x).view(batch_size, seq_len, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # Rotate queries and keys in one pass (cheaper on CPU than two separate calls).
        q, k = _apply_rotary(qkv[:2], cos, sin).unbind(0)
        v = qkv[2]
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=False
        )
        out = out.transpose(1, 2).reshape(batch_size, seq_len, hidden_size)
        return self.to_out(out)


class _TransformerBlock(nn.Module):
    """Pre-LN transformer block; with time conditioning the norms are modulated adaLN-Zero style (shift, scale, gate)."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, dropout: float, time_conditioning: bool):
        super().__init__()
        self.time_conditioning = time_conditioning
        affine = not time_conditioning
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=affine, eps=1e-6)
        self.attn = _SelfAttention(hidden_size, num_heads, dropout)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=affine, eps=1e-6)
        mlp_hidden = int(round(hidden_size * mlp_ratio))
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, mlp_hidden),
            nn.GELU(),
            nn.Linear(mlp_hidden, hidden_size),
        )
        self.dropout = nn.Dropout(dropout)
        # Maps the (SiLU-activated) time embedding to shift/scale/gate for the attention and MLP branches.
        self.modulation = nn.Linear(hidden_size, 6 * hidden_size) if time_conditioning else None

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor:
        if self.modulation is None:
            x = x + self.dropout(self.attn(self.norm1(x), cos, sin))
            return x + self.dropout(self.mlp(self.norm2(x)))
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(cond)[:, None, :].chunk(6, dim=-1)
        h = torch.addcmul(shift_a, self.norm1(x), 1 + scale_a)
        x = torch.addcmul(x, gate_a, self.dropout(self.attn(h, cos, sin)))
        h = torch.addcmul(shift_m, self.norm2(x), 1 + scale_m)
        return torch.addcmul(x, gate_m, self.dropout(self.mlp(h)))


class DiscreteDiffusionTransformer(ModelMixin, ConfigMixin):
    r"""
    A small bidirectional (non-causal) transformer that predicts the clean tokens of a noised token sequence.

    Architecture: token embedding + learned absolute position embedding, `num_layers` pre-LN blocks (multi-head
    self-attention with rotary position embedding through `torch.nn.functional.scaled_dot_product_attention`, and a
    GELU MLP), a final norm and a linear head to `vocab_size` logits. The learned absolute positions let the model tell
    positions apart even when every input token is the same (e.g. all masked), which rotary embedding alone cannot (with
    identical tokens all attention values are identical); rotary embedding adds a relative-position bias to attention.

    With `time_conditioning=True` the time `t` is embedded (sinusoidal features of `1000·t`, then
    `Linear -> SiLU -> Linear`) and modulates every norm adaLN-Zero style (as in DiT): per block a zero-initialised
    linear layer gives shift, scale and gate for the attention and MLP branches, and the final norm gets a shift and
    scale. The conditioning input is the diffusion **time `t` in `[0, 1]`** (1 = fully noised), *not* the total noise
    `σ̄(t)`; convert before calling if your training code used σ̄. With `time_conditioning=False` the model is
    time-agnostic (like MDLM-OWT or LLaDA): the norms carry ordinary learned affine parameters and `timesteps` is
    ignored.

    Initialisation: linear layers and embeddings `N(0, 0.02)` with zero biases, adaLN modulation layers and the
    output head zero (so a fresh model predicts the uniform distribution and every block starts as the identity when
    time-conditioned).

    Parameter count of the default configuration (`hidden_size=128`, 4 layers, 4 heads, `mlp_ratio=4`): about 1.26M
    with `vocab_size=33, max_seq_len=256` and time conditioning (about 0.84M without); it grows by `2·128·vocab_size`
    for the embedding and head and by `128·max_seq_len` for the positions.

    Args:
        vocab_size (`int`):
            Number of token ids, including any mask/absorbing token. Inputs must lie in `[0, vocab_size)`; the model
            outputs `vocab_size` logits per position.
        max_seq_len (`int`):
            Longest sequence the model accepts (size of the learned position table).
        hidden_size (`int`, *optional*, defaults to 128):
            Width of the residual stream; must be divisible by `num_heads`, and the head size must be even.
        num_layers (`int`, *optional*, defaults to 4):
            Number of transformer blocks.
        num_heads (`int`, *optional*, defaults to 4):
            Number of attention heads.
        mlp_ratio (`float`, *optional*, defaults to 4):
            Width of the MLP hidden layer relative to `hidden_size`.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout probability on attention weights and on the attention / MLP branch outputs (training only).
        time_conditioning (`bool`, *optional*, defaults to `True`):
            Whether the model is conditioned on the diffusion time `t` (then `timesteps` is required in `forward`).
        time_embedding_dim (`int`, *optional*, defaults to 128):
            Number of sinusoidal features of the time (even); unused when `time_conditioning=False`.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        hidden_size: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4,
        dropout: float = 0.0,
        time_conditioning: bool = True,
        time_embedding_dim: int = 128,
    ):
        super().__init__()
        check_int("vocab_size", vocab_size, 2)
        check_int("max_seq_len", max_seq_len, 1)
        check_int("hidden_size", hidden_size, 2)
        check_int("num_layers", num_layers, 1)
        check_int("num_heads", num_heads, 1)
        check_int("time_embedding_dim", time_embedding_dim, 2)
        if hidden_size % num_heads != 0 or (hidden_size // num_heads) % 2 != 0:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be divisible by `num_heads` ({num_heads}) with an even head size "
                f"(rotary embedding); got head size {hidden_size / num_heads:g}."
            )
        if time_embedding_dim % 2 != 0:
            raise ValueError(f"`time_embedding_dim` must be even, got {time_embedding_dim}.")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or not mlp_ratio > 0:
            raise ValueError(f"`mlp_ratio` must be a positive number, got {mlp_ratio!r}.")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), got {dropout!r}.")
        if not isinstance(time_conditioning, bool):
            raise TypeError(f"`time_conditioning` must be a bool, got {time_conditioning!r}.")

        self.head_dim = hidden_size // num_heads
        self.token_embedding = nn.Embedding(vocab_size, hidden_size)
        self.position_embedding = nn.Embedding(max_seq_len, hidden_size)
        self.time_embedding = _TimeEmbedding(time_embedding_dim, hidden_size) if time_conditioning else None
        self.blocks = nn.ModuleList(
            [
                _TransformerBlock(hidden_size, num_heads, float(mlp_ratio), float(dropout), time_conditioning)
                for _ in range(num_layers)
            ]
        )
        self.norm_out = nn.LayerNorm(hidden_size, elementwise_affine=not time_conditioning, eps=1e-6)
        self.norm_out_modulation = nn.Linear(hidden_size, 2 * hidden_size) if time_conditioning else None
        self.proj_out = nn.Linear(hidden_size, vocab_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        zero_init = [self.proj_out, self.norm_out_modulation] + [block.modulation for block in self.blocks]
        for module in zero_init:
            if module is not None:
                nn.init.zeros_(module.weight)
                nn.init.zeros_(module.bias)

    def _validate_input_ids(self, input_ids) -> None:
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"`input_ids` must be a torch.LongTensor of shape (batch, seq_len), got {type(input_ids)}.")
        if input_ids.dtype == torch.bool or input_ids.is_floating_point() or input_ids.is_complex():
            raise TypeError(f"`input_ids` must have an integer dtype (torch.long), got {input_ids.dtype}.")
        if input_ids.ndim != 2:
            raise ValueError(
                f"`input_ids` must be 2-D (batch, seq_len), got shape {tuple(input_ids.shape)}."
            )
        batch_size, seq_len = input_ids.shape
        if batch_size == 0 or seq_len == 0:
            raise ValueError(f"`input_ids` must be non-empty, got shape {tuple(input_ids.shape)}.")
        if seq_len > self.config.max_seq_len:
            raise ValueError(
                f"`input_ids` has sequence length {seq_len}, more than the model's `max_seq_len` "
                f"({self.config.max_seq_len})."
            )
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= self.config.vocab_size:
            raise ValueError(
                f"`input_ids` must lie in [0, vocab_size={self.config.vocab_size}), got values in [{low}, {high}]."
            )

    def _prepare_timesteps(self, timesteps, batch_size: int, device: torch.device) -> torch.Tensor:
        if isinstance(timesteps, bool) or (isinstance(timesteps, torch.Tensor) and timesteps.dtype == torch.bool):
            raise TypeError(f"`timesteps` must be a float or a floating tensor of times in [0, 1], got {timesteps!r}.")
        if isinstance(timesteps, (int, float)):
            t = torch.full((batch_size,), float(timesteps), dtype=torch.float32, device=device)
        elif isinstance(timesteps, torch.Tensor):
            if timesteps.is_complex():
                raise TypeError(f"`timesteps` must be real, got dtype {timesteps.dtype}.")
            if timesteps.ndim == 0 or (timesteps.ndim == 1 and timesteps.shape[0] == 1):
                t = timesteps.reshape(1).to(device=device, dtype=torch.float32).expand(batch_size)
            elif timesteps.ndim == 1 and timesteps.shape[0] == batch_size:
                t = timesteps.to(device=device, dtype=torch.float32)
            else:
                raise ValueError(
                    f"`timesteps` must be a scalar, a 0-d tensor or a tensor of shape ({batch_size},) matching the "
                    f"batch size of `input_ids`, got shape {tuple(timesteps.shape)}."
                )
        else:
            raise TypeError(
                f"`timesteps` must be a float or a tensor of times in [0, 1], got {type(timesteps).__name__}."
            )
        if not bool(torch.isfinite(t).all()) or bool(((t < 0) | (t > 1)).any()):
            raise ValueError(
                f"`timesteps` must be finite times in [0, 1] (the diffusion time t, not sigma), got "
                f"min {t.min().item():g}, max {t.max().item():g}."
            )
        return t

    def forward(
        self,
        input_ids: torch.LongTensor,
        timesteps: torch.Tensor | float | None = None,
        return_dict: bool = True,
    ) -> DiscreteTransformerOutput | tuple[torch.Tensor]:
        r"""
        Predict clean-token logits for a noised token sequence.

        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, seq_len)`):
                Token ids in `[0, vocab_size)`, with `seq_len <= max_seq_len`.
            timesteps (`torch.Tensor` or `float`, *optional*):
                The diffusion time `t` in `[0, 1]` (not σ̄): a Python number, a 0-d tensor, or a tensor of shape
                `(1,)` or `(batch_size,)`. Required when the model was built with `time_conditioning=True`; validated
                but otherwise ignored when `time_conditioning=False`.
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a [`DiscreteTransformerOutput`] instead of a plain tuple.

        Returns:
            [`DiscreteTransformerOutput`] or `tuple`: the logits of shape `(batch_size, seq_len, vocab_size)`; a tuple
            `(logits,)` when `return_dict=False`.
        """
        self._validate_input_ids(input_ids)
        batch_size, seq_len = input_ids.shape
        device = self.token_embedding.weight.device
        dtype = self.token_embedding.weight.dtype

        cond = None
        if self.config.time_conditioning:
            if timesteps is None:
                raise ValueError(
                    "`timesteps` is required: this model was built with `time_conditioning=True`; pass the diffusion "
                    "time t in [0, 1] as a float or a tensor of shape (batch_size,)."
                )
            t = self._prepare_timesteps(timesteps, batch_size, device)
            cond = F.silu(self.time_embedding(t, dtype))
        elif timesteps is not None:
            self._prepare_timesteps(timesteps, batch_size, device)

        positions = torch.arange(seq_len, device=device)
        x = self.token_embedding(input_ids.to(device)) + self.position_embedding(positions)[None]
        cos, sin = _rotary_cos_sin(seq_len, self.head_dim, device, dtype)
        for block in self.blocks:
            x = block(x, cos, sin, cond)
        x = self.norm_out(x)
        if cond is not None:
            shift, scale = self.norm_out_modulation(cond)[:, None, :].chunk(2, dim=-1)
            x = torch.addcmul(shift, x, 1 + scale)
        logits = self.proj_out(x)

        if not return_dict:
            return (logits,)
        return DiscreteTransformerOutput(logits=logits)
