"""Tests for findistill.resources on a tiny random BERT (no downloads)."""

from __future__ import annotations

import torch

from findistill.costs.device import device_info


def test_device_info_never_raises_and_reports_cpu():
    info = device_info("cuda")  # no GPU here: CPU tags only, no exception
    assert {"cpu_model", "cpu_logical_cores", "torch_version", "torch_threads"} <= set(info)
    assert all(isinstance(v, str) and v for v in info.values())
    if not torch.cuda.is_available():
        assert "gpu_name" not in info
