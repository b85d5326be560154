"""A real-text task that needs no network: CPython's ``pydoc_data.topics``.

Every CPython ships ``pydoc_data.topics.topics``, a dict of English reference prose (the
language reference topics behind ``help()``; about 465 K characters in 3.11). Nobody on this
project wrote it, and it is the same in any environment with the same Python version.

Pipeline:

1. :func:`pydoc_documents` -- the topics in sorted-name order, optionally normalised by
   :func:`normalize_text` (typographic punctuation to ASCII, ``\\r\\n``/``\\r``/``\\t`` and other
   Unicode spaces to ``\\n``/space, other characters outside the alphabet kept for the
   tokenizer to map to its unknown symbol).
2. :func:`pydoc_split` -- a deterministic split *by document*: documents ordered by the
   SHA-256 of their topic name; the held-out part takes, first-fit in that order, documents
   that keep it within ``heldout_fraction`` of the characters. The order of a topic does not
   depend on the other topics, so a later Python's new topics perturb the split only locally.
3. A tokenizer: :class:`CharTokenizer` (fixed 97-symbol alphabet: ``\\n``, printable ASCII
   32..126, and an unknown symbol ``\\ufffd``) or :class:`BPETokenizer` (a byte-level BPE trained
   locally with ``tokenizers`` on the training split only, saved as ``tokenizer.json``).
4. :class:`TextTask` -- token streams per split (documents joined by ``"\\n\\n"``), fixed-length
   windows, and the model vocabulary: ``V`` data tokens, and for absorbing models the mask
   appended as the last id ``V`` (vocabulary ``V + 1``).

Quality measure here: :func:`unigram_entropy`. The autoregressive judge lives in
:mod:`jys_schedulers.tasks.judge`; train it on the *held-out* split
(:meth:`TextTask.judge_data` gives disjoint judge-train / judge-validation windows from it)
so it never saw the denoiser's training text.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Sequence, Union

import torch

from .countdown import TRANSITIONS

__all__ = [
    "CHAR_ALPHABET",
    "UNKNOWN_CHAR",
    "MASK_DISPLAY",
    "normalize_text",
    "pydoc_documents",
    "load_pydoc_corpus",
    "pydoc_split",
    "CharTokenizer",
    "BPETokenizer",
    "train_bpe_tokenizer",
    "TextTask",
    "unigram_entropy",
]

UNKNOWN_CHAR = "\ufffd"
CHAR_ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127)) + UNKNOWN_CHAR
MASK_DISPLAY = "\u2591"  # how TextTask.decode renders the mask id

_TYPOGRAPHIC = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2002": " ", "\u2003": " ",
    "\t": " ", "\f": "\n", "\v": "\n",
}
_TRANSLATE = str.maketrans(_TYPOGRAPHIC)


def normalize_text(text: str) -> str:
    """Normalise ``text``: ``\\r\\n``/``\\r`` → ``\\n``; tab and Unicode spaces → space; ``\\f``/``\\v`` → ``\\n``;
    curly quotes → ASCII quotes; en/em dashes and minus → ``-``; ellipsis → ``...``.

    Characters outside :data:`CHAR_ALPHABET` are otherwise kept (the character tokenizer maps
    them to :data:`UNKNOWN_CHAR`; byte-level BPE encodes them exactly). Idempotent.
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}.")
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)


