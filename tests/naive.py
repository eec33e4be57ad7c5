"""Slow, obviously correct reference implementations used only by the tests.

Written from the paper's rule with plain Python loops and explicit 2-D rotations; they share no code
with the package.
"""
import math

import torch


def rotate_pairs(vector: torch.Tensor, position: int, base: float = 10000.0) -> torch.Tensor:
    """RoPE by hand: pair k is (x[k], x[k + d/2]), turned by the angle position * base**(-2k/d)."""
    d = vector.shape[-1]
    out = vector.double().clone()
    for pair in range(d // 2):
        angle = position * base ** (-2.0 * pair / d)
        c, s = math.cos(angle), math.sin(angle)
        x, y = float(vector[pair]), float(vector[pair + d // 2])
        out[pair] = x * c - y * s
        out[pair + d // 2] = x * s + y * c
    return out


def self_extend_loop(q, k, v, group_size, window, positions=None, base=10000.0, scale=None):
    """SelfExtend for q [b, hq, nq, d], k/v [b, hkv, nk, d], one query and one key at a time (float64).

    positions: key positions [nk] or [b, nk] (default 0..nk-1); queries are the last nq keys.
    """
    b, hq, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    out = torch.zeros(b, hq, nq, v.shape[-1], dtype=torch.float64)
    weights = torch.zeros(b, hq, nq, nk, dtype=torch.float64)
    for batch in range(b):
        if positions is None:
            pos = list(range(nk))
        else:
            row = positions if positions.dim() == 1 else positions[batch]
            pos = [int(p) for p in row]
        for head in range(hq):
            kv_head = head // (hq // hkv)
            for r in range(nq):
                i_index = nk - nq + r
                i = pos[i_index]
                logits = []
                for j_index in range(i_index + 1):  # causal: keys up to the query's own index
                    j = pos[j_index]
                    if i - j < window:  # neighbor attention: ordinary positions
                        qi, kj = i, j
                    else:  # grouped attention: floor division, then the shift on the query
                        qi, kj = i // group_size + (window - window // group_size), j // group_size
                    qr = rotate_pairs(q[batch, head, r], qi, base)
                    kr = rotate_pairs(k[batch, kv_head, j_index], kj, base)
                    logits.append(float(qr @ kr) * scale)
                top = max(logits)
                exps = [math.exp(x - top) for x in logits]
                total = sum(exps)
                for j_index, e in enumerate(exps):
                    weights[batch, head, r, j_index] = e / total
                    out[batch, head, r] += (e / total) * v[batch, kv_head, j_index].double()
    return out, weights
