"""Jupyter server settings of this repository: notebooks are saved in the form they are committed in.

`make lab` and the no-make command (README, "Two commands"; tools/setup_env.py prints it) start JupyterLab
from the repository root with ``--config=jupyter_server_config.py``: Jupyter reads no configuration file
from the current folder by itself. The pre-save hook drops what a run or the editor adds (the kernel's
Python version, execution timestamps, UI state; tools/notebook_format.py says what exactly), so running
a notebook and saving it leaves ``git status`` clean.
"""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("notebook_format", Path(__file__).resolve().parent / "tools" /
                                               "notebook_format.py")
notebook_format = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_format)

c = get_config()  # noqa: F821 (defined by Jupyter when it reads this file)
c.ContentsManager.pre_save_hook = notebook_format.pre_save_hook
