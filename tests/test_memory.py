"""selfextend.memory: the peak-RSS mark follows a real allocation and resets to the current RSS."""
from __future__ import annotations

import sys

import pytest
import torch

from selfextend.memory import peak_rss_mib, reset_peak_rss, status_mib

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def test_peak_sees_an_allocation_and_resets_after_it_is_freed():
    assert reset_peak_rss()
    before = status_mib("VmRSS")
    block = torch.ones(64 * 2**20)  # 256 MiB, touched
    high = peak_rss_mib()
    assert high - before >= 200
    del block
    assert reset_peak_rss()
    assert peak_rss_mib() < high - 200  # the mark is back near the current RSS


def test_an_unknown_status_line_is_an_error():
    with pytest.raises(RuntimeError, match="VmNope"):
        status_mib("VmNope")
