"""Numbers measured on a model, made safe to plot: the same figure bytes on every x86-64 CPU.

A float32 forward pass differs in its last bits between CPU kernels (AVX-512, AVX2, the scalar
path), about 1e-6 relative on the tiny LM's losses. Plotted as is, that moves an SVG coordinate in
its fifth decimal and flips a few anti-aliased pixels, so a figure's bytes depend on the machine.
The cure used by every notebook that plots a model's numbers:

1. compute them in float64 (``model.double()``): between CPU kernels they then differ by about
   1e-13 relative (measured on the tiny LM under ATEN_CPU_CAPABILITY=default / avx2 / avx512);
2. round them to ``PLOT_DECIMALS`` decimals with ``round_measured`` before they reach a plot.

The rounding step is 1e-6, far above the float64 noise (a value lands on the other side of a rounding
boundary with probability about 1e-7) and far below anything a reader could see (a 1% change of a
plotted value moves it by thousands of rounding steps, so the figure's bytes change).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

PLOT_DECIMALS = 6

_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


def round_measured(values, decimals: int = PLOT_DECIMALS):
    """``values`` (a tensor, array, number, or a dict of them) as float64 numpy rounded to ``decimals``.

    Raises ValueError for float32 / half tensors or arrays: their last bits depend on the CPU, so
    compute in float64 first (``model.double()``).
    """
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 12:
        raise ValueError(f"decimals must be an int in [0, 12], got {decimals!r}")
    if isinstance(values, Mapping):
        return {key: round_measured(value, decimals) for key, value in values.items()}
    if isinstance(values, torch.Tensor):
        if values.dtype in _LOW_PRECISION:
            raise ValueError(f"values must be computed in float64 to be plotted reproducibly, got a {values.dtype} "
                             "tensor: call model.double() (see selfextend.viz.measured)")
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype in (np.float32, np.float16):
        raise ValueError(f"values must be computed in float64 to be plotted reproducibly, got {array.dtype}")
    return np.round(array.astype(np.float64), decimals)
