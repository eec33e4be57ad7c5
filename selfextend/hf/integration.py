"""SelfExtend on Hugging Face transformers models: one call, no fine-tuning (Jin et al., 2024).

    with SelfExtend(model, group_size=8, window=1024):
        model.generate(**inputs)

    handle = apply(model, group_size=8, window=1024)   # ... later: handle.remove()

"SelfExtend ... extends the context window of LLMs by constructing bi-level attention information:
the grouped attention and the neighbor attention ... Both are computed based on the original
model's self-attention mechanism during inference" (Sec. 3). Nothing is trained; only the position
each query and key is rotated to changes.

How it plugs in (transformers >= 5). Every supported model calls its attention through
``AttentionInterface`` with q and k *already rotated* to their ordinary positions. We register one
attention function and one mask function under a fresh name and point the model's
``config._attn_implementation`` at it. Inside, the grouped q and k are
obtained by rotating the rotated tensors once more, by (target - original) position, with the
model's own inverse frequencies (so every ``rope_scaling`` type, partial rotary and per-layer-type
RoPE come for free; the model's attention scaling is already in the rotated tensors):

    query target  p // g + (w - w // g)          key target  p // g            (Algorithm 1)

Where the positions come from. Without padding (every row of the batch full: prefill, dynamic or
static cache, ``generate``) the mask function returns None and records the current length
(``cache_position``'s end, from transformers' query offset); the attention function then takes the
positions 0 .. length - 1, drops a static cache's empty slots beyond the length, and the kernel
runs with its default causal mask: nothing of size N x N is allocated. With padding (or a
sliding-window layer, or a custom mask) the boolean mask is materialised and positions are counted
from it (the n-th visible key of a row is at position n - 1), so left/right padding gives the same
result as each row run alone; they are counted once per mask per forward, not in every layer. Then ``selfextend.attention.merged_attention`` merges the neighbor and grouped
logits (grouped where query - key >= w) and takes one softmax.

transformers is imported lazily: ``import selfextend`` works without it.
"""
from __future__ import annotations

import inspect
import itertools
import warnings
import weakref

import torch

from .._checks import check_positive_int
from ..attention import IMPLEMENTATIONS, grouped_positions, merged_attention, queries_last_mask
from ..positions import max_context_length
from ..rope import rotate_pairs, turn_pairs

__all__ = ["SelfExtend", "apply", "max_supported_length"]

_NAME_PREFIX = "selfextend"
_counter = itertools.count()
_MARKER = "_selfextend_handle"


def _transformers():
    """Import transformers' two dispatch tables lazily (transformers is an optional dependency)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, causal_mask_function, sdpa_mask
    except ImportError as error:  # pragma: no cover - exercised only without transformers
        raise ImportError(
            "selfextend.hf needs transformers >= 5: in a clone of this repository, "
            'pip install -e ".[hf]" (or make setup, which installs the pinned transformers)'
        ) from error
    return AttentionInterface, AttentionMaskInterface, sdpa_mask, causal_mask_function


def max_supported_length(max_position_embeddings: int, group_size: int, window: int) -> int:
    """The longest input whose merged positions stay inside the pretrained range: (L - w) * g + w."""
    return max_context_length(max_position_embeddings, group_size, window)


# ----------------------------------------------------------------------------------------------
# Positions and rotations
# ----------------------------------------------------------------------------------------------

def positions_from_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions counted from a boolean mask [b, h or 1, nq, nk] (True = may attend).

    A key slot is *visible* when some query may attend to it; the n-th visible slot of a row is at
    position n - 1 (left padding and empty static-cache slots are skipped). A query that may attend
    to n keys (itself and the n - 1 before it) is at position n - 1.
    Returns query positions [b, nq], key positions [b, nk] (both long, >= 0) and visible [b, nk].
    """
    allowed = mask.any(dim=1)  # [b, nq, nk]: any head
    visible = allowed.any(dim=1)  # [b, nk]
    key_pos = (visible.cumsum(dim=-1) - 1).clamp(min=0)
    query_pos = (allowed.sum(dim=-1) - 1).clamp(min=0)  # a fully masked (padding) row gets 0
    return query_pos, key_pos, visible


