"""Every method with its published defaults, lengths scaled from Llama-2's 4096 to a pretrained length L.

Lengths (windows, offsets, chunks) are scaled by L / 4096; counts that are not lengths (attention
sinks, global tokens, group sizes, the leak factor) are kept; SELF's rate r is per group index, so it
is scaled by 4096 / L to grow over the same share of the sequence. For L = 128:

    SelfExtend g=32 w=32        the maintainers' Llama-2 25k setting (G = 32, W = 1024)
    SelfExtend float g=24 w=32  the official float shift, with a g that does not divide w
    SelfExtend g=24 w=32        its Algorithm 1 twin
    ReRoPE w=16                 window 512 (reference code)
    Leaky ReRoPE w=16 k=16      window 512, scaling_factor 16
    SELF C=16 r=0.64 w=16       group_size 16, r = 0.02, window 512
    STRING S=43 W=4             S = L / 3, W = 128
    DCA s=96 w=32               chunk 3/4 L, local window L - s (paper)
    LM-Infinite local=128 global=10   n_local = L, n_global = 10
    StreamingLLM sinks=4 recent=62    S = 4, R = 2000
"""
from __future__ import annotations

from ._validate import check_positive_int
from .base import PositionMap
from .chunks import DualChunk
from .logistic import SELF
from .masked import LMInfinite, StreamingLLM
from .rerope import LeakyReRoPE, ReRoPE
from .selfextend import SelfExtend, SelfExtendFloat
from .shifted import STRING

REFERENCE_LENGTH = 4096  # Llama-2, the model most defaults were published for


def recommended(pretrained_length: int = 128) -> list[PositionMap]:
    """The methods with their published defaults scaled to ``pretrained_length`` (see the module docstring)."""
    L = check_positive_int("pretrained_length", pretrained_length)
    if L < 16:
        raise ValueError(f"pretrained_length must be >= 16 for the scaled defaults, got {L}")
    f = L / REFERENCE_LENGTH

    def scaled(length: float) -> int:
        return max(1, round(length * f))

    return [
        SelfExtend(32, scaled(1024), L),
        SelfExtendFloat(24, scaled(1024), L),
        SelfExtend(24, scaled(1024), L),
        ReRoPE(scaled(512), L),
        LeakyReRoPE(scaled(512), 16.0, L),
        SELF(16.0, 0.02 / f, scaled(512), L),
        STRING(round(L / 3), scaled(128), L),
        DualChunk(3 * L // 4, L - 3 * L // 4, L),
        LMInfinite(L, L, 10),
        StreamingLLM(4, scaled(2000), L),
    ]
