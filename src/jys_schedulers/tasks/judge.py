"""A tiny autoregressive judge for generative perplexity, trained locally on CPU.

Generative perplexity needs a reference language model; none can be downloaded here, so a
small causal transformer is trained on the *held-out* split of the task (for the text task:
:meth:`TextTask.windows("heldout", ...) <jys_schedulers.tasks.text.TextTask.windows>`). The
judge therefore never saw the denoiser's training text, and a denoiser cannot score well by
reproducing memorised training windows that the judge also memorised.

Perplexity of samples ``x`` (``N`` rows of length ``L``) under the judge ``q``, teacher forced::

    PPL = exp( (1 / (N (L-1))) * sum_n sum_{l=1}^{L-1} -log q(x_{n,l} | x_{n,<l}) )

(the first token is not scored: the judge has no BOS token). Lower is better; compare
samplers only under the same judge.

Model: token + learned position embeddings, pre-norm ``nn.TransformerEncoder`` layers with a
causal mask, final LayerNorm, linear head to the data vocabulary. Saved as a folder with
``config.json`` and ``model.safetensors``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Union

import torch
from torch import nn

from ..validation import check_int

__all__ = ["ARJudgeConfig", "ARJudge", "train_ar_judge", "JUDGE_CONFIG_NAME", "JUDGE_WEIGHTS_NAME"]

JUDGE_CONFIG_NAME = "config.json"
JUDGE_WEIGHTS_NAME = "model.safetensors"
_MODEL_TYPE = "jys_ar_judge"


@dataclass(frozen=True)
class ARJudgeConfig:
    """Judge architecture. ``vocab_size`` counts data tokens only (no mask)."""

    vocab_size: int
    max_len: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size, 2)
        check_int("max_len", self.max_len, 2)
        check_int("d_model", self.d_model, 1)
        check_int("num_layers", self.num_layers, 1)
        check_int("num_heads", self.num_heads, 1)
        check_int("ff_mult", self.ff_mult, 1)
        if self.d_model % self.num_heads:
            raise ValueError(f"`d_model`={self.d_model} must be divisible by `num_heads`={self.num_heads}.")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must be a float in [0, 1), got {self.dropout!r}.")


class ARJudge(nn.Module):
    """Tiny causal transformer ``input_ids (B, L) -> logits (B, L, V)``; see the module docstring."""

    def __init__(self, config: ARJudgeConfig) -> None:
        super().__init__()
        if not isinstance(config, ARJudgeConfig):
            raise TypeError(f"`config` must be an ARJudgeConfig, got {type(config).__name__}.")
        self.config = config
        self.training_info: dict[str, Any] = {}
        d = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, d)
        self.pos_emb = nn.Embedding(config.max_len, d)
        layer = nn.TransformerEncoderLayer(
            d, config.num_heads, config.ff_mult * d, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)

    def _check_ids(self, input_ids: object, name: str = "input_ids") -> torch.Tensor:
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"`{name}` must be an integer torch.Tensor of shape (B, L).")
        if input_ids.dim() != 2 or not 1 <= input_ids.shape[1] <= self.config.max_len:
            raise ValueError(f"`{name}` must have shape (B, L) with 1 <= L <= max_len={self.config.max_len}, got {tuple(input_ids.shape)}.")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(
                f"`{name}` ids must lie in 0..{self.config.vocab_size - 1} (the judge's data vocabulary; "
                f"mask tokens are not scored), found range {int(input_ids.min())}..{int(input_ids.max())}."
            )
        return input_ids.long()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits: ``logits[:, l]`` predicts ``input_ids[:, l+1]`` from ``input_ids[:, :l+1]``."""
        x = self._check_ids(input_ids)
        length = x.shape[1]
        pos = torch.arange(length, device=x.device)
        h = self.tok_emb(x) + self.pos_emb(pos)[None]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=x.device, dtype=h.dtype)
        h = self.blocks(h, mask=mask, is_causal=True)
        return self.head(self.norm(h))

    def token_nll(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``-log q(x_l | x_{<l})`` for ``l = 1..L-1``, shape ``(B, L-1)``, float32."""
        x = self._check_ids(input_ids)
        if x.shape[1] < 2:
            raise ValueError(f"`input_ids` must have length >= 2 to be scored, got {x.shape[1]}.")
        logits = self.forward(x[:, :-1])
        return nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")

    @torch.no_grad()
    def nll(self, samples: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Per-sample mean NLL (nats/token) over positions ``1..L-1``, shape ``(N,)``; eval mode, no grad."""
        x = self._check_ids(samples, "samples")
        check_int("batch_size", batch_size, 1)
        was_training = self.training
        self.eval()
        try:
            out = [self.token_nll(x[i : i + batch_size]).mean(dim=1) for i in range(0, x.shape[0], batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out)

    def perplexity(self, samples: torch.Tensor, batch_size: int = 64) -> float:
        """``exp`` of the mean NLL over all scored tokens (positions ``1..L-1`` of every sample)."""
        return float(math.exp(float(self.nll(samples, batch_size).mean())))

    def save_pretrained(self, folder: Union[str, os.PathLike]) -> None:
        """Write ``config.json`` (architecture + training info) and ``model.safetensors``."""
        from safetensors.torch import save_file

        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        payload = {"model_type": _MODEL_TYPE, **asdict(self.config), "training_info": self.training_info}
        with open(os.path.join(folder, JUDGE_CONFIG_NAME), "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, os.path.join(folder, JUDGE_WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, folder: Union[str, os.PathLike]) -> "ARJudge":
        """Load a judge written by :meth:`save_pretrained`."""
        from safetensors.torch import load_file

        folder = os.fspath(folder)
        cfg_path = os.path.join(folder, JUDGE_CONFIG_NAME)
        if not os.path.isfile(cfg_path):
            raise FileNotFoundError(f"`folder` has no {JUDGE_CONFIG_NAME}: {folder!r}.")
        with open(cfg_path, encoding="utf-8") as fh:
            payload = json.load(fh)
        if payload.get("model_type") != _MODEL_TYPE:
            raise ValueError(f"{cfg_path} is not an AR judge config (model_type={payload.get('model_type')!r}).")
        names = {f.name for f in fields(ARJudgeConfig)}
        model = cls(ARJudgeConfig(**{k: v for k, v in payload.items() if k in names}))
        model.load_state_dict(load_file(os.path.join(folder, JUDGE_WEIGHTS_NAME)))
        model.training_info = dict(payload.get("training_info", {}))
        model.eval()
        return model


def train_ar_judge(
    token_windows: torch.Tensor,
    vocab_size: int,
    steps: int = 600,
    seed: int = 0,
    *,
    batch_size: int = 16,
    lr: float = 3e-3,
    weight_decay: float = 0.01,
    warmup_steps: int | None = None,
    d_model: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    ff_mult: int = 4,
    dropout: float = 0.0,
    valid_windows: torch.Tensor | None = None,
    eval_every: int | None = None,
    max_seconds: float | None = None,
    num_threads: int | None = 1,
) -> ARJudge:
    """Train an :class:`ARJudge` by teacher-forced next-token cross-entropy; returns it in eval mode.

    ``token_windows`` ``(N, L)`` hold data ids ``0..vocab_size-1`` (for text: the held-out
    split's windows; overlapping random windows, e.g. ``task.windows("heldout", 20000)``, give
    more variety than the non-overlapping ones). AdamW, linear warm-up (default
    ``steps // 10``) then cosine decay to 0, gradient clipping at 1.0.

    Early stopping: with ``valid_windows`` (e.g. a slice of the held-out windows kept out of
    ``token_windows``), the mean validation NLL is measured every ``eval_every`` steps
    (default ``max(1, steps // 10)``) and at the end, and the best weights are returned.
    Small corpora overfit quickly, so this is recommended for real use.

    Determinism: the whole run (initial weights, dropout, batch draws) happens under
    ``torch.random.fork_rng`` seeded with ``seed``, so the global RNG is untouched and the
    result is a function of the arguments (on one machine and thread count). ``max_seconds``
    stops early (the cosine schedule still assumes ``steps``). ``judge.training_info``
    records the steps run, final training loss, best validation NLL and wall time.

    Threads: ``num_threads`` (default 1) sets ``torch.set_num_threads`` for the run and restores
    the previous value afterwards; ``None`` leaves it alone. A model this small gains little
    from more threads, and on a loaded machine OpenMP barriers make multi-threaded steps
    several times slower (measured here: 0.065 s/step on 1 thread vs 0.34 s on 2 busy cores).
    With the defaults and ``L = 128`` the 600 steps take about 40 s on one free core;
    ``max_seconds`` caps the time.
    """
    if not isinstance(token_windows, torch.Tensor) or token_windows.dim() != 2 or token_windows.shape[1] < 2:
        raise ValueError("`token_windows` must be an integer tensor of shape (N, L) with L >= 2.")
    check_int("steps", steps, 1)
    check_int("batch_size", batch_size, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be an int, got {seed!r}.")
    if not lr > 0:
        raise ValueError(f"`lr` must be > 0, got {lr!r}.")
    config = ARJudgeConfig(vocab_size, token_windows.shape[1], d_model, num_layers, num_heads, ff_mult, dropout)
    every = max(1, steps // 10) if eval_every is None else check_int("eval_every", eval_every, 1)
    warmup = max(1, steps // 10) if warmup_steps is None else check_int("warmup_steps", warmup_steps, 0)
    if num_threads is not None:
        check_int("num_threads", num_threads, 1)
    threads_before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(token_windows, config, steps, seed, batch_size, lr, weight_decay, every, warmup, valid_windows, max_seconds)
    finally:
        if num_threads is not None:
            torch.set_num_threads(threads_before)


def _train(
    token_windows: torch.Tensor,
    config: ARJudgeConfig,
    steps: int,
    seed: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    every: int,
    warmup: int,
    valid_windows: torch.Tensor | None,
    max_seconds: float | None,
) -> ARJudge:
    """The training loop of :func:`train_ar_judge` (arguments already validated)."""

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ARJudge(config)
        data = model._check_ids(token_windows, "token_windows")
        valid = None
        if valid_windows is not None:
            valid = model._check_ids(valid_windows, "valid_windows")
            if valid.shape[1] < 2:
                raise ValueError("`valid_windows` must have length >= 2.")
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        best_nll, best_step, best_state = float("inf"), 0, None

        def evaluate(step: int) -> None:
            nonlocal best_nll, best_step, best_state
            value = float(model.nll(valid).mean())
            if value < best_nll:
                best_nll, best_step = value, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

        model.train()
        start = time.perf_counter()
        loss_value = float("nan")
        done = 0
        for step in range(steps):
            idx = torch.randint(0, data.shape[0], (min(batch_size, data.shape[0]),))
            loss = model.token_nll(data[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            loss_value = float(loss.detach())
            done = step + 1
            out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
            if valid is not None and (done % every == 0 or done == steps or out_of_time):
                evaluate(done)
            if out_of_time:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
    model.eval()
    model.training_info = {
        "steps": done,
        "requested_steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "dropout": config.dropout,
        "num_threads": torch.get_num_threads(),
        "final_train_loss": loss_value,
        "num_windows": int(data.shape[0]),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if valid is not None:
        model.training_info.update({"best_valid_nll": best_nll, "best_step": best_step, "num_valid_windows": int(valid.shape[0])})
    return model
