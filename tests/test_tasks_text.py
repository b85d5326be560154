"""Tests for jys_schedulers.tasks.text (offline pydoc corpus, tokenizers, windows, unigram entropy)."""

from __future__ import annotations

import math

import pytest
import torch

from jys_schedulers.tasks.text import (
    CHAR_ALPHABET,
    MASK_DISPLAY,
    UNKNOWN_CHAR,
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


@pytest.fixture(scope="module")
def char_task() -> TextTask:
    return TextTask(seq_len=64, tokenizer="char")


@pytest.fixture(scope="module")
def small_bpe() -> BPETokenizer:
    docs = dict(pydoc_documents())
    texts = [docs[n] for n in sorted(docs)[:20]]
    return train_bpe_tokenizer(texts, vocab_size=320)


def test_corpus_loads_offline_and_is_deterministic():
    raw = load_pydoc_corpus()
    assert len(raw) > 400_000
    assert raw == load_pydoc_corpus()
    docs = pydoc_documents(normalize=False)
    names = [n for n, _ in docs]
    assert names == sorted(names) and len(names) > 50
    assert raw == "\n\n".join(t for _, t in docs)
    assert "assert" in names
    norm = load_pydoc_corpus(normalize=True)
    assert "\u201c" not in norm and "\u2019" not in norm and "\t" not in norm


def test_normalize_text():
    assert normalize_text("a\r\nb\rc\td\u2019e \u201cq\u201d \u2014 \u2026") == "a\nb\nc d'e \"q\" - ..."
    s = load_pydoc_corpus(normalize=True)
    assert normalize_text(s) == s  # idempotent
    with pytest.raises(TypeError, match="text"):
        normalize_text(b"bytes")


def test_split_is_disjoint_deterministic_and_sized():
    names = [n for n, _ in pydoc_documents(normalize=False)]
    sizes = dict(pydoc_documents(normalize=False))
    total = sum(len(t) for t in sizes.values())
    for frac in (0.1, 0.2, 0.5):
        train, held = pydoc_split(frac)
        assert train and held
        assert not set(train) & set(held)
        assert sorted(train + held) == sorted(names)
        share = sum(len(sizes[n]) for n in held) / total
        assert 0.5 * frac <= share <= frac
        assert (train, held) == pydoc_split(frac)
    with pytest.raises(ValueError, match="heldout_fraction"):
        pydoc_split(1.0)


def test_char_tokenizer_round_trip():
    tok = CharTokenizer()
    assert tok.vocab_size == len(CHAR_ALPHABET) == 97
    assert tok.encode("\n ~") == [0, 1, 95]
    assert tok.unk_token_id == 96
    text = load_pydoc_corpus(normalize=True)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    # exact identity on normalised text over the alphabet; other chars become UNKNOWN_CHAR
    mapped = "".join(ch if ch in CHAR_ALPHABET else UNKNOWN_CHAR for ch in text)
    assert tok.decode(ids) == mapped
    ascii_text = "def f(x):\n    return x ** 2  # ok!"
    assert tok.decode(tok.encode(ascii_text)) == ascii_text
    all_ids = list(range(tok.vocab_size))
    assert tok.encode(tok.decode(all_ids)) == all_ids
    assert tok.encode("\u00df") == [tok.unk_token_id]
    with pytest.raises(ValueError, match="ids"):
        tok.decode([97])


def test_char_task_windows_and_conventions(char_task):
    task = char_task
    info = task.info()
    assert info["num_data_tokens"] == 97 and info["mask_token_id"] == 97
    assert info["train_chars"] + info["heldout_chars"] > 400_000
    assert task.vocab_size("absorbing") == 98 and task.vocab_size("uniform") == 97
    assert task.mask_token_id == 97
    full = task.windows("train")
    n = task.train_tokens.numel() // 64
    assert full.shape == (n, 64) and full.dtype == torch.long
    assert torch.equal(full.reshape(-1), task.train_tokens[: n * 64])
    rnd = task.windows("heldout", num_windows=50, seed=3)
    assert rnd.shape == (50, 64)
    assert torch.equal(rnd, task.windows("heldout", num_windows=50, seed=3))
    assert not torch.equal(rnd, task.windows("heldout", num_windows=50, seed=4))
    stream = task.decode(task.heldout_tokens)
    for row in task.decode(rnd[:5]):
        assert row in stream
    assert int(rnd.max()) < 97 and int(rnd.min()) >= 0


def test_char_task_encode_decode_and_mask(char_task):
    ids = char_task.encode("Hello, world")
    assert char_task.decode(ids) == "Hello, world"
    masked = ids.clone()
    masked[1] = char_task.mask_token_id
    assert char_task.decode(masked) == "H" + MASK_DISPLAY + "llo, world"


def test_text_task_bad_input():
    with pytest.raises(ValueError, match="seq_len"):
        TextTask(seq_len=1)
    with pytest.raises(ValueError, match="tokenizer"):
        TextTask(seq_len=8, tokenizer="word")
    with pytest.raises(ValueError, match="vocab_size"):
        TextTask(seq_len=8, tokenizer="char", vocab_size=50)
    with pytest.raises(ValueError, match="transition"):
        TextTask(seq_len=8).vocab_size("gauss")
    with pytest.raises(ValueError, match="split"):
        TextTask(seq_len=8).windows("test")
    with pytest.raises(ValueError, match="num_windows"):
        TextTask(seq_len=8).windows("train", num_windows=0)
    with pytest.raises(ValueError, match="seq_len"):
        TextTask(seq_len=10_000_000)


def test_bpe_train_save_load_round_trip(small_bpe, tmp_path):
    tok = small_bpe
    assert tok.vocab_size == 320
    text = load_pydoc_corpus()[:20000]
    ids = tok.encode(text)
    assert len(ids) < len(normalize_text(text))  # merges compress
    assert tok.decode(ids) == normalize_text(text)  # byte-level: exact on normalised text
    assert tok.decode(tok.encode("na\u00efve \u00df \u2603")) == "na\u00efve \u00df \u2603"
    path = tok.save(tmp_path)
    assert path.endswith("tokenizer.json")
    loaded = BPETokenizer.load(tmp_path)
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.encode(text) == ids
    # deterministic training
    docs = dict(pydoc_documents())
    again = train_bpe_tokenizer([docs[n] for n in sorted(docs)[:20]], vocab_size=320)
    assert again.encode(text) == ids
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(["abc"], vocab_size=100)
    with pytest.raises(FileNotFoundError, match="path"):
        BPETokenizer.load(tmp_path / "missing")


def test_bpe_text_task(small_bpe, tmp_path):
    small_bpe.save(tmp_path)
    task = TextTask(seq_len=32, tokenizer="bpe", tokenizer_path=tmp_path)
    assert task.num_data_tokens == 320 and task.mask_token_id == 320
    assert task.vocab_size("absorbing") == 321
    w = task.windows("train", num_windows=8, seed=0)
    assert w.shape == (8, 32) and int(w.max()) < 320
    assert task.decode(task.encode("lambda x: x")) == "lambda x: x"
    out = tmp_path / "again"
    out.mkdir()
    assert task.save_tokenizer(out).endswith("tokenizer.json")
    with pytest.raises(TypeError, match="char"):
        TextTask(seq_len=8).save_tokenizer(tmp_path)
    with pytest.raises(ValueError, match="vocab_size"):
        TextTask(seq_len=8, tokenizer="bpe", tokenizer_path=tmp_path, vocab_size=999)


def test_unigram_entropy_exact():
    assert unigram_entropy(torch.tensor([[0, 0, 1, 1]]), 2) == pytest.approx(math.log(2))
    assert unigram_entropy(torch.tensor([[0, 0], [0, 1]]), 4) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert unigram_entropy(torch.full((3, 5), 7), 8) == 0.0
    assert unigram_entropy(torch.arange(16).reshape(4, 4), 16) == pytest.approx(math.log(16))
    with pytest.raises(ValueError, match="vocab_size"):
        unigram_entropy(torch.tensor([[0, 5]]), 5)
    with pytest.raises(TypeError, match="samples"):
        unigram_entropy(torch.tensor([[0.0]]), 5)
    with pytest.raises(ValueError, match="vocab_size"):
        unigram_entropy(torch.tensor([[0]]), 0)


def test_judge_data_is_heldout_only_and_disjoint(char_task):
    train, valid = char_task.judge_data(num_train_windows=100, valid_fraction=0.1, seed=0)
    assert train.shape == (100, 64) and valid.shape[1] == 64 and valid.shape[0] >= 1
    stream = char_task.heldout_tokens
    cut = int(round(stream.numel() * 0.9))
    head, tail = char_task.decode(stream[:cut]), char_task.decode(stream[cut:])
    for row in char_task.decode(train[:10]):
        assert row in head
    assert torch.equal(valid.reshape(-1), stream[cut : cut + valid.numel()])
    assert tail.startswith(char_task.decode(valid[0]))
    a, _ = char_task.judge_data(num_train_windows=100, seed=0)
    assert torch.equal(a, train)
    with pytest.raises(ValueError, match="valid_fraction"):
        char_task.judge_data(valid_fraction=0.0)
    with pytest.raises(ValueError, match="num_train_windows"):
        char_task.judge_data(num_train_windows=0)
