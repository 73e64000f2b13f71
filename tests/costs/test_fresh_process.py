"""Tests for findistill.costs.fresh_process: saved tiny random BERTs measured side by side in a fresh process."""

from __future__ import annotations

import math

import psutil
import pytest
import torch
from tiny_bert import SENTENCES, tiny_config
from transformers import BertForTokenClassification

from findistill.costs.fresh_process import FRESH_PROCESS_METRICS, _median_metrics, _round_orders, measure_saved_models
from findistill.costs.latency import RESOURCE_METRICS
from findistill.costs.size import count_parameters


def test_round_orders_alternate():
    assert _round_orders(["teacher", "student"], 3) == [
        ["teacher", "student"], ["student", "teacher"], ["teacher", "student"]]
    assert _round_orders(["only"], 2) == [["only"], ["only"]]


def test_median_metrics_takes_each_metrics_median():
    runs = [{"a": 1.0, "b": 10.0}, {"a": 3.0, "b": 30.0}, {"a": 2.0, "b": 50.0}]
    assert _median_metrics(runs) == {"a": 2.0, "b": 30.0}
    assert _median_metrics(runs[:2]) == {"a": 2.0, "b": 20.0}
    with pytest.raises(ValueError):
        _median_metrics([])


def test_measure_saved_models_rejects_a_folder_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        measure_saved_models({"ghost": tmp_path}, SENTENCES)


@pytest.fixture(scope="module")
def saved_pair(tokenizer, tmp_path_factory):
    """A 1-layer and a 2-layer random classifier, each saved with the tokenizer."""
    folders, params = {}, {}
    for name, layers in (("shallow", 1), ("deep", 2)):
        torch.manual_seed(layers)
        model = BertForTokenClassification(tiny_config(num_hidden_layers=layers))
        folder = tmp_path_factory.mktemp(name)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        folders[name], params[name] = folder, count_parameters(model)["params_total"]
    return folders, params


def test_measure_saved_models_measures_both_in_a_fresh_process(saved_pair):
    folders, params = saved_pair
    # 300 MB held by this process: a measurement in this process would see it in peak_rss_mb
    ballast = b"\x01" * 300_000_000
    caller_rss_mb = psutil.Process().memory_info().rss / 1e6
    threads_before = torch.get_num_threads()
    measured = measure_saved_models(folders, SENTENCES * 10, max_length=32, threads=1, rounds=2, n_b1=3, n_b32=1)
    assert len(ballast) == 300_000_000
    assert torch.get_num_threads() == threads_before
    assert set(measured) == {"shallow", "deep"}
    for name, metrics in measured.items():
        assert set(metrics) == set(RESOURCE_METRICS) | set(FRESH_PROCESS_METRICS), name
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), name
        for key in ("latency_cpu_b1_ms_p50", "latency_cpu_b32_ms_p50", "throughput_cpu_words_per_s", "mfu_cpu_b32"):
            assert metrics[key] > 0, (name, key)
        assert metrics["params_total"] == params[name]
        assert metrics["cpu_threads"] == 1
        assert metrics["tokens_per_word"] == 1.0
        assert 50 < metrics["rss_baseline_mb"] < metrics["peak_rss_mb"] < caller_rss_mb - 150, name
        assert metrics["peak_rss_increase_mb"] > 0
    assert measured["deep"]["params_total"] > measured["shallow"]["params_total"]
    assert measured["deep"]["model_size_mb"] > measured["shallow"]["model_size_mb"]
    # one process: the baseline before any model was loaded is shared
    assert measured["deep"]["rss_baseline_mb"] == measured["shallow"]["rss_baseline_mb"]
