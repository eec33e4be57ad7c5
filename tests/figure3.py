"""The paper's Figure 3 (N = 10, L = 7, w = 4, g = 2), causal part, typed in by hand from the figure."""

# Right-hand panel, "SelfExtend".
FIGURE3_SELFEXTEND = [
    [0],
    [1, 0],
    [2, 1, 0],
    [3, 2, 1, 0],
    [4, 3, 2, 1, 0],
    [4, 4, 3, 2, 1, 0],
    [5, 5, 4, 3, 2, 1, 0],
    [5, 5, 4, 4, 3, 2, 1, 0],
    [6, 6, 5, 5, 4, 3, 2, 1, 0],
    [6, 6, 5, 5, 4, 4, 3, 2, 1, 0],
]
# Middle panel, "Grouped Attention" (floor division by 2, before the shift).
FIGURE3_GROUPED = [
    [0],
    [0, 0],
    [1, 1, 0],
    [1, 1, 0, 0],
    [2, 2, 1, 1, 0],
    [2, 2, 1, 1, 0, 0],
    [3, 3, 2, 2, 1, 1, 0],
    [3, 3, 2, 2, 1, 1, 0, 0],
    [4, 4, 3, 3, 2, 2, 1, 1, 0],
    [4, 4, 3, 3, 2, 2, 1, 1, 0, 0],
]
