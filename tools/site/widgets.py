"""Static widgets: a page shows a widget's saved picture (or a sentence), never a live widget.

Live widgets need a kernel and the widget manager from a CDN. This preprocessor drops the saved
widget state (notebook metadata "widgets") and, in every output, the widget view, so the exporter
falls back to the same output's image/png, text/markdown or text/plain.
"""
import re

from nbconvert.preprocessors import Preprocessor

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# What Jupyter stores as text/plain for a widget: its repr, e.g. "VBox(children=(IntSlider(...".
WIDGET_REPR = re.compile(r"^[A-Z]\w*\((children|value|description|layout)=")
FALLBACK = "(An interactive widget: open this notebook in Jupyter, e.g. `make lab`, to use it.)"


class StaticWidgets(Preprocessor):
    """Strip widget views and widget state; keep each output's static fallback."""

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        cell.metadata.pop("widgets", None)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data or WIDGET_VIEW not in data:
                continue
            data.pop(WIDGET_VIEW)
            data.pop(WIDGET_STATE, None)
            shows_something = any(k != "text/plain" for k in data)
            if not shows_something and WIDGET_REPR.match(str(data.get("text/plain", ""))):
                data.pop("text/plain", None)
                data["text/markdown"] = FALLBACK
        return cell, resources