def rotate_by(x: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate already-rotated x [b, h, n, d] further by ``delta`` positions [b, n] (RoPE composes).

    Only the first 2 * len(inv_freq) dims rotate (partial rotary, e.g. Phi-3); the rest pass through.
    The angles delta * theta are formed in float64: a float32 difference of two large angles
    loses ~1e-2 rad at positions ~1e5.
    """
    rotary_dim = 2 * inv_freq.shape[-1]
    rotary, passthrough = x[..., :rotary_dim], x[..., rotary_dim:]
    rotated = rotate_pairs(rotary, delta, inv_freq)  # delta [b, n]: shared by the heads
    return torch.cat((rotated, passthrough), dim=-1) if passthrough.shape[-1] else rotated


class GroupedRotations:
    """cos/sin of SelfExtend's grouped shifts for positions 0..M-1, computed once and reused.

    The grouped query at position p is the ordinary one turned further by  p // g + (w - w // g) - p,
    the grouped key by  p // g - p: angles that depend only on p. An unpadded forward (and every decoding
    step) needs them for positions 0..n-1, in every layer; forming them in float64 each time costs more
    than the attention of a decoding step. The table grows (doubling) as longer inputs arrive; a change
    of inv_freq (dynamic RoPE) rebuilds it. Values are exactly those ``rotate_by`` forms.
    """

    def __init__(self, group_size: int, window: int):
        self.group_size, self.window = group_size, window
        self._tables: dict = {}  # (kind, device, dtype) -> (inv_freq, cos [M, r], sin [M, r])

    def shift(self, kind: str, positions: torch.Tensor) -> torch.Tensor:
        """The extra turn of a grouped query ("query") or key ("key") at ``positions``."""
        query_target, key_target = grouped_positions(positions, self.group_size, self.window)
        return (query_target if kind == "query" else key_target) - positions

    def cos_sin(self, kind: str, start: int, stop: int, inv_freq: torch.Tensor, dtype: torch.dtype):
        """cos, sin [stop - start, len(inv_freq)] of the grouped shift of positions start..stop-1."""
        key = (kind, inv_freq.device, dtype)
        entry = self._tables.get(key)
        if entry is None or entry[1].shape[0] < stop or not torch.equal(entry[0], inv_freq):
            size = max(stop, 2 * entry[1].shape[0] if entry is not None else 0, 1024)
            positions = torch.arange(size, device=inv_freq.device)
            angles = self.shift(kind, positions).to(torch.float64)[:, None] * inv_freq.to(torch.float64)
            entry = (inv_freq.clone(), angles.cos().to(dtype), angles.sin().to(dtype))
            self._tables[key] = entry
        return entry[1][start:stop], entry[2][start:stop]

    def rotate(self, kind: str, x: torch.Tensor, start: int, inv_freq: torch.Tensor,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """Rotated x [b, h, n, d] at positions start..start+n-1 turned to its grouped position (into ``out``)."""
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        cos, sin = self.cos_sin(kind, start, start + x.shape[2], inv_freq, compute)
        rotary_dim = 2 * inv_freq.shape[-1]
        rotary, passthrough = x[..., :rotary_dim], x[..., rotary_dim:]
        if out is not None and not passthrough.shape[-1] and out.dtype == compute:  # straight into out: no temporary
            return turn_pairs(rotary, cos, sin, out=out)  # the same arithmetic as rope.rotate_pairs
        rotated = turn_pairs(rotary, cos, sin)
        rotated = torch.cat((rotated, passthrough), dim=-1) if passthrough.shape[-1] else rotated
        return rotated if out is None else out.copy_(rotated)


class GroupedKeys:
    """The grouped (re-rotated) keys of one DynamicCache layer, kept between decoding steps.

    Stored on the cache layer itself, so they live and die with the cache. Valid while the layer's
    ``keys`` is the very tensor they were last extended from (checked before each update): any
    reorder, crop or reset replaces that tensor and the rows are turned again from scratch.
    Rows are appended into a buffer that starts and grows with a sixteenth to spare (at least 256 rows),
    so a decoding step costs O(new rows), not O(N), the first steps after a prefill allocate nothing,
    and the buffer holds at most max(N / 16, 256) rows more than the keys.
    """

    def __init__(self, owner: str, inv_freq: torch.Tensor):
        self.owner, self.inv_freq = owner, inv_freq.clone()
        self.buffer: torch.Tensor | None = None
        self.length = 0
        self.source = lambda: None  # weak reference to the keys tensor last seen

    def extend(self, key: torch.Tensor, rotations: GroupedRotations, inv_freq: torch.Tensor) -> torch.Tensor:
        """Turn rows length..nk-1 of ``key`` [b, hkv, nk, d], append them; all nk grouped rows (a view)."""
        nk = key.shape[2]
        if self.buffer is None or self.buffer.shape[:2] != key.shape[:2] or self.buffer.shape[3] != key.shape[3] \
                or self.buffer.dtype != key.dtype or self.buffer.device != key.device:
            self.buffer, self.length = None, 0
        if self.buffer is None or self.buffer.shape[2] < nk:
            # Room for the decoding steps to come from the start (a prefill's buffer that grew at the first
            # step would leave its old copy in the allocator's heap), then growth by a sixteenth.
            capacity = nk if self.buffer is None else self.buffer.shape[2]
            capacity = max(nk, capacity + max(capacity // 16, 256))
            grown = key.new_empty(*key.shape[:2], capacity, key.shape[3])
            if self.length:
                grown[:, :, :self.length] = self.buffer[:, :, :self.length]
            self.buffer = grown
        if nk > self.length:
            rotations.rotate("key", key[:, :, self.length:nk], self.length, inv_freq,
                             out=self.buffer[:, :, self.length:nk])  # written in place: no key-sized temporary
        self.length = nk
        self.source = weakref.ref(key)
        return self.buffer[:, :, :nk]


_GROUPED_ATTR = "_selfextend_grouped_keys"


def _dynamic_layer(cache, layer_idx):
    """The transformers DynamicLayer (append-only by concatenation) of ``cache`` for ``layer_idx``, or None."""
    layers = getattr(cache, "layers", None)
    if layers is None or layer_idx is None or not 0 <= layer_idx < len(layers):
        return None
    from transformers.cache_utils import DynamicLayer

    layer = layers[layer_idx]
    return layer if type(layer) is DynamicLayer else None


def _as_bool_mask(mask: torch.Tensor | None, nq: int, nk: int, device) -> torch.Tensor:
    """The mask as bool [b or 1, h or 1, nq, nk] (True = may attend); causal (queries last) if None."""
    if mask is None:
        return queries_last_mask(nq, nk, device)[None, None]
    if mask.dtype != torch.bool:  # an additive float mask: 0 = attend, very negative = masked
        mask = mask > torch.finfo(mask.dtype).min / 2
    if mask.dim() == 2:
        mask = mask[None, None]
    return mask[..., -nk:] if mask.shape[-1] != nk else mask


# ----------------------------------------------------------------------------------------------
# Finding the attention layers and their rotary embeddings
# ----------------------------------------------------------------------------------------------

def _dispatches_through_interface(module: torch.nn.Module) -> bool | None:
    """True if the class source calls AttentionInterface; None when the source cannot be read."""
    try:
        source = inspect.getsource(type(module))
    except (OSError, TypeError):
        return None
    return "ALL_ATTENTION_FUNCTIONS" in source


def _attention_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Decoder self-attention modules: class name ending in 'Attention', a layer_idx and a config."""
    layers = []
    for name, module in model.named_modules():
        if (
            type(module).__name__.endswith("Attention")
            and hasattr(module, "layer_idx")
            and hasattr(module, "config")
            and getattr(module, "is_causal", True)
        ):
            layers.append((name, module))
    return layers


