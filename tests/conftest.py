"""Shared test fixtures."""
import pytest
import torch

# Every attention kernel the package offers; the core tests run on each of them.
IMPLEMENTATIONS = ["reference", "fast"]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
