"""A tiny decoder-only, byte-level RoPE language model whose attention is chosen at inference.

The model is trained with plain RoPE at a short length L_train (128 bytes). At inference the same
weights run with one of five position treatments (``AttentionMethod``):

    plain        RoPE at positions 0 .. n-1 (extrapolates: relative distances >= L_train are unseen)
    selfextend   SelfExtend(g, w): neighbor attention within w, grouped (floor) positions beyond
                 (Jin et al., 2024, Algorithm 1); reachable length (L - w) * g + w   (Eq. 4)
    pi           linear position interpolation (Chen et al., 2023): position p -> p / s,
                 i.e. theta_k -> theta_k / s
    ntk          NTK-aware scaling (bloc97, 2023): base -> base * s ** (d / (d - 2))
    yarn         YaRN (Peng et al., 2023): per-frequency ramp between PI and no scaling, and
                 logits multiplied by (0.1 ln s + 1) ** 2
    map          any position map of ``selfextend.methods`` (ReRoPE, STRING, DCA, LM-Infinite, ...):
                 ``AttentionMethod("map", position_map=ReRoPE(16))``, or ``relative(ReRoPE(16))``

For pi / ntk / yarn, s is ``AttentionMethod.scale``, or max(1, n / L_train) when it is None
(the "dynamic" choice: just enough to map the input onto the trained length).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_positive_int
from ..attention import self_extend_attention
from ..methods import PositionMap
from ..methods import attention as map_attention
from ..positions import max_context_length
from ..rope import inverse_frequencies, rotate_pairs

METHOD_KINDS = ("plain", "selfextend", "pi", "ntk", "yarn", "map")
# The SelfExtend kernel the model calls (see selfextend.attention.merged_attention): "auto" picks the
# package's fast exact path; "reference" is the two-matrix version (same numbers to ~1e-6).
ATTENTION_IMPLEMENTATION = "auto"


@dataclass(frozen=True)
class AttentionMethod:
    """How attention treats positions at inference; e.g. ``AttentionMethod("selfextend", 16, 32)``."""

    kind: str = "plain"
    group_size: int = 1  # SelfExtend g
    window: int = 1  # SelfExtend neighbor window w
    scale: float | None = None  # pi / ntk / yarn factor s; None = max(1, n / L_train)
    position_map: PositionMap | None = None  # kind "map": a method of selfextend.methods

    def __post_init__(self):
        if self.kind not in METHOD_KINDS:
            raise ValueError(f"kind must be one of {METHOD_KINDS}, got {self.kind!r}")
        if (self.kind == "map") != isinstance(self.position_map, PositionMap):
            raise ValueError("position_map must be a selfextend.methods.PositionMap exactly when kind='map', "
                             f"got kind={self.kind!r} and position_map={self.position_map!r}")
        check_positive_int("group_size", self.group_size)
        check_positive_int("window", self.window)
        if self.scale is not None:
            if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not self.scale >= 1:
                raise ValueError(f"scale must be a number >= 1 or None, got {self.scale!r}")
        if self.kind != "selfextend" and (self.group_size, self.window) != (1, 1):
            raise ValueError(f"group_size and window only apply to kind='selfextend', not {self.kind!r}")
        if self.kind not in ("pi", "ntk", "yarn") and self.scale is not None:
            raise ValueError(f"scale only applies to kind 'pi', 'ntk' or 'yarn', not {self.kind!r}")

    @property
    def label(self) -> str:
        """A short name for legends and tables."""
        names = {"plain": "plain RoPE", "pi": "PI", "ntk": "NTK", "yarn": "YaRN"}
        if self.kind == "map":
            return self.position_map.label
        if self.kind == "selfextend":
            return f"SelfExtend g={self.group_size} w={self.window}"
        if self.kind == "plain":
            return names["plain"]
        return names[self.kind] + (" (dynamic)" if self.scale is None else f" x{self.scale:g}")

    def reach(self, train_length: int) -> int | None:
        """SelfExtend's (L - w) * g + w for this setting (None for the other kinds)."""
        if self.kind != "selfextend":
            return None
        return max_context_length(train_length, self.group_size, self.window)


PLAIN = AttentionMethod()


def selfextend(group_size: int, window: int) -> AttentionMethod:
    """Shorthand for ``AttentionMethod("selfextend", group_size, window)``."""
    return AttentionMethod("selfextend", group_size, window)


