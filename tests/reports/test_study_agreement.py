"""benchmarks/study_agreement.py: the held-out newswire on which the study's runs are scored against
their teachers holds no sentence that any run's transfer set drew."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def agreement():
    return load_benchmark("study_agreement")


def test_the_held_out_paragraphs_avoid_every_transfer_candidate_of_every_run(agreement, tmp_path, monkeypatch):
    import mlflow

    from findistill.config import parse_params
    from findistill.stages.common import load_stage_data
    from findistill.stages.distill import Config, load_transfer_set, transfer_candidates
    from findistill.training.transfer_sets import sentence_key

    text = tmp_path / "news.txt"
    text.write_text("\n".join(f"Shares of company {i} rose {i % 7} percent in trading" for i in range(600)) + "\n")
    common = {"data": "sample", "teacher": "packaged:all-MiniLM-L6-v2", "transfer_data": str(text),
              "transfer_ratio": "0.5"}
    runs = {
        "random": {**common, "seed": "3"},
        "entities": {**common, "seed": "4", "transfer_select": "entities", "transfer_pool": "3"},
        # a student continued from the entity-chosen one, without transfer data of its own
        "continued": {"data": "sample", "teacher": "packaged:all-MiniLM-L6-v2", "seed": "5",
                      "student_init": "runs:/entities/model"},
        "int8": {"model": "runs:/random/model", "variant": "onnx-int8"},  # a quantize run: its source's draw
    }
    monkeypatch.setattr(mlflow, "get_run", lambda run_id: SimpleNamespace(data=SimpleNamespace(params=runs[run_id])))

    excluded, draws = agreement.transfer_keys(["continued", "int8"])

    random_run = parse_params(Config, runs["random"])
    entities_run = parse_params(Config, runs["entities"])
    drawn = {sentence_key(w) for w in load_transfer_set(random_run, load_stage_data(random_run))}
    pool = {sentence_key(w) for group in transfer_candidates(entities_run, load_stage_data(entities_run), 3.0)
            for w in group}
    assert draws == 2 and drawn and len(pool) > len(drawn)
    assert excluded == drawn | pool  # the whole pool the teacher chose from, not only what it kept
    held_out = agreement.held_out_paragraphs(text, 10_000, excluded)
    assert held_out and len(held_out) == 600 - len(excluded)
    assert not {sentence_key(words) for words in held_out} & excluded
    assert held_out[:5] == agreement.held_out_paragraphs(text, 5, excluded)