def pydoc_documents(normalize: bool = True) -> list[tuple[str, str]]:
    """``[(topic_name, text), ...]`` from ``pydoc_data.topics.topics``, sorted by topic name."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # pragma: no cover - every CPython ships it
        raise RuntimeError("pydoc_data.topics is missing from this Python installation.") from err
    return [(name, normalize_text(topics[name]) if normalize else topics[name]) for name in sorted(topics)]


def load_pydoc_corpus(normalize: bool = False) -> str:
    """The whole corpus as one string: documents in sorted-topic order joined by ``"\\n\\n"``.

    ``normalize=False`` (default) returns the raw text exactly as shipped.
    """
    return "\n\n".join(text for _, text in pydoc_documents(normalize=normalize))


def _check_fraction(heldout_fraction: object) -> float:
    if isinstance(heldout_fraction, bool) or not isinstance(heldout_fraction, (int, float)) or not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"`heldout_fraction` must be a float in (0, 1), got {heldout_fraction!r}.")
    return float(heldout_fraction)


def pydoc_split(heldout_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """Deterministic document split ``(train_names, heldout_names)``, each sorted by name.

    Documents are visited in order of ``sha256(name)``; each is put in held-out if that keeps
    held-out at most ``heldout_fraction`` of all characters (first-fit), otherwise in train.
    If no document fits, held-out gets the first one in that order. Both parts are non-empty.
    """
    frac = _check_fraction(heldout_fraction)
    docs = dict(pydoc_documents(normalize=False))
    total = sum(len(t) for t in docs.values())
    order = sorted(docs, key=lambda n: hashlib.sha256(n.encode("utf-8")).hexdigest())
    heldout: list[str] = []
    size = 0
    for name in order:
        if size + len(docs[name]) <= frac * total:
            heldout.append(name)
            size += len(docs[name])
    if not heldout:
        heldout.append(order[0])
    if len(heldout) == len(docs):  # pragma: no cover - needs heldout_fraction ~ 1
        heldout.pop()
    held = set(heldout)
    return sorted(n for n in docs if n not in held), sorted(heldout)


class CharTokenizer:
    """Character tokenizer over :data:`CHAR_ALPHABET` (97 symbols).

    ids: ``0`` = ``\\n``, ``1..95`` = ``chr(32)..chr(126)``, ``96`` = :data:`UNKNOWN_CHAR`.
    ``encode`` applies :func:`normalize_text` first and maps any other character to the unknown
    id, so ``decode(encode(s)) == s`` exactly for normalised text over the alphabet and
    ``encode(decode(ids)) == ids`` for every valid id list.
    """

    def __init__(self) -> None:
        self.alphabet = CHAR_ALPHABET
        self._index = {ch: i for i, ch in enumerate(self.alphabet)}
        self.unk_token_id = self._index[UNKNOWN_CHAR]

    @property
    def vocab_size(self) -> int:
        """Number of token ids (97)."""
        return len(self.alphabet)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``normalize_text(text)``, one per character."""
        unk = self.unk_token_id
        return [self._index.get(ch, unk) for ch in normalize_text(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of ``ids``; raises ``ValueError`` on ids outside ``0..vocab_size-1``."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"`ids` must lie in 0..{self.vocab_size - 1}, got {bad[:5]}.")
        return "".join(self.alphabet[i] for i in ids)


class BPETokenizer:
    """Byte-level BPE (``tokenizers``) trained locally; a thin wrapper with save/load.

    Byte-level means every string encodes without an unknown token and
    ``decode(encode(s)) == s``. No special tokens: ids ``0..vocab_size-1`` are all data.
    """

    def __init__(self, tokenizer: "object") -> None:
        from tokenizers import Tokenizer

        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"`tokenizer` must be a tokenizers.Tokenizer, got {type(tokenizer).__name__}.")
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int = 512, min_frequency: int = 2) -> "BPETokenizer":
        """Train on ``texts`` (each normalised first) up to ``vocab_size`` ids (``>= 257``).

        Deterministic for fixed inputs. The result may be smaller than ``vocab_size`` if the
        texts run out of pairs seen ``min_frequency`` times.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 257:
            raise ValueError(f"`vocab_size` for BPE must be an int >= 257 (256 bytes + merges), got {vocab_size!r}.")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts) or len(texts) == 0:
            raise TypeError("`texts` must be a non-empty sequence of str.")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        tok.train_from_iterator([normalize_text(t) for t in texts], trainer=trainer, length=len(texts))
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``normalize_text(text)``."""
        return self.tokenizer.encode(normalize_text(text)).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; raises ``ValueError`` on ids outside ``0..vocab_size-1``."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"`ids` must lie in 0..{self.vocab_size - 1}, got {bad[:5]}.")
        return self.tokenizer.decode(ids)

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Write ``tokenizer.json`` (``path`` may be a folder or a file name); returns the file path."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        self.tokenizer.save(path)
        return path

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "BPETokenizer":
        """Load from a ``tokenizer.json`` file or a folder holding one."""
        from tokenizers import Tokenizer

        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"`path` has no tokenizer.json: {path!r}.")
        return cls(Tokenizer.from_file(path))


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int = 512, min_frequency: int = 2) -> BPETokenizer:
    """Train a byte-level BPE locally; see :meth:`BPETokenizer.train`."""
    return BPETokenizer.train(texts, vocab_size=vocab_size, min_frequency=min_frequency)