def relative(position_map: PositionMap) -> AttentionMethod:
    """Shorthand for ``AttentionMethod("map", position_map=position_map)`` (a method of ``selfextend.methods``)."""
    return AttentionMethod("map", position_map=position_map)


# ----------------------------------------------------------------------------------------------
# Scaled RoPE frequencies (PI, NTK, YaRN)


def pi_frequencies(head_dim: int, base: float, scale: float) -> torch.Tensor:
    """Linear position interpolation: theta_k / s  (rotating p / s by theta_k is rotating p by theta_k / s)."""
    return inverse_frequencies(head_dim, base) / scale


def ntk_base(head_dim: int, base: float, scale: float) -> float:
    """NTK-aware base:  base * s ** (d / (d - 2)), so the lowest frequency is interpolated by exactly s."""
    return base * scale ** (head_dim / (head_dim - 2))


def ntk_frequencies(head_dim: int, base: float, scale: float) -> torch.Tensor:
    """theta_k of the NTK-aware base: high frequencies barely change, the lowest is divided by s."""
    return inverse_frequencies(head_dim, ntk_base(head_dim, base, scale))


def yarn_frequencies(
    head_dim: int, base: float, scale: float, train_length: int, alpha: float = 1.0, beta: float = 32.0
) -> torch.Tensor:
    """YaRN "NTK-by-parts":  theta'_k = (1 - gamma_k) theta_k / s + gamma_k theta_k.

    r_k = L / lambda_k is how many full turns pair k makes over the training length
    (lambda_k = 2 pi / theta_k); gamma_k = clamp((r_k - alpha) / (beta - alpha), 0, 1).
    """
    theta = inverse_frequencies(head_dim, base)
    turns = train_length * theta / (2 * math.pi)
    gamma = ((turns - alpha) / (beta - alpha)).clamp(0.0, 1.0)
    return (1 - gamma) * theta / scale + gamma * theta


def yarn_logit_scale(scale: float) -> float:
    """YaRN's attention temperature: logits times (0.1 ln s + 1) ** 2 (cos and sin each times 0.1 ln s + 1)."""
    return (0.1 * math.log(scale) + 1.0) ** 2


def rotate(x: torch.Tensor, positions: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """RoPE with given frequencies: x [b, h, n, d] rotated by positions [n] x theta [d/2] (angles in float64)."""
    return rotate_pairs(x, positions, frequencies)


# ----------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class TinyLMConfig:
    """Model shape. 4 layers, d=128, 4 heads is about 0.8M parameters."""

    vocab_size: int = 256
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    train_length: int = 128  # L_train, the pretrained context window
    rope_base: float = 10000.0

    def __post_init__(self):
        for name in ("vocab_size", "n_layers", "d_model", "n_heads", "train_length"):
            check_positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"d_model must be a multiple of n_heads with an even head size, got d_model={self.d_model}, "
                f"n_heads={self.n_heads}"
            )
        if not self.rope_base > 1:
            raise ValueError(f"rope_base must be > 1, got {self.rope_base!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Causal multi-head self-attention; the position treatment comes from an ``AttentionMethod``."""

    def __init__(self, config: TinyLMConfig):
        super().__init__()
        self.config = config
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, method: AttentionMethod, return_weights: bool = False):
        b, n, _ = x.shape
        c = self.config
        q, k, v = self.qkv(x).view(b, n, 3, c.n_heads, c.head_dim).permute(2, 0, 3, 1, 4)  # 3 x [b h n d]
        weights = None
        if method.kind == "map":  # one exact kernel for every relative of SelfExtend
            result = map_attention(
                method.position_map, q, k, v, rope_base=c.rope_base, return_weights=return_weights,
                implementation="reference" if return_weights else ATTENTION_IMPLEMENTATION,
            )
            y, weights = result if return_weights else (result, None)
        elif method.kind == "selfextend" or return_weights:
            # plain RoPE is SelfExtend with g = 1 (grouped positions equal the normal ones)
            g, w = (method.group_size, method.window) if method.kind == "selfextend" else (1, 1)
            if method.kind not in ("plain", "selfextend"):
                raise ValueError("return_weights is only available for kind 'plain', 'selfextend' or 'map'")
            result = self_extend_attention(
                q, k, v, g, w, rope_base=c.rope_base, return_weights=return_weights,
                implementation="reference" if return_weights else ATTENTION_IMPLEMENTATION,
            )
            y, weights = result if return_weights else (result, None)
        else:
            positions = torch.arange(n, device=x.device)
            scale_logits = 1.0
            if method.kind == "plain":
                theta = inverse_frequencies(c.head_dim, c.rope_base)
            else:
                s = method.scale if method.scale is not None else max(1.0, n / c.train_length)
                if method.kind == "pi":
                    theta = pi_frequencies(c.head_dim, c.rope_base, s)
                elif method.kind == "ntk":
                    theta = ntk_frequencies(c.head_dim, c.rope_base, s)
                else:
                    theta = yarn_frequencies(c.head_dim, c.rope_base, s, c.train_length)
                    scale_logits = yarn_logit_scale(s)
            q, k = rotate(q, positions, theta), rotate(k, positions, theta)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale_logits / math.sqrt(c.head_dim))
        y = self.out(y.transpose(1, 2).reshape(b, n, c.d_model))
        return y, weights


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: TinyLMConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model), nn.GELU(), nn.Linear(4 * config.d_model, config.d_model)
        )

    def forward(self, x, method: AttentionMethod, return_weights: bool = False):
        y, weights = self.attn(self.norm1(x), method, return_weights)
        x = x + y
        return x + self.mlp(self.norm2(x)), weights


