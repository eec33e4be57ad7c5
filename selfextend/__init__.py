"""selfextend: understand, see and reproduce SelfExtend (Jin et al., ICML 2024, arXiv 2401.01325)."""
from .attention import merged_attention, rope_attention, self_extend_attention
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
]
