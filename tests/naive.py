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


# ----------------------------------------------------------------------------------------------
# SelfExtend's relatives: each rule typed from its paper / reference code, one pair at a time.
# A rule returns the relative position of (query i, key j), or None when the method drops the key.


def _logistic_group(p, capacity, rate):
    """The group index of position p when groups have sizes floor(C / (1 + (C - 1) exp(-r x)))."""
    x, end = 0, 0
    while True:
        size = max(1, math.floor(capacity / (1 + (capacity - 1) * math.exp(-rate * x))))
        end += size
        if p < end:
            return x
        x += 1


def relative_rule(name, params, i, j):
    """Relative position of (i, j) under method ``name`` with ``params`` (a dict), or None if dropped."""
    d = i - j
    if name == "selfextend":
        g, w = params["g"], params["w"]
        return d if d < w else (i // g + w - w // g) - j // g
    if name == "selfextend_float":
        g, w = params["g"], params["w"]
        return d if d < w else (i // g + w - w / g) - j // g
    if name == "rerope":
        return min(d, params["w"])
    if name == "leaky_rerope":
        w, k = params["w"], params["k"]
        return d if d < w else w + (d - w) / k
    if name == "self":
        w, c, r = params["w"], params["C"], params["r"]
        return d if d < w else w + _logistic_group(i - w, c, r) - _logistic_group(j, c, r)
    if name == "string":
        s, w = params["S"], params["W"]
        return d if d <= s else d - s + w
    if name == "dca":
        s, w = params["s"], params["w"]
        apart = i // s - j // s
        if apart == 0:
            return (i % s) - (j % s)
        if apart == 1:
            return min(s + i % s, s + w - 1) - (j % s)
        return (s + w - 1) - (j % s)
    if name == "lm_infinite":
        if d < params["n_local"] or j < params["n_global"]:
            return min(d, params["L"])
        return None
    if name == "streaming":
        sinks, recent = params["S"], params["R"]
        if d < recent:
            return d
        if j < sinks:
            return min(i, sinks + recent - 1) - j
        return None
    if name == "sliding_window":  # Mistral: "each token can attend to at most W tokens"
        return d if d < params["W"] else None
    raise ValueError(name)


def relative_attention_loop(q, k, v, name, params, base=10000.0):
    """Attention for q [b, hq, n, d], k/v [b, hkv, n, d] under a relative-position rule (float64 loop).

    Each pair's logit is  <rope(q_i, rel), rope(k_j, 0)>: RoPE's scores depend only on the difference.
    """
    b, hq, n, dim = q.shape
    hkv = k.shape[1]
    scale = 1.0 / math.sqrt(dim)
    out = torch.zeros(b, hq, n, v.shape[-1], dtype=torch.float64)
    for batch in range(b):
        for head in range(hq):
            kv_head = head // (hq // hkv)
            for i in range(n):
                keys, logits = [], []
                for j in range(i + 1):
                    rel = relative_rule(name, params, i, j)
                    if rel is None:
                        continue
                    qr = rotate_pairs(q[batch, head, i], rel, base)
                    keys.append(j)
                    logits.append(float(qr @ k[batch, kv_head, j].double()) * scale)
                top = max(logits)
                exps = [math.exp(x - top) for x in logits]
                total = sum(exps)
                for j, e in zip(keys, exps):
                    out[batch, head, i] += (e / total) * v[batch, kv_head, j].double()
    return out


@torch.no_grad()
def eager_token_nll(model, ids: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor | None = None):
    """Next-token NLL [n - 1] (float64) of a transformers model with its *eager* attention and an explicit
    additive 4-D mask (``allowed`` [n, n], default causal): used as given, so no library mode can switch on."""
    n = ids.numel()
    if allowed is None:
        allowed = torch.ones(n, n, dtype=torch.bool).tril()
    mask = torch.zeros(1, 1, n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)
    previous = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        logits = model(input_ids=ids[None], attention_mask=mask, position_ids=positions[None], use_cache=False).logits
    finally:
        model.config._attn_implementation = previous
    return -torch.log_softmax(logits[0, :-1].double(), dim=-1).gather(-1, ids[1:, None])[:, 0]


# ---------------------------------------------------------------------------------------------
# A transformers model's attention, one query at a time (tests/test_hf.py, tests/test_hf_position_maps.py)
# ---------------------------------------------------------------------------------------------

def rope_float64(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, scaling: float) -> torch.Tensor:
    """RoPE of x [..., n, d] at integer positions [n] in float64 (rotate-half convention): the first
    2 * len(inv_freq) dims turn, the rest pass (partial rotary)."""
    rotary = 2 * inv_freq.numel()
    angle = positions.double()[:, None] * inv_freq.double()[None, :]
    angle = torch.cat((angle, angle), dim=-1)
    part = x[..., :rotary].double()
    half = rotary // 2
    turned_half = torch.cat((-part[..., half:], part[..., :half]), dim=-1)
    return torch.cat(((part * angle.cos() + turned_half * angle.sin()) * scaling, x[..., rotary:].double()), dim=-1)


def rope_tables(model, module) -> tuple[torch.Tensor, float]:
    """(inv_freq, attention_scaling) the model's rotary embedding uses for this layer."""
    rotary = model.model.rotary_emb
    layer_type = getattr(module, "layer_type", None)
    if layer_type is not None and hasattr(rotary, f"{layer_type}_inv_freq"):
        return getattr(rotary, f"{layer_type}_inv_freq"), getattr(rotary, f"{layer_type}_attention_scaling")
    return rotary.inv_freq, rotary.attention_scaling


class PerQueryAttention:
    """Attention from un-rotated q, k, one query at a time, RoPE applied here in float64.

    ``attend(i, sliding_window)`` -> (key tokens [m], query positions [m], key positions [m]) of query i:
    the rule under test, written out by the test (a layer with a sliding window passes its width)."""

    name = "naive_per_query_attention"

    def __init__(self, model, attend):
        self.model, self.attend = model, attend

    def __call__(self, module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                 softcap=None, sliding_window=None, **kwargs):
        batch, heads, n, _ = query.shape
        assert key.shape[2] == n, "the reference runs without a cache"
        inv_freq, rope_scale = rope_tables(self.model, module)
        kv_head = torch.arange(heads) // (heads // key.shape[1])  # query head h reads kv head h // per_kv
        out = torch.zeros(batch, heads, n, value.shape[-1], dtype=torch.float64)
        for i in range(n):
            j, q_pos, k_pos = self.attend(i, sliding_window)
            q = rope_float64(query[:, :, i, None, :].expand(-1, -1, len(j), -1), q_pos, inv_freq, rope_scale)
            k = rope_float64(key[:, kv_head][:, :, j], k_pos, inv_freq, rope_scale)  # [b, heads, keys, d]
            score = (q * k).sum(-1) * scaling
            if softcap is not None:
                score = softcap * torch.tanh(score / softcap)
            weight = torch.softmax(score, dim=-1)
            out[:, :, i] = (weight[..., None] * value[:, kv_head][:, :, j].double()).sum(2)
        return out.to(query.dtype).transpose(1, 2).contiguous(), None


@torch.no_grad()
def per_query_logits(model, ids: torch.Tensor, attend) -> torch.Tensor:
    """A transformers model's logits with ``PerQueryAttention(attend)`` in every layer: the rotary embedding
    is made the identity (cos = 1, sin = 0) so q and k reach attention un-rotated."""
    import transformers

    transformers.AttentionInterface.register(PerQueryAttention.name, PerQueryAttention(model, attend))
    previous = model.config._attn_implementation
    identity = model.model.rotary_emb.register_forward_hook(
        lambda module, args, output: (torch.ones_like(output[0]), torch.zeros_like(output[1])))
    model.set_attn_implementation(PerQueryAttention.name)
    try:
        return model(input_ids=ids, use_cache=False).logits
    finally:
        identity.remove()
        model.set_attn_implementation(previous)
