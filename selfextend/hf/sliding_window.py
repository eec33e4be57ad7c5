"""Sliding-window attention on Hugging Face transformers models, plugged in like ``SelfExtend``.

    with SlidingWindow(model, window=4096):
        model.generate(**inputs)

Mistral 7B (Jiang et al., 2023, arXiv 2310.06825, Sec. 2): "each token can attend to at most W
tokens from the previous layer" (W = 4096). Query i attends keys 0 <= i - j < W with its ordinary
RoPE positions and one softmax: SelfExtend's neighbor band with the grouped part dropped, so the
handle is ``SelfExtend``'s machinery (the attention and mask functions registered in transformers'
``AttentionInterface`` / ``AttentionMaskInterface``, the configs switched, ``.remove()`` restoring
them exactly) with another attention function: ``selfextend.fast_attention.sliding_window_attention``
on the already-rotated q, k, v. Without padding the mask function returns None (recording the
length), so nothing of size N x N is built; padding is refused.
"""
from __future__ import annotations

import torch

from .._checks import check_positive_int
from ..fast_attention import sliding_window_attention
from .integration import SelfExtend, _is_local_layer, _text_config

__all__ = ["SlidingWindow"]


class SlidingWindow(SelfExtend):
    """Apply sliding-window attention (window W >= 1) to a transformers causal LM; ``.remove()`` undoes it.

    A context manager and a removable handle, used like ``selfextend.hf.SelfExtend``. Each query
    attends its W most recent tokens (itself included), at their ordinary positions; W >= the input
    length is the unchanged model. Unpadded inputs only (prefill, prefill with a cache, ``generate``);
    layers the model builds as sliding-window keep their own attention. Inference only.
    """

    _title = "SlidingWindow"

    def __init__(self, model: torch.nn.Module, window: int):
        self.window = check_positive_int("window", window)
        self.group_size = 1  # no grouped part (SelfExtend's machinery reads it for local layers only)
        self.implementation = "auto"
        # Every distance stays below W: any length is inside the pretrained range, nothing to warn about.
        self.max_position_embeddings = getattr(_text_config(model), "max_position_embeddings", None)
        self.max_length = None
        self._start(model)

    def __repr__(self) -> str:
        state = "active" if self._active else "removed"
        return (f"SlidingWindow(window={self.window}, {state}, "
                f"layers={len(self.extended_layers)} windowed + {len(self.local_layers)} local)")

    def _attention(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                   softcap=None, sliding_window=None, **kwargs):
        """AttentionInterface entry: rotated q [b, hq, nq, d], k and v [b, hkv, nk, d] -> ([b, nq, hq, d], None)."""
        if sliding_window is not None or _is_local_layer(module):  # the model's own local layers (or refused)
            return super()._attention(module, query, key, value, attention_mask, scaling, dropout, softcap,
                                      sliding_window, **kwargs)
        if softcap is not None:
            raise ValueError(f"attention logit soft-capping (softcap={softcap}) is not supported by SlidingWindow")
        key, value, _ = self._unpadded_call(module, query, key, value, attention_mask, kwargs)
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        output = sliding_window_attention(query, key, value, self.window, scale=scale)  # [b, hq, nq, d]
        return output.transpose(1, 2).contiguous(), None
