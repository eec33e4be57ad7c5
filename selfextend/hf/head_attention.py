"""The attention of one real layer's heads over a long input, pooled to a map a figure can show.

The paper's Figure 1 / Sec. 3 argument is about what attention does past the pretraining window;
this module reads it off a Hugging Face Llama-style model: capture the input of one layer's
self-attention during an ordinary forward, recompute that layer's q and k, rotate them with the
model's own inverse frequencies, and form the attention probabilities (plain RoPE, or SelfExtend's
merged logits, through ``selfextend.attention.merged_attention``'s reference path) a chunk of query
rows at a time, so a 12k x 12k map never sits in memory at once.

Pooled map, cell (I, J): the mean over the queries of row block I of the attention mass on the keys of
key block J (every row of the pooled map sums to 1). Last row: the attention mass of the last query
per key block.
"""
from __future__ import annotations

import torch

from ..attention import grouped_positions, merged_attention
from .integration import rotate_by


class capture_attention_input:
    """Context manager: keep the first ``n`` hidden states [n, hidden] entering ``attention`` (batch 0)."""

    def __init__(self, attention: torch.nn.Module, n: int):
        self.attention, self.n, self.hidden, self.handle = attention, n, None, None

    def _hook(self, module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        self.hidden = hidden[0, :self.n].detach().clone()

    def __enter__(self) -> capture_attention_input:
        self.handle = self.attention.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


@torch.no_grad()
def layer_queries_keys(attention: torch.nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Un-rotated q [hq, n, d] and k [hkv, n, d] of a Llama-style attention module for hidden [n, hidden]."""
    d = attention.head_dim
    q = attention.q_proj(hidden).view(hidden.shape[0], -1, d).transpose(0, 1)  # [hq, n, d]
    k = attention.k_proj(hidden).view(hidden.shape[0], -1, d).transpose(0, 1)  # [hkv, n, d]
    for name, x in (("q_norm", q), ("k_norm", k)):  # Qwen-3 style per-head norms, where present
        if getattr(attention, name, None) is not None:
            x.copy_(getattr(attention, name)(x))
    return q, k


def _rotate(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """x [h, n, d] rotated to positions [n] with ``inv_freq`` (the model's rotate-half RoPE)."""
    return rotate_by(x[None], positions[None], inv_freq)[0]


@torch.no_grad()
def pooled_attention(q: torch.Tensor, k: torch.Tensor, inv_freq: torch.Tensor, scale: float, *,
                     group_size: int = 1, window: int | None = None, block: int = 192, row_block: int = 32,
                     chunk_blocks: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled map [hq, n/block, n/block], last row [hq, n/row_block]) of causal attention, float64.

    ``group_size`` 1: plain RoPE (positions 0..n-1). Otherwise SelfExtend: pairs at distance >= ``window``
    use query position i // g + (w - w // g) and key position j // g, one softmax over the merged logits.
    n must be a multiple of ``block`` and of ``row_block``.
    """
    hq, n, _ = q.shape
    if n % block or n % row_block:
        raise ValueError(f"the length ({n}) must be a multiple of block ({block}) and row_block ({row_block})")
    positions = torch.arange(n)
    window = n if group_size == 1 or window is None else window  # plain: every pair is a neighbor
    q_grouped_pos, k_grouped_pos = grouped_positions(positions, max(group_size, 1), window)
    q_n, k_n = _rotate(q, positions, inv_freq), _rotate(k, positions, inv_freq)
    q_g, k_g = _rotate(q, q_grouped_pos, inv_freq), _rotate(k, k_grouped_pos, inv_freq)
    n_blocks, chunk = n // block, block * chunk_blocks
    pooled = torch.zeros(hq, n_blocks, n_blocks, dtype=torch.float64)
    last_row = None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        keys = slice(0, stop)  # queries [start, stop) see keys [0, stop): they are the last rows
        v = torch.zeros_like(k_n[None, :, keys])
        _, weights = merged_attention(
            q_n[None, :, start:stop], k_n[None, :, keys], q_g[None, :, start:stop], k_g[None, :, keys], v,
            positions[start:stop], positions[keys], window, scale=scale, return_weights=True,
            implementation="reference")
        weights = weights[0].to(torch.float64)  # [hq, rows, stop]
        full = torch.zeros(hq, stop - start, n, dtype=torch.float64)
        full[:, :, :stop] = weights
        mass = full.view(hq, stop - start, n_blocks, block).sum(-1)  # [hq, rows, key blocks]
        rows = mass.view(hq, -1, block, n_blocks).mean(2)  # [hq, row blocks, key blocks]
        pooled[:, start // block:stop // block] = rows
        if stop == n:
            last_row = full[:, -1].view(hq, n // row_block, row_block).sum(-1)
    return pooled, last_row
