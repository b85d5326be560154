"""Tasks with ground truth: countdown, exact-oracle distributions, and offline real text.

* :mod:`.countdown` -- the JYS countdown generator, the intended error rate (denominator ``L``)
  and the reference code's quirky metric as a labelled compatibility metric.
* :mod:`.oracle` -- small explicit distributions ``(sequences, probs)`` with strong
  dependencies between positions (plus an independent control) and their total correlation.
* :mod:`.text` -- CPython's ``pydoc_data.topics`` prose: document split, char / byte-level BPE
  tokenizers, fixed-length windows, unigram entropy.
* :mod:`.judge` -- a tiny causal transformer trained on held-out text for generative perplexity.

Token convention everywhere: data ids ``0..V-1``; absorbing models append the mask as id ``V``
(model vocabulary ``V + 1``); uniform models use ``V``.
"""

from __future__ import annotations

from .countdown import (
    TRANSITIONS,
    CountdownTask,
    countdown_error_rate,
    countdown_error_rate_reference,
    expected_random_error_rate,
    expected_random_error_rate_reference,
    generate_countdown,
)
from .judge import ARJudge, ARJudgeConfig, train_ar_judge
from .oracle import (
    MAX_ORACLE_SUPPORT,
    ORACLE_DISTRIBUTIONS,
    OracleDistribution,
    enumerate_sequences,
    make_oracle_distribution,
    sample_from_distribution,
    total_correlation,
)
from .text import (
    CHAR_ALPHABET,
    BPETokenizer,
    CharTokenizer,
    TextTask,
    load_pydoc_corpus,
    normalize_text,
    pydoc_documents,
    pydoc_split,
    train_bpe_tokenizer,
    unigram_entropy,
)

__all__ = [
    "TRANSITIONS",
    "CountdownTask",
    "generate_countdown",
    "countdown_error_rate",
    "countdown_error_rate_reference",
    "expected_random_error_rate",
    "expected_random_error_rate_reference",
    "MAX_ORACLE_SUPPORT",
    "ORACLE_DISTRIBUTIONS",
    "OracleDistribution",
    "make_oracle_distribution",
    "enumerate_sequences",
    "total_correlation",
    "sample_from_distribution",
    "CHAR_ALPHABET",
    "normalize_text",
    "pydoc_documents",
    "load_pydoc_corpus",
    "pydoc_split",
    "CharTokenizer",
    "BPETokenizer",
    "train_bpe_tokenizer",
    "TextTask",
    "unigram_entropy",
    "ARJudge",
    "ARJudgeConfig",
    "train_ar_judge",
]
