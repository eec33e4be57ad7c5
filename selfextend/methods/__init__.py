"""SelfExtend's relatives: training-free context extensions written as position maps.

What lives here: one small file per family of methods, each a ``PositionMap`` that the package can
draw (``position_map``: the relative position, region and mask of every (query, key) pair) and run
(``attention``: exact attention through the one kernel of ``selfextend.attention.region_attention``):

- ``selfextend``: SelfExtend (Jin et al., 2024) and the official code's float-division variant;
- ``grouped``: grouped attention alone, p // g for every token (the paper's Fig. 2);
- ``rerope``: ReRoPE and Leaky ReRoPE (Su, 2023);
- ``logistic``: SELF, group sizes growing logistically (arXiv 2505.17296);
- ``shifted``: STRING (An et al., 2024, arXiv 2410.18745);
- ``chunks``: Dual Chunk Attention / ChunkLlama (An et al., 2024, arXiv 2402.17463);
- ``masked``: LM-Infinite (Han et al., 2023), StreamingLLM (Xiao et al., 2023) and Mistral's sliding
  window (Jiang et al., 2023), masks over the same kernel;
- ``llamacpp``: llama.cpp's SelfExtend (``examples/main`` and ``examples/passkey``): KV-cache shifts as maps;
- ``kv_shift``: a tiny llama.cpp KV cache that replays those shifts (the maps' ground truth);
- ``recommended``: every method with its published defaults scaled to a pretrained length.

What it may import: torch and the mechanism at the top of ``selfextend`` (``rope``, ``positions``,
``attention``, ``_checks``). Never ``selfextend.tiny``, ``selfextend.viz`` or ``selfextend.hf``
(``tests/test_layout.py`` checks it); those import from here.
"""
from .base import PositionMap, attention, position_map
from .chunks import DualChunk
from .grouped import Grouped
from .kv_shift import KVCache, replay_main, replay_passkey
from .llamacpp import LlamaCppPasskey, LlamaCppSelfExtend
from .logistic import SELF, logistic_group_sizes
from .masked import LMInfinite, SlidingWindow, StreamingLLM
from .recommended import recommended
from .rerope import LeakyReRoPE, ReRoPE
from .selfextend import SelfExtend, SelfExtendFloat
from .shifted import STRING

__all__ = [
    "SELF",
    "STRING",
    "DualChunk",
    "Grouped",
    "KVCache",
    "LMInfinite",
    "LeakyReRoPE",
    "LlamaCppPasskey",
    "LlamaCppSelfExtend",
    "PositionMap",
    "ReRoPE",
    "SelfExtend",
    "SelfExtendFloat",
    "SlidingWindow",
    "StreamingLLM",
    "attention",
    "logistic_group_sizes",
    "position_map",
    "recommended",
    "replay_main",
    "replay_passkey",
]