class TinyLM(nn.Module):
    """Byte-level RoPE decoder: tokens long [b, n] -> logits [b, n, 256]."""

    def __init__(self, config: TinyLMConfig = TinyLMConfig()):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied input and output embeddings
        self.apply(self._init)

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, tokens: torch.Tensor, method: AttentionMethod = PLAIN) -> torch.Tensor:
        """Logits [b, n, vocab] for tokens long [b, n] under the given attention method."""
        return self._run(tokens, method, weights_layer=None)[0]

    def attention_weights(self, tokens: torch.Tensor, method: AttentionMethod, layer: int) -> torch.Tensor:
        """Attention probabilities [b, heads, n, n] of ``layer`` (plain or SelfExtend only)."""
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < self.config.n_layers:
            raise ValueError(f"layer must be an int in [0, {self.config.n_layers - 1}], got {layer!r}")
        return self._run(tokens, method, weights_layer=layer)[1]

    def _run(self, tokens: torch.Tensor, method: AttentionMethod, weights_layer: int | None):
        if not isinstance(method, AttentionMethod):
            raise ValueError(f"method must be an AttentionMethod, got {type(method).__name__}")
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be an integer tensor [batch, seq], got {getattr(tokens, 'shape', tokens)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.config.vocab_size - 1}]")
        x = self.embed(tokens.long())
        weights = None
        for index, block in enumerate(self.blocks):
            x, w = block(x, method, return_weights=index == weights_layer)
            if w is not None:
                weights = w
            if weights_layer is not None and index == weights_layer:
                return None, weights
        return self.head(self.norm(x)), weights


# ----------------------------------------------------------------------------------------------
# Checkpoints: NAME.pt (state dict) + NAME.json (the card)


def save_checkpoint(model: TinyLM, card: dict, path) -> tuple[Path, Path]:
    """Write the weights to ``path`` (.pt) and ``card`` (plus the config) to the same name with .json."""
    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"path must end in .pt, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k != "head.weight"}
    torch.save(state, path)
    card = {**card, "config": model.config.to_dict()}
    card_path = path.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path, card_path


def load_checkpoint(path) -> tuple[TinyLM, dict]:
    """(model in eval mode, card) from NAME.pt and NAME.json."""
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise FileNotFoundError(f"checkpoint {path} and its card {card_path} must both exist (make checkpoints)")
    card = json.loads(card_path.read_text())
    model = TinyLM(TinyLMConfig(**card["config"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["head.weight"] = state["embed.weight"]  # tied: stored once
    model.load_state_dict(state)
    return model.eval(), card


def checkpoints_dir() -> Path:
    """checkpoints/ of this repository (beside pyproject.toml)."""
    for folder in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]):
        if (folder / "pyproject.toml").is_file() and (folder / "checkpoints").is_dir():
            return folder / "checkpoints"
    raise FileNotFoundError("no checkpoints/ folder found: run from inside the repository")
