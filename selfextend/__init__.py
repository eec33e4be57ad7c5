"""selfextend: understand, see and reproduce SelfExtend (Jin et al., ICML 2024, arXiv 2401.01325).

The folders are the architecture; imports point only down this list:

- the mechanism, here at the top: ``rope`` (rotary embedding), ``positions`` (normal, grouped and
  merged position maps, the merge mask, Eq. 4), ``attention`` (the reference SelfExtend attention),
  ``fast_attention`` (the lean exact kernel), ``gpu_attention`` (its CUDA route on torch's fused
  kernels), ``module`` (``SelfExtendAttn``). It imports only
  torch and einops, never a subfolder;
- ``methods/``: SelfExtend's relatives (ReRoPE, STRING, DCA, ...) as position maps run through the
  one exact kernel; imports the mechanism;
- ``viz/``: plotting helpers (each returns a Figure) and ``save_figure``; imports the mechanism;
- ``tiny/``: the tiny byte-level RoPE LM, its corpus, training and evaluation; imports the mechanism
  and ``methods`` (and may use ``viz``);
- ``hf/``: Hugging Face models (the integration, the built-in SmolLM2, the passkey and perplexity
  commands); imports the mechanism, ``viz`` and ``tiny.corpus``;
- ``exercises/``: the notebooks' self-checking exercises; the top layer, imported by nothing.

``import selfextend`` loads the mechanism only: no transformers, no matplotlib.
"""
from .attention import merged_attention, rope_attention, self_extend_attention
from .fast_attention import sliding_window_attention
from .module import SelfExtendAttn
from .positions import (
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
from .rope import apply_rope, inverse_frequencies, rope_cos_sin, rotate_half, rotate_pairs

__version__ = "0.1.0"

__all__ = [
    "SelfExtendAttn",
    "apply_rope",
    "causal_mask",
    "group_shift",
    "inverse_frequencies",
    "grouped_attention_mask",
    "grouped_relative_positions",
    "largest_relative_position",
    "max_context_length",
    "merged_attention",
    "merged_relative_positions",
    "min_group_size",
    "normal_relative_positions",
    "rope_attention",
    "rope_cos_sin",
    "rotate_half",
    "rotate_pairs",
    "self_extend_attention",
    "sliding_window_attention",
]
