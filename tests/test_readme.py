"""The README's examples run: ```python blocks are executed, >>> lines are checked as doctests.

Blocks fenced as ```py are shown only (they need a GPU model, local weights or a long run).
"""
import doctest
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block(block):
    if block.lstrip().startswith(">>>"):
        parser = doctest.DocTestParser()
        test = parser.get_doctest(block, {}, "README", "README.md", 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0
    else:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_has_examples():
    assert len(BLOCKS) >= 3