TextTokenizer = Union[CharTokenizer, BPETokenizer]


class TextTask:
    """Fixed-length token windows from the pydoc corpus, with model vocabulary conventions.

    Args:
        seq_len: window length ``L``.
        tokenizer: ``"char"`` (:class:`CharTokenizer`), ``"bpe"`` (byte-level BPE trained on the
            training split, or loaded from ``tokenizer_path``), or a tokenizer instance.
        vocab_size: BPE target size (default 512); for ``"char"`` it must be ``None`` or 97.
        heldout_fraction: character share of the held-out documents (see :func:`pydoc_split`).
        tokenizer_path: a ``tokenizer.json`` (or folder) to load the BPE from instead of training.

    Each split's stream is its documents (sorted by name, normalised) joined by ``"\\n\\n"``.
    Data ids are ``0..V-1`` with ``V = tokenizer.vocab_size``; ``mask_token_id = V`` and
    ``vocab_size("absorbing") = V + 1``, ``vocab_size("uniform") = V``.
    """

    def __init__(
        self,
        seq_len: int = 128,
        tokenizer: Union[str, CharTokenizer, BPETokenizer] = "char",
        vocab_size: int | None = None,
        heldout_fraction: float = 0.2,
        tokenizer_path: Union[str, os.PathLike, None] = None,
    ) -> None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
            raise ValueError(f"`seq_len` must be an int >= 2, got {seq_len!r}.")
        self.seq_len = seq_len
        self.heldout_fraction = _check_fraction(heldout_fraction)
        self.train_names, self.heldout_names = pydoc_split(self.heldout_fraction)
        docs = dict(pydoc_documents(normalize=True))
        self.train_text = "\n\n".join(docs[n] for n in self.train_names)
        self.heldout_text = "\n\n".join(docs[n] for n in self.heldout_names)

        if isinstance(tokenizer, (CharTokenizer, BPETokenizer)):
            if vocab_size is not None and vocab_size != tokenizer.vocab_size:
                raise ValueError(f"`vocab_size`={vocab_size} disagrees with the given tokenizer's {tokenizer.vocab_size}.")
            self.tokenizer: TextTokenizer = tokenizer
        elif tokenizer == "char":
            if tokenizer_path is not None:
                raise ValueError("`tokenizer_path` applies only to tokenizer='bpe'.")
            self.tokenizer = CharTokenizer()
            if vocab_size is not None and vocab_size != self.tokenizer.vocab_size:
                raise ValueError(f"`vocab_size` must be None or {self.tokenizer.vocab_size} for tokenizer='char', got {vocab_size!r}.")
        elif tokenizer == "bpe":
            if tokenizer_path is not None:
                self.tokenizer = BPETokenizer.load(tokenizer_path)
                if vocab_size is not None and vocab_size != self.tokenizer.vocab_size:
                    raise ValueError(f"`vocab_size`={vocab_size} disagrees with the loaded tokenizer's {self.tokenizer.vocab_size}.")
            else:
                self.tokenizer = BPETokenizer.train(
                    [docs[n] for n in self.train_names], vocab_size=512 if vocab_size is None else vocab_size
                )
        else:
            raise ValueError(f"`tokenizer` must be 'char', 'bpe' or a tokenizer instance, got {tokenizer!r}.")

        self.train_tokens = torch.tensor(self.tokenizer.encode(self.train_text), dtype=torch.long)
        self.heldout_tokens = torch.tensor(self.tokenizer.encode(self.heldout_text), dtype=torch.long)
        for split, toks in (("train", self.train_tokens), ("heldout", self.heldout_tokens)):
            if toks.numel() < seq_len:
                raise ValueError(f"`seq_len`={seq_len} exceeds the {split} stream of {toks.numel()} tokens.")

    @property
    def num_data_tokens(self) -> int:
        """``V``: the tokenizer's vocabulary size."""
        return self.tokenizer.vocab_size

    @property
    def mask_token_id(self) -> int:
        """Mask id for absorbing models: ``V`` (appended after the data tokens)."""
        return self.tokenizer.vocab_size

    def vocab_size(self, transition: str = "absorbing") -> int:
        """``V + 1`` for ``"absorbing"`` (data + mask), ``V`` for ``"uniform"``."""
        if transition not in TRANSITIONS:
            raise ValueError(f"`transition` must be one of {TRANSITIONS}, got {transition!r}.")
        return self.num_data_tokens + (1 if transition == "absorbing" else 0)

    def tokens(self, split: str = "train") -> torch.Tensor:
        """The 1-D token stream of ``split`` (``"train"`` or ``"heldout"``)."""
        if split == "train":
            return self.train_tokens
        if split == "heldout":
            return self.heldout_tokens
        raise ValueError(f"`split` must be 'train' or 'heldout', got {split!r}.")

    def windows(self, split: str = "train", num_windows: int | None = None, seed: int = 0) -> torch.Tensor:
        """Fixed-length windows ``(N, seq_len)`` long from ``split``.

        ``num_windows=None``: every non-overlapping window in stream order (the tail shorter
        than ``seq_len`` is dropped; ``seed`` unused). An int: that many windows whose start
        offsets are uniform over ``0..len-seq_len``, drawn with a ``torch.Generator`` seeded
        by ``seed``.
        """
        stream = self.tokens(split)
        if num_windows is None:
            n = stream.numel() // self.seq_len
            return stream[: n * self.seq_len].view(n, self.seq_len).clone()
        if isinstance(num_windows, bool) or not isinstance(num_windows, int) or num_windows < 1:
            raise ValueError(f"`num_windows` must be None or an int >= 1, got {num_windows!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"`seed` must be an int, got {seed!r}.")
        gen = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, stream.numel() - self.seq_len + 1, (num_windows,), generator=gen)
        return stream[starts[:, None] + torch.arange(self.seq_len)[None, :]]

    def judge_data(
        self, num_train_windows: int = 20000, valid_fraction: float = 0.1, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(train_windows, valid_windows)`` for the AR judge, both from the *held-out* split.

        The held-out stream is cut at ``(1 - valid_fraction)`` of its length: training windows
        are ``num_train_windows`` random (overlapping) windows from the first part, drawn with
        ``seed``; validation windows are the non-overlapping windows of the second part. The
        two never share a token, and neither touches the denoiser's training split.
        """
        if isinstance(num_train_windows, bool) or not isinstance(num_train_windows, int) or num_train_windows < 1:
            raise ValueError(f"`num_train_windows` must be an int >= 1, got {num_train_windows!r}.")
        if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, (int, float)) or not 0 < valid_fraction < 1:
            raise ValueError(f"`valid_fraction` must be a float in (0, 1), got {valid_fraction!r}.")
        stream = self.heldout_tokens
        cut = int(round(stream.numel() * (1.0 - valid_fraction)))
        head, tail = stream[:cut], stream[cut:]
        if head.numel() < self.seq_len or tail.numel() < self.seq_len:
            raise ValueError(
                f"`valid_fraction`={valid_fraction} leaves {head.numel()} / {tail.numel()} held-out tokens for "
                f"training / validation; both must be >= seq_len={self.seq_len}."
            )
        gen = torch.Generator().manual_seed(int(seed))
        starts = torch.randint(0, head.numel() - self.seq_len + 1, (num_train_windows,), generator=gen)
        train = head[starts[:, None] + torch.arange(self.seq_len)[None, :]]
        n_valid = tail.numel() // self.seq_len
        return train, tail[: n_valid * self.seq_len].view(n_valid, self.seq_len).clone()

    def encode(self, text: str) -> torch.Tensor:
        """1-D long tensor of ids for ``text`` (normalised first)."""
        return torch.tensor(self.tokenizer.encode(text), dtype=torch.long)

    def decode(self, ids: Union[torch.Tensor, Sequence[int]]) -> Union[str, list[str]]:
        """Text of a 1-D id sequence, or a list of texts for a 2-D tensor.

        The mask id renders as :data:`MASK_DISPLAY` (``'░'``); for BPE each mask renders as one
        such character.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() == 2:
                return [self.decode(row) for row in ids]
            if ids.dim() != 1:
                raise ValueError(f"`ids` must be 1-D or 2-D, got shape {tuple(ids.shape)}.")
            ids = ids.tolist()
        ids = [int(i) for i in ids]
        mask = self.mask_token_id
        pieces: list[str] = []
        run: list[int] = []
        for i in ids:
            if i == mask:
                if run:
                    pieces.append(self.tokenizer.decode(run))
                    run = []
                pieces.append(MASK_DISPLAY)
            else:
                run.append(i)
        if run:
            pieces.append(self.tokenizer.decode(run))
        return "".join(pieces)

    def save_tokenizer(self, path: Union[str, os.PathLike]) -> str:
        """Save a BPE tokenizer as ``tokenizer.json`` (returns its path); the char tokenizer is fixed."""
        if not isinstance(self.tokenizer, BPETokenizer):
            raise TypeError("only a BPE tokenizer is saved; the char tokenizer is fixed by CHAR_ALPHABET.")
        return self.tokenizer.save(path)

    def info(self) -> dict:
        """JSON-serialisable description: sizes of the splits in characters and tokens."""
        return {
            "corpus": "pydoc_data.topics",
            "tokenizer": "char" if isinstance(self.tokenizer, CharTokenizer) else "bpe",
            "num_data_tokens": self.num_data_tokens,
            "mask_token_id": self.mask_token_id,
            "seq_len": self.seq_len,
            "heldout_fraction": self.heldout_fraction,
            "train_documents": len(self.train_names),
            "heldout_documents": len(self.heldout_names),
            "train_chars": len(self.train_text),
            "heldout_chars": len(self.heldout_text),
            "train_tokens": int(self.train_tokens.numel()),
            "heldout_tokens": int(self.heldout_tokens.numel()),
        }


def unigram_entropy(samples: torch.Tensor, vocab_size: int) -> float:
    """Entropy (nats) of the pooled token histogram: ``H = -sum_v p_v log p_v``,
    ``p_v = count_v / (N * L)``, with ``0 log 0 = 0``.

    Degenerate samplers (repeating a few tokens) score low; the data's value is the reference.
    ``samples`` must be an integer tensor with all ids in ``0..vocab_size-1``.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"`vocab_size` must be an int >= 1, got {vocab_size!r}.")
    if not isinstance(samples, torch.Tensor) or samples.dtype.is_floating_point or samples.dtype == torch.bool:
        raise TypeError("`samples` must be an integer torch.Tensor.")
    if samples.numel() == 0:
        raise ValueError("`samples` must not be empty.")
    flat = samples.reshape(-1).long()
    lo, hi = int(flat.min()), int(flat.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"`samples` ids must lie in 0..{vocab_size - 1} (vocab_size={vocab_size}), found range {lo}..{hi}.")
    p = torch.bincount(flat, minlength=vocab_size).to(torch.float64) / flat.numel()
    p = p[p > 0]
    return float(-(p * torch.log(p)).sum())

