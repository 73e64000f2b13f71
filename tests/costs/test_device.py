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


def test_resolve_device_checks_the_device_before_any_work(monkeypatch):
    import pytest
    import torch

    from findistill.config import ValueProblem
    from findistill.costs.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ValueProblem, match="'cuda:0' requested but CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ValueProblem, match="expected auto, cpu, cuda or cuda:N, got 'mps'"):
        resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueProblem, match="'cuda:2' requested but 2 CUDA device"):
        resolve_device("cuda:2")
