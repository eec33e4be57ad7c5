"""A live widget in Jupyter, a static picture and a sentence everywhere else, from one output.

A notebook output whose only data are a widget view and its ``repr`` shows ``VBox(children=(...``
wherever the widget cannot run: a notebook opened before its cells are run (JupyterLab renders
untrusted outputs with the safe renderers only), nbconvert's HTML without widget state, GitHub.
``WithFallback`` puts three representations into the same output: the widget view (preferred by a
live frontend), a PNG of the figure the widget starts with, and a plain-text sentence; every viewer
takes the richest one it can show.
"""
from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig`` (tight bounding box, white background)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


class WithFallback:
    """Display ``widget`` where a live frontend runs it; elsewhere the ``png`` picture and the ``text`` sentence."""

    def __init__(self, widget, png: bytes | memoryview, text: str):
        png = bytes(png)  # an Image widget's value is a memoryview
        if not hasattr(widget, "_repr_mimebundle_"):
            raise ValueError(f"widget must be an ipywidgets widget (it has no _repr_mimebundle_), got {type(widget)}")
        if not png.startswith(b"\x89PNG"):
            raise ValueError("png must be the bytes of a PNG image (see figure_png)")
        if not text.strip():
            raise ValueError("text must be a non-empty sentence for viewers that show neither widget nor image")
        self.widget, self.png, self.text = widget, png, text

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """The widget view, image/png (base64) and text/plain, in one bundle."""
        bundle = {key: value for key, value in self.widget._repr_mimebundle_().items() if key == WIDGET_VIEW}
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        bundle["text/plain"] = self.text
        return bundle
