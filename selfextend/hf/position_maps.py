"""Any position map of ``selfextend.methods`` on a Hugging Face transformers model, plugged in like ``SelfExtend``.

    from selfextend.methods import LlamaCppSelfExtend
    with MappedPositions(model, LlamaCppSelfExtend(8, 1024, prompt_length=len(prompt))):
        model.generate(**inputs)

A ``PositionMap`` says, for every (query i, key j), which region the pair is in (r = #{t :
u(i) - u(j) >= t}) and where q and k are rotated in that region (a_r(i), b_r(j)). The model hands
its attention q and k already rotated to i and j; RoPE composes, so region r's q is turned further
by a_r(i) - i and its k by b_r(j) - j (angles in float64, the model's own inverse frequencies), and
``selfextend.attention.region_attention`` takes one softmax over the merged logits: the fast kernel
(nothing N x N) for long inputs. The handle is ``SelfExtend``'s machinery (the attention and mask
functions registered in transformers' interfaces, the configs switched, ``.remove()`` restoring
them) with another attention function, as ``SlidingWindow`` is. Positions are 0 .. N - 1 of one
unpadded row (prefill, prefill with a cache, ``generate``); padding is refused. Maps that drop keys
(a mask) are refused too: ``SlidingWindow`` runs Mistral's window.
"""
from __future__ import annotations

import torch

from ..attention import IMPLEMENTATIONS, region_attention
from ..methods import PositionMap
from .integration import SelfExtend, _inverse_frequencies, _is_local_layer, _text_config, rotate_by

__all__ = ["MappedPositions"]


class MappedPositions(SelfExtend):
    """Apply a ``selfextend.methods.PositionMap`` (one without a mask) to a transformers causal LM.

    A context manager and a removable handle, used like ``selfextend.hf.SelfExtend``: the model's
    attention follows the map's regions and positions, exactly (one softmax over the merged logits).
    ``.method`` may be replaced between forwards (e.g. a llama.cpp schedule with another
    ``prompt_length``). Unpadded inputs only; layers the model builds as sliding-window keep their
    own attention. Inference only.
    """

    _title = "MappedPositions"

    def __init__(self, model: torch.nn.Module, method: PositionMap, *, implementation: str = "auto"):
        self.method = _checked_method(method)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {sorted(IMPLEMENTATIONS)}, got {implementation!r}")
        self.implementation = implementation
        self.group_size, self.window = 1, 1  # SelfExtend's machinery reads them for local layers only
        self.max_position_embeddings = getattr(_text_config(model), "max_position_embeddings", None)
        self.max_length = None  # the map decides its reach: method.largest_relative_position(N)
        self._start(model)

    def __setattr__(self, name, value):
        if name == "method":
            value = _checked_method(value)
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        state = "active" if self._active else "removed"
        return f"MappedPositions({self.method.label}, {state}, layers={len(self.extended_layers)})"

    def _attention(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                   softcap=None, sliding_window=None, **kwargs):
        """AttentionInterface entry: rotated q [b, hq, nq, d], k and v [b, hkv, nk, d] -> ([b, nq, hq, d], None)."""
        if sliding_window is not None or _is_local_layer(module):  # the model's own local layers (or refused)
            return super()._attention(module, query, key, value, attention_mask, scaling, dropout, softcap,
                                      sliding_window, **kwargs)
        key, value, length = self._unpadded_call(module, query, key, value, attention_mask, kwargs)
        nq = query.shape[2]
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        inv_freq = _inverse_frequencies(self.rotary[module], module)
        positions = torch.arange(length, device=query.device)  # keys 0 .. N - 1, queries the last nq
        q_pos = positions[length - nq:]
        qs, ks = [], []
        for a, b in self.method.region_positions(positions):
            qs.append(_turned(query, a.to(query.device)[length - nq:], q_pos, inv_freq))
            ks.append(_turned(key, b.to(key.device), positions, inv_freq))
        output = region_attention(
            qs, ks, value, self.method.query_coordinates(q_pos), self.method.coordinates(positions),
            self.method.thresholds(), scale=scale, softcap=softcap, implementation=self.implementation,
        )  # [b, hq, nq, d]
        return output.transpose(1, 2).contiguous(), None


def _checked_method(method) -> PositionMap:
    """The map itself, or ValueError: not a PositionMap, or one that drops keys."""
    if not isinstance(method, PositionMap):
        raise ValueError(f"method must be a selfextend.methods.PositionMap, got {type(method).__name__}")
    probe = torch.arange(4)
    if method.allowed(probe[:, None], probe[None, :]) is not None:
        raise ValueError(f"method {method.label!r} drops keys (a mask): MappedPositions runs maps without one; "
                         "use selfextend.hf.SlidingWindow for a sliding window")
    return method


def _turned(x: torch.Tensor, target: torch.Tensor, ordinary: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """x [b, h, n, d], rotated at ``ordinary`` positions [n], turned to ``target`` [n] (x itself where equal)."""
    delta = target.to(torch.float64) - ordinary.to(torch.float64)
    if not bool(delta.any()):
        return x
    return rotate_by(x, delta.expand(x.shape[0], -1), inv_freq)