def _rotary_embedding(model: torch.nn.Module, name: str) -> torch.nn.Module | None:
    """The rotary embedding nearest to the module called ``name``: itself, then its ancestors."""
    parts = name.split(".") if name else []
    for depth in range(len(parts), -1, -1):
        owner = model.get_submodule(".".join(parts[:depth]))
        rotary = getattr(owner, "rotary_emb", None)
        if isinstance(rotary, torch.nn.Module):
            return rotary
    return None


def _inverse_frequencies(rotary: torch.nn.Module, module: torch.nn.Module) -> torch.Tensor:
    """The inverse frequencies this layer's RoPE uses now (per layer type, e.g. Gemma-3 local/global)."""
    layer_type = getattr(module, "layer_type", None)
    if layer_type is not None and hasattr(rotary, f"{layer_type}_inv_freq"):
        return getattr(rotary, f"{layer_type}_inv_freq")
    return rotary.inv_freq


def _is_local_layer(module: torch.nn.Module) -> bool:
    """A layer built as sliding-window by design (Gemma-2/3 local layers, Qwen sliding layers)."""
    return getattr(module, "sliding_window", None) is not None


# ----------------------------------------------------------------------------------------------
# The handle
# ----------------------------------------------------------------------------------------------

class SelfExtend:
    """Apply SelfExtend to a transformers causal LM; a context manager and a removable handle.

    ``SelfExtend(model, group_size, window)`` switches the model's attention at once;
    ``.remove()`` (or leaving the ``with`` block) restores the previous attention exactly.
    group_size g >= 1 and window w >= 1 (w < max_position_embeddings): keys within w of a query keep
    their ordinary positions; farther keys use the grouped positions, so inputs up to
    (L - w) * g + w tokens stay inside the pretrained range L (Eq. 4).
    Layers the model builds as sliding-window (Gemma-2/3 local layers) keep their own attention:
    they never see a distance beyond their window. A model whose every layer uses a sliding window
    (e.g. Mistral with ``sliding_window=4096``) is refused: set ``model.config.sliding_window = None``.
    ``implementation`` is passed to ``selfextend.attention.merged_attention``. Inference only.
    """

    _title = "SelfExtend"  # the method's name in messages (subclasses: their own)

    def __init__(self, model: torch.nn.Module, group_size: int, window: int, *, implementation: str = "auto"):
        self.group_size = check_positive_int("group_size", group_size)
        self.window = check_positive_int("window", window)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {sorted(IMPLEMENTATIONS)}, got {implementation!r}")
        self.implementation = implementation
        text_config = _text_config(model)
        self.max_position_embeddings = getattr(text_config, "max_position_embeddings", None)
        if self.max_position_embeddings is not None and self.window >= self.max_position_embeddings:
            raise ValueError(
                f"window must be smaller than the model's max_position_embeddings "
                f"({self.max_position_embeddings}), got {self.window}"
            )
        self.max_length = (
            None if self.max_position_embeddings is None
            else max_supported_length(self.max_position_embeddings, self.group_size, self.window)
        )
        self._rotations = GroupedRotations(self.group_size, self.window)
        self._start(model)

    def _start(self, model: torch.nn.Module) -> None:
        """The state shared by every handle, then find the layers and switch the attention."""
        self.model = model
        self.calls = 0  # SelfExtend attention calls in the last forward (all layers)
        self.position_counts = 0  # positions counted from a mask in the last forward (once per mask)
        # The current length of an unpadded batch, set by the mask function whenever it returns None. Not
        # reset per forward: generate may build the masks before calling the model.
        self._length: int | None = None
        self._positions: dict = {}  # id(mask) -> (mask, bool mask, positions): counted once per forward
        self._active = False
        self._warned_length = False
        self._length_checked = False
        self._reached: set = set()
        self._cache_layers: dict = {}  # attention module -> its DynamicLayer in this forward, if any
        self._inspect(model)
        self._attach()

    # -- set-up ----------------------------------------------------------------------------------
    def _inspect(self, model: torch.nn.Module) -> None:
        """Find the attention layers, check they dispatch through AttentionInterface, pick RoPE tables."""
        layers = _attention_layers(model)
        if not layers:
            raise ValueError(
                f"found no attention layers in {type(model).__name__} that {self._title} can drive "
                "(expected decoder modules named *Attention with a layer_idx, as in transformers >= 5)"
            )
        bypass = [name for name, module in layers if _dispatches_through_interface(module) is False]
        if bypass:
            raise ValueError(
                f"attention layers {bypass[:3]}{'...' if len(bypass) > 3 else ''} do not dispatch through "
                f"transformers.AttentionInterface, so {self._title} would never be reached; "
                "use a transformers >= 5 model class (not remote code that hard-codes its attention)"
            )
        self.layer_names = {module: name for name, module in layers}
        self.rotary = {}
        for name, module in layers:
            rotary = _rotary_embedding(model, name)
            if rotary is None or not (hasattr(rotary, "inv_freq") or hasattr(module, "layer_type")):
                raise ValueError(f"layer {name!r} has no rotary embedding (rotary_emb with inv_freq): "
                                 f"{self._title} needs a RoPE model")
            self.rotary[module] = rotary
        local = [name for name, module in layers if _is_local_layer(module)]
        uniform_window = getattr(layers[0][1].config, "sliding_window", None)
        if not local and uniform_window is not None:
            raise ValueError(
                f"every attention layer uses a sliding window (config.sliding_window={uniform_window}); the "
                "model would never see past it. Set model.config.sliding_window = None before applying "
                f"{self._title}, as the paper does for Mistral"
            )
        if len(local) == len(layers):
            raise ValueError(
                f"every attention layer is a sliding-window layer, so {self._title} has nothing to extend; "
                "load the model with sliding windows disabled (e.g. use_sliding_window=False for Qwen2)"
            )
        self.local_layers = local
        self.extended_layers = [name for name, module in layers if not _is_local_layer(module)]
        # The configs to switch: each attention layer's and every model above one (they build the masks).
        configs = {}
        for name, module in layers:
            configs[id(module.config)] = module.config
            parts = name.split(".")
            for depth in range(len(parts)):
                owner = model.get_submodule(".".join(parts[:depth]))
                owner_config = getattr(owner, "config", None)
                if owner_config is not None and hasattr(owner_config, "_attn_implementation_internal"):
                    configs[id(owner_config)] = owner_config
        if hasattr(model, _MARKER) or any(
            str(config._attn_implementation).startswith(_NAME_PREFIX) for config in configs.values()
        ):
            title = getattr(getattr(model, _MARKER, None), "_title", "SelfExtend")
            raise ValueError(f"{title} is already applied to this model: call .remove() on that handle first")
        self._configs = list(configs.values())

    def _attach(self) -> None:
        """Register the attention + mask functions under a fresh name and switch the configs to it."""
        AttentionInterface, AttentionMaskInterface, sdpa_mask, causal = _transformers()
        self.name = f"{_NAME_PREFIX}_{next(_counter)}"

        def mask_or_length(*args, **kwargs):
            """None (and the current length recorded) when there is no padding; else the boolean mask."""
            length = _unpadded_length(causal, *args, **kwargs)
            if length is not None:  # kept for this forward's layers that get None (a sliding mask may follow)
                self._length = length
                return None  # the kernel's default causal mask: no N x N tensor
            kwargs["allow_is_causal_skip"] = False  # a real mask: positions are read from it
            return sdpa_mask(*args, **kwargs)

        AttentionInterface.register(self.name, self._attention)
        AttentionMaskInterface.register(self.name, mask_or_length)
        self._previous = [(config, config._attn_implementation_internal) for config in self._configs]
        for config in self._configs:
            config._attn_implementation_internal = self.name  # this config only, not its sub-configs
        self._hooks = [
            self.model.register_forward_pre_hook(self._before_forward),
            self.model.register_forward_hook(self._after_forward),
        ]
        for module in self.layer_names:  # where the cache's layer is seen before its update (decoding)
            if not _is_local_layer(module):
                self._hooks.append(module.register_forward_pre_hook(self._before_attention, with_kwargs=True))
        setattr(self.model, _MARKER, self)
        self._active = True

    def remove(self) -> None:
        """Restore the previous attention exactly (bit-identical outputs afterwards). Idempotent."""
        if not self._active:
            return
        AttentionInterface, AttentionMaskInterface, *_ = _transformers()
        for config, previous in self._previous:
            config._attn_implementation_internal = previous
        for hook in self._hooks:
            hook.remove()
        AttentionInterface._global_mapping.pop(self.name, None)
        AttentionMaskInterface._global_mapping.pop(self.name, None)
        if getattr(self.model, _MARKER, None) is self:
            delattr(self.model, _MARKER)
        self._active = False

    @property
    def active(self) -> bool:
        """Whether the handle is currently applied."""
        return self._active

    def __enter__(self) -> SelfExtend:
        if not self._active:
            self._inspect(self.model)
            self._attach()
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "active" if self._active else "removed"
        return (
            f"SelfExtend(group_size={self.group_size}, window={self.window}, {state}, "
            f"layers={len(self.extended_layers)} extended + {len(self.local_layers)} local, "
            f"max_length={self.max_length})"
        )

    # -- checks around every forward -------------------------------------------------------------
    def _before_forward(self, module, args) -> None:
        self.calls = 0
        self.position_counts = 0
        self._positions = {}
        self._reached = set()
        self._length_checked = False

    def _before_attention(self, module, args, kwargs) -> None:
        """Note the module's cache layer before ``update`` appends to it, and drop its grouped keys unless
        the layer still holds exactly the keys they were rotated from (nothing reordered, cropped, reset)."""
        self._cache_layers.pop(module, None)
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # transformers >= 5.2x names it "cache"
        layer = _dynamic_layer(cache, getattr(module, "layer_idx", None))
        if layer is None:
            return
        saved = getattr(layer, _GROUPED_ATTR, None)
        if saved is not None and not (saved.owner == self.name and saved.source() is getattr(layer, "keys", None)):
            delattr(layer, _GROUPED_ATTR)
        self._cache_layers[module] = layer

    def _grouped_keys(self, module, key: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
        """Keys [b, hkv, nk, d] turned to their grouped positions (unpadded: positions 0..nk-1).

        With a transformers DynamicCache the grouped keys are kept on the cache layer and only the new
        rows are turned at each step (``GroupedKeys``); otherwise all rows are turned now.
        """
        layer = self._cache_layers.pop(module, None)
        if layer is None or getattr(layer, "keys", None) is not key:
            return self._rotations.rotate("key", key, 0, inv_freq)
        saved = getattr(layer, _GROUPED_ATTR, None)
        if saved is None or saved.length > key.shape[2] or not torch.equal(saved.inv_freq, inv_freq):
            saved = GroupedKeys(self.name, inv_freq)
            setattr(layer, _GROUPED_ATTR, saved)
        return saved.extend(key, self._rotations, inv_freq)

    def _after_forward(self, module, args, output) -> None:
        self._cache_layers = {}
        self._positions = {}  # release the masks held for this forward
        missing = [name for layer, name in self.layer_names.items() if layer not in self._reached]
        if len(missing) == len(self.layer_names):
            raise RuntimeError(
                f"{self._title} was applied but the model's attention never reached it in this forward "
                f"(config._attn_implementation is now {self.model.config._attn_implementation!r}); "
                f"do not change the attention implementation while {self._title} is applied"
            )
        if missing:
            raise RuntimeError(f"{self._title} was not reached by attention layers {missing[:3]}")

    def _check_length(self, length: int) -> None:
        """Warn once when the input (``length`` tokens in its longest row) is longer than (L - w) * g + w."""
        if self._warned_length or self.max_length is None:
            return
        if length > self.max_length:
            self._warned_length = True
            warnings.warn(
                f"input of {length} tokens exceeds (max_position_embeddings - window) * group_size + window = "
                f"({self.max_position_embeddings} - {self.window}) * {self.group_size} + {self.window} = "
                f"{self.max_length}: the farthest grouped positions leave the pretrained range; "
                "use a larger group_size",
                stacklevel=2,
            )

    # -- the attention function ------------------------------------------------------------------
    def _attention(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                   softcap=None, sliding_window=None, **kwargs):
        """AttentionInterface entry: q [b, hq, nq, d], k and v [b, hkv, nk, d], already rotated.

        Returns (output [b, nq, hq, d], attention weights or None), as transformers expects.
        """
        self.calls += 1
        self._reached.add(module)
        nq, nk = query.shape[2], key.shape[2]
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        want_weights = bool(kwargs.get("output_attentions", False))
        if sliding_window is not None and not _is_local_layer(module):
            raise ValueError(
                f"layer {self.layer_names.get(module, '?')!r} uses a sliding window ({sliding_window}); set "
                f"model.config.sliding_window = None for {self._title}, as the paper does for Mistral"
            )
        if attention_mask is None:  # no padding: positions 0 .. length - 1, queries the last nq of them
            length = self._length if self._length is not None and nq <= self._length <= nk else nk
            if length < nk:  # a static cache's empty slots go
                key, value = key[:, :, :length], value[:, :, :length]
            query_pos = key_pos = None  # the kernels' default: 0 .. length - 1, queries last (nothing to check)
            mask, longest = None, length
        else:
            mask, (query_pos, key_pos, visible) = self._mask_positions(attention_mask, nq, nk, query.device)
            longest = visible
        if sliding_window is not None:  # a local layer keeps its own attention: no grouped part
            result = merged_attention(
                query, key, query, key, value, query_pos, key_pos, self.window,
                scale=scale, attn_mask=mask, softcap=softcap, return_weights=want_weights,
                implementation=self.implementation,
            )
        else:
            if not self._length_checked:  # once per forward: it may read a number back from the device
                self._length_checked = True
                self._check_length(longest if isinstance(longest, int) else int(longest.sum(dim=-1).max()))
            inv_freq = _inverse_frequencies(self.rotary[module], module)
            if mask is None:  # positions 0..length-1: the shifts come from the shared table
                first = longest - nq  # position of query row 0

                def query_grouped(start: int, stop: int) -> torch.Tensor:  # the fast path turns a block at a time
                    return self._rotations.rotate("query", query[:, :, start:stop], first + start, inv_freq)

                key_grouped = self._grouped_keys(module, key, inv_freq)
            else:
                query_target, _ = grouped_positions(query_pos, self.group_size, self.window)
                _, key_target = grouped_positions(key_pos, self.group_size, self.window)
                query_grouped = rotate_by(query, query_target - query_pos, inv_freq)
                key_grouped = rotate_by(key, key_target - key_pos, inv_freq)
            result = merged_attention(
                query, key, query_grouped, key_grouped, value, query_pos, key_pos, self.window,
                scale=scale, attn_mask=mask, softcap=softcap, return_weights=want_weights,
                implementation=self.implementation,
            )
        if want_weights and result[1].shape[-1] < nk:  # weights over every cache slot, 0 for empty ones
            result = (result[0], torch.nn.functional.pad(result[1], (0, nk - result[1].shape[-1])))
        output, weights = result if want_weights else (result, None)
        return output.transpose(1, 2).contiguous(), weights

    def _unpadded_call(self, module, query, key, value, attention_mask, kwargs) -> tuple:
        """For handles that take unpadded rows only (SlidingWindow, MappedPositions): count the call, refuse
        padding and attention weights, drop a static cache's empty slots -> (key, value, length)."""
        self.calls += 1
        self._reached.add(module)
        if attention_mask is not None:
            raise ValueError(f"padding is not supported by {self._title}: pass unpadded rows (attention_mask all ones)")
        if kwargs.get("output_attentions", False):
            raise ValueError(f"output_attentions is not supported by {self._title} (it builds no attention matrix)")
        nq, nk = query.shape[2], key.shape[2]
        length = self._length if self._length is not None and nq <= self._length <= nk else nk
        if length < nk:  # a static cache's empty slots go
            key, value = key[:, :, :length], value[:, :, :length]
        return key, value, length

    def _mask_positions(self, attention_mask: torch.Tensor, nq: int, nk: int, device):
        """(bool mask, positions_from_mask(mask)), counted once per mask per forward (not per layer)."""
        cached = self._positions.get(id(attention_mask))
        if cached is not None and cached[0] is attention_mask and cached[1].shape[-2:] == (nq, nk):
            return cached[1], cached[2]
        mask = _as_bool_mask(attention_mask, nq, nk, device)
        positions = positions_from_mask(mask)
        self.position_counts += 1
        # holding attention_mask keeps its id from being reused; released after the forward
        self._positions[id(attention_mask)] = (attention_mask, mask, positions)
        return mask, positions


def _text_config(model: torch.nn.Module):
    """The text config of a transformers model; ValueError unless ``model`` is one (an nn.Module with a .config)."""
    config = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or config is None:
        raise ValueError(
            f"model must be a transformers model (an nn.Module with a .config), got {type(model).__name__}"
        )
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _unpadded_length(causal, batch_size: int, q_length: int, kv_length: int, q_offset=0, kv_offset: int = 0,
                     mask_function=None, attention_mask: torch.Tensor | None = None, local_size=None,
                     **kwargs) -> int | None:
    """The current length q_offset + q_length when the mask is plain causal with no padding, else None.

    Plain: the causal mask function itself (no sliding window, no packed sequences, no overlays),
    keys starting at slot 0, and a 2-D padding mask (if any) that is all True over the first
    q_offset + q_length slots. Static caches' empty slots beyond that length are dropped by the
    attention function. q_offset is transformers' cache position of the first query.
    """
    if mask_function is not causal or local_size is not None or kv_offset != 0:
        return None
    length = int(q_offset) + q_length  # a static cache passes q_offset as a tensor: one read per forward
    if not q_length <= length <= kv_length:
        return None
    if attention_mask is not None:
        if attention_mask.dim() != 2 or attention_mask.shape[-1] < length:
            return None
        if not bool(attention_mask[:, :length].all()):  # slots beyond length: the causal mask hides them
            return None
    return length


def apply(model: torch.nn.Module, group_size: int, window: int, *, implementation: str = "auto") -> SelfExtend:
    """Apply SelfExtend to ``model`` now; returns the handle (``handle.remove()`` undoes it exactly)."""
    return SelfExtend(model, group_size, window, implementation=implementation)
