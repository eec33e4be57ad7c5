"""Position maps against the paper's Figure 3, Algorithm 1 and Eq. 4."""
import pytest
import torch

from figure3 import FIGURE3_GROUPED, FIGURE3_SELFEXTEND
from selfextend.positions import (
    causal_mask,
    group_shift,
    grouped_attention_mask,
    grouped_relative_positions,
    largest_relative_position,
    max_context_length,
    merged_relative_positions,
    min_group_size,
    normal_relative_positions,
)

def causal_rows(matrix):
    return [matrix[i, : i + 1].tolist() for i in range(matrix.shape[0])]


def test_figure3_selfextend_matrix():
    merged = merged_relative_positions(10, 10, group_size=2, window=4)
    assert causal_rows(merged) == FIGURE3_SELFEXTEND
    assert merged[-1].tolist() == [6, 6, 5, 5, 4, 4, 3, 2, 1, 0]


def test_figure3_grouped_and_normal_matrices():
    assert causal_rows(grouped_relative_positions(10, 10, group_size=2)) == FIGURE3_GROUPED
    assert causal_rows(normal_relative_positions(10)) == [list(range(i, -1, -1)) for i in range(10)]


def test_figure3_shift_is_four_minus_four_floordiv_two():
    assert group_shift(2, 4) == 4 - 4 // 2 == 2
    shifted = grouped_relative_positions(10, 10, group_size=2, window=4)
    assert torch.equal(shifted, grouped_relative_positions(10, 10, group_size=2) + 2)


@pytest.mark.parametrize("seq_len,window", [(10, 4), (16, 5), (7, 1), (9, 9)])
def test_algorithm1_mask_equals_grouped_attention_mask(seq_len, window):
    # Algorithm 1, literally: mask = ones; mask[w:, :-w] -= tril(ones(L - w, L - w)); 1 = neighbor.
    mask = torch.ones(seq_len, seq_len)
    g_mask = torch.tril(torch.ones(seq_len - window, seq_len - window))
    if seq_len > window:
        mask[window:, :-window] -= g_mask
    assert torch.equal(grouped_attention_mask(seq_len, seq_len, window), mask == 0)


def test_merged_by_hand_rule():
    # Every entry from the rule, with Python integers.
    q_len, group_size, window = 23, 3, 5
    merged = merged_relative_positions(q_len, q_len, group_size, window)
    for i in range(q_len):
        for j in range(i + 1):
            if i - j < window:
                expected = i - j
            else:
                expected = (i // group_size + window - window // group_size) - j // group_size
            assert merged[i, j] == expected


def test_decoding_rows_are_the_last_rows():
    full = merged_relative_positions(20, 20, 4, 6)
    assert torch.equal(merged_relative_positions(1, 20, 4, 6), full[-1:])
    assert torch.equal(merged_relative_positions(3, 20, 4, 6), full[-3:])
    assert torch.equal(causal_mask(3, 20), torch.ones(20, 20, dtype=torch.bool).tril()[-3:])
    assert torch.equal(grouped_attention_mask(2, 20, 6), grouped_attention_mask(20, 20, 6)[-2:])


def test_group_size_one_is_normal():
    assert torch.equal(merged_relative_positions(12, 12, 1, 3), normal_relative_positions(12))


def test_max_context_length_and_inverse():
    assert max_context_length(7, 2, 4) == 10  # Figure 3 caption: (7 - 4) * 2 + 4
    assert max_context_length(4096, 5, 1024) == 16384  # official README worked example
    assert min_group_size(4096, 15800, 1024) == 5
    assert min_group_size(4096, 16384, 1024) == 5
    assert min_group_size(4096, 16385, 1024) == 6
    assert min_group_size(4096, 4000, 1024) == 1
    for pretrained, window in [(128, 32), (7, 4), (100, 1)]:
        for target in range(pretrained, 5000, 97):
            g = min_group_size(pretrained, target, window)
            assert max_context_length(pretrained, g, window) >= target
            assert g == 1 or max_context_length(pretrained, g - 1, window) < target


def test_max_context_length_keeps_positions_below_pretrained_length():
    # Eq. 4 is tight when g divides w: at N = (L - w) g + w the largest relative position is L - 1,
    # and one more group of tokens reaches L.
    for pretrained, g, window in [(7, 2, 4), (128, 16, 32), (50, 5, 10)]:
        n = max_context_length(pretrained, g, window)
        assert merged_relative_positions(n, n, g, window).max() == pretrained - 1
        assert merged_relative_positions(n + 1, n + 1, g, window).max() == pretrained
    assert largest_relative_position(max_context_length(4096, 8, 1024), 8, 1024) == 4095


def test_max_context_length_when_group_does_not_divide_window():
    # Integer division makes the shift w - w//g, up to one more than w - w/g: then Eq. 4 overshoots by
    # at most one position (g = 3, w = 10: shift 7, not 6.67).
    n = max_context_length(50, 3, 10)
    assert n == 130
    assert largest_relative_position(n, 3, 10) == 50
    assert largest_relative_position(n - 3, 3, 10) == 49


@pytest.mark.parametrize("g,w", [(2, 4), (3, 5), (1, 3), (8, 2), (5, 16)])
def test_largest_relative_position_matches_matrix(g, w):
    for n in range(1, 40):
        merged = merged_relative_positions(n, n, g, w)
        assert largest_relative_position(n, g, w) == merged[causal_mask(n)].max()


@pytest.mark.parametrize(
    "call,parameter",
    [
        (lambda: merged_relative_positions(10, 10, 0, 4), "group_size"),
        (lambda: merged_relative_positions(10, 10, 2, 0), "window"),
        (lambda: merged_relative_positions(10, 10, 2.0, 4), "group_size"),
        (lambda: merged_relative_positions(10, 10, 2, -1), "window"),
        (lambda: merged_relative_positions(11, 10, 2, 4), "q_len"),
        (lambda: normal_relative_positions(0), "q_len"),
        (lambda: grouped_attention_mask(4, 4, True), "window"),
        (lambda: max_context_length(7, 2, 7), "window"),
        (lambda: max_context_length(0, 2, 1), "pretrained_length"),
        (lambda: min_group_size(7, 0, 4), "target_length"),
    ],
)
def test_bad_arguments_name_the_parameter(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()
