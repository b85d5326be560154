"""Brute-force ground truth written from the definitions, independent of the package's formulas."""

from __future__ import annotations

import itertools

import torch


def forward_matrix(transition: str, vocab: int, alpha: float, mask: int | None = None) -> torch.Tensor:
    """K[x0, x] = q_{t|0}(x | x0) from the definition of the process."""
    eye = torch.eye(vocab, dtype=torch.float64)
    if transition == "absorbing":
        k = alpha * eye
        k[:, mask] += 1 - alpha
        k[mask] = 0.0
        k[mask, mask] = 1.0
        return k
    return alpha * eye + (1 - alpha) / vocab


def bridge_matrix(transition: str, vocab: int, alpha_t: float, alpha_s: float, mask: int | None = None) -> torch.Tensor:
    """K[z, x] = q_{t|s}(x | z): the forward kernel from survival alpha_s to alpha_t (ratio alpha_t / alpha_s)."""
    return forward_matrix(transition, vocab, alpha_t / alpha_s, mask)


def marginal(seq: tuple[int, ...], data: torch.Tensor, probs: torch.Tensor, k: torch.Tensor) -> float:
    """q_t(x) = Σ_k p0(k) Π_j K[x0_j, x_j]."""
    total = 0.0
    for row, p in zip(data.tolist(), probs.tolist()):
        lik = p
        for x0, x in zip(row, seq):
            lik *= float(k[x0, x])
        total += lik
    return total


def posterior_x0(x_t: list[int], data, probs, k, vocab) -> torch.Tensor:
    """p(x0_l = v | x_t) by enumeration of the data table, shape (L, V)."""
    weights = []
    for row, p in zip(data.tolist(), probs.tolist()):
        lik = p
        for x0, x in zip(row, x_t):
            lik *= float(k[x0, x])
        weights.append(lik)
    w = torch.tensor(weights, dtype=torch.float64)
    w = w / w.sum()
    post = torch.zeros(len(x_t), vocab, dtype=torch.float64)
    for wk, row in zip(w.tolist(), data.tolist()):
        for l, v in enumerate(row):
            post[l, v] += wk
    return post


def true_score(x_t: list[int], data, probs, k, vocab) -> torch.Tensor:
    """s_l(y) = q_t(x_t with position l set to y) / q_t(x_t), shape (L, V)."""
    base = marginal(tuple(x_t), data, probs, k)
    out = torch.zeros(len(x_t), vocab, dtype=torch.float64)
    for l in range(len(x_t)):
        for y in range(vocab):
            changed = list(x_t)
            changed[l] = y
            out[l, y] = marginal(tuple(changed), data, probs, k) / base
    return out


def true_step_posterior(x_t, data, probs, transition, vocab, alpha_t, alpha_s, mask=None) -> torch.Tensor:
    """Per-position law of x_s given the whole x_t under the true process: Σ_x0 p(x0|x_t) q(x_s^l | x_t^l, x0^l)."""
    k_t = forward_matrix(transition, vocab, alpha_t, mask)
    k_s = forward_matrix(transition, vocab, alpha_s, mask)
    k_ts = bridge_matrix(transition, vocab, alpha_t, alpha_s, mask)
    post = posterior_x0(x_t, data, probs, k_t, vocab)
    out = torch.zeros(len(x_t), vocab, dtype=torch.float64)
    for l, x in enumerate(x_t):
        for x0 in range(vocab):
            if post[l, x0] == 0:
                continue
            bayes = k_s[x0, :] * k_ts[:, x] / k_t[x0, x]  # q(z | x_t, x0)
            out[l] += post[l, x0] * bayes
    return out


def all_sequences(vocab: int, length: int):
    return itertools.product(range(vocab), repeat=length)
