"""benchmarks/study.py: the study's statistics (entity counts, paired bootstrap) and how a declared row
becomes a stage run."""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys

import numpy as np
import pytest
from conftest import load_benchmark
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2


@pytest.fixture(scope="module")
def study():
    yield load_benchmark("study", register=True)  # its dataclasses look their module up
    sys.modules.pop("study", None)


def _tags(rng: random.Random, n: int) -> list[str]:
    # includes I- after O and type switches, which strict IOB2 does not count as entities
    return [rng.choice(["O", "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "I-LOC"]) for _ in range(n)]


def test_per_sentence_counts_pool_to_seqeval_strict_f1(study):
    rng = random.Random(0)
    gold = [_tags(rng, rng.randint(1, 12)) for _ in range(60)]
    predicted = [[t if rng.random() < 0.7 else rng.choice(["O", "B-ORG", "I-PER"]) for t in s] for s in gold]
    counts = study.entity_counts(gold, predicted)
    assert counts.shape == (60, 3) and (counts[:, 0] <= counts[:, 1:].min(axis=1)).all()
    expected = f1_score(gold, predicted, mode="strict", scheme=IOB2)
    assert 0.2 < expected < 0.95  # neither trivial nor perfect
    assert study.micro_f1(counts) == pytest.approx(expected)


def _system(n: int, correct: np.ndarray) -> np.ndarray:
    """Per-sentence counts of a system that predicts the 2 gold entities of each sentence, ``correct`` of them right."""
    return np.stack([correct, np.full(n, 2), np.full(n, 2)], axis=1).astype(float)


def test_paired_bootstrap_finds_no_difference_between_equal_systems_and_a_consistent_gain(study):
    rng = np.random.default_rng(1)
    base = [_system(200, rng.integers(0, 3, 200)) for _ in range(2)]
    same = study.paired_bootstrap(base, [b.copy() for b in base], rounds=300)
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_not_better": 1.0}

    better = []
    for b in base:  # one more entity right on a fifth of the sentences that had one wrong
        improved = b.copy()
        wrong = np.flatnonzero(improved[:, 0] < 2)
        improved[wrong[::5], 0] += 1
        better.append(improved)
    result = study.paired_bootstrap(better, base, rounds=300)
    gain = study.micro_f1(np.concatenate(better)) - study.micro_f1(np.concatenate(base))
    assert result["diff"] == pytest.approx(gain) and gain > 0
    assert 0 < result["low"] <= result["diff"] <= result["high"] and result["p_not_better"] == 0.0
    # reversed, the same difference is negative and never 'better'
    assert study.paired_bootstrap(base, better, rounds=300)["p_not_better"] == 1.0


def test_every_row_of_the_matrix_names_known_variants(study):
    for key, variant in study.VARIANTS.items():
        assert not variant.baseline or variant.baseline in study.VARIANTS, key
        assert not variant.quantize or variant.baseline, f"{key}: an inference variant needs the student it is made of"
        assert not variant.init or variant.init in study.VARIANTS, key
        assert all(other in study.VARIANTS and other != key for other in variant.versus), key
    for name, keys in study.SELECTIONS.items():
        unknown = [k for k in keys.split(",") if k not in study.VARIANTS]
        assert not unknown, (name, unknown)


def test_an_int8_row_quantizes_the_finished_student_of_its_seed(study, monkeypatch):
    launched = []

    def run_stage(entry, experiment, name, params, *, reuse_only=False, device="auto"):
        launched.append((entry, name, params, reuse_only))
        if reuse_only and params["seed"] == "7":
            raise LookupError("not trained")
        return "student-run"

    monkeypatch.setattr(study, "run_stage", run_stage)
    args = argparse.Namespace(data="/data/finer-ord", experiment="study-x", device="auto")
    refs = {"teacher-0": "runs:/t0/model", "teacher-1": "runs:/t1/model"}
    entry, params = study.variant_stage("s2-r64-reuters1-int8", refs, 42, args)
    assert (entry, params["model"], params["variant"]) == ("quantize", "runs:/student-run/model", "onnx-int8")
    assert "device" not in params and params["data"] == "/data/finer-ord"
    source_entry, source_name, source_params, _ = launched[0]
    assert (source_entry, source_name) == ("distill", "s2-r64-reuters1-s42")
    assert source_params == study.variant_params("s2-r64-reuters1", refs, 42, args)
    assert source_params["embedding_rank"] == "64" and source_params["teacher"] == "runs:/t0/model"
    with pytest.raises(LookupError):  # collect skips a seed whose student is missing
        study.variant_stage("s2-r64-reuters1-int8", refs, 7, args, reuse_only=True)
    assert study.variant_stage("s2-r64-kd", refs, 42, args)[0] == "distill" and len(launched) == 2
    with pytest.raises(LookupError, match="the cov8k tokenizer is not trained yet"):  # collect skips the row
        study.variant_stage("s2-cov8k-kd", refs, 42, args, reuse_only=True)
    assert study.variant_params("s2-r64-ensemble", refs, 42, args)["teacher"] == "runs:/t0/model,runs:/t1/model"
    with pytest.raises(LookupError, match="needs 2 or more teachers"):  # not the single teacher's run again
        study.variant_params("s2-r64-ensemble", {"teacher-0": "runs:/t0/model"}, 42, args)
    with pytest.raises(LookupError, match="adapted teacher"):
        study.variant_params("s2-r64-dapt", refs, 42, args)
    monkeypatch.setitem(study.VARIANTS, "s2-r64-reuters1-int8-7bit", dataclasses.replace(
        study.VARIANTS["s2-r64-reuters1-int8"], params={"reduce_range": "true"}))
    entry, seven_bit = study.variant_stage("s2-r64-reuters1-int8-7bit", refs, 42, args)
    assert seven_bit == {**params, "reduce_range": "true"}  # a row passes its options to the quantize stage


def test_a_row_with_init_continues_the_finished_student_of_its_seed_cutting_only_what_differs(study, monkeypatch):
    launched = []

    def run_stage(entry, experiment, name, params, *, reuse_only=False, device="auto"):
        launched.append((entry, name, params))
        if reuse_only and params["seed"] == "7":
            raise LookupError("not trained")
        return "first-step"

    monkeypatch.setattr(study, "run_stage", run_stage)
    args = argparse.Namespace(data="/data/finer-ord", experiment="study-x", device="auto")
    refs = {"teacher-0": "runs:/t0/model"}
    entry, params = study.variant_stage("s3-r96w-f768-two-step", refs, 42, args)
    first_entry, first_name, first = launched[0]
    assert (first_entry, first_name) == ("distill", "s3-r96w-f768-hidden-only-s42")
    assert (first["kd_weight"], first["ce_weight"], first["hidden_weight"]) == ("0", "0", "1")
    assert (first["embedding_rank"], first["intermediate_size"], first["embedding_weights"]) == \
        ("96", "768", "frequency")
    assert entry == "distill" and params["student_init"] == "runs:/first-step/model"
    # the first step's student is already factorised and narrowed: the second step keeps it as it is
    assert not {"embedding_rank", "intermediate_size", "embedding_weights", "tokenizer"} & set(params)
    assert "kd_weight" not in params and params["transfer_data"] == first["transfer_data"]
    assert (params["seed"], params["teacher"], params["student_layers"]) == ("42", "runs:/t0/model", "3")
    with pytest.raises(LookupError):  # collect skips a seed whose first step is missing
        study.variant_stage("s3-r96w-f768-two-step", refs, 7, args, reuse_only=True)

    # the int8 row of a two-step student quantizes the second step's run, found through both steps
    launched.clear()
    entry, params = study.variant_stage("s3-r96w-f768-two-step-int8", refs, 42, args)
    assert entry == "quantize" and [name for _, name, _ in launched] == \
        ["s3-r96w-f768-hidden-only-s42", "s3-r96w-f768-two-step-s42"]
    assert launched[1][2]["student_init"] == "runs:/first-step/model"

    # a row narrower than the student it starts from cuts that student further, and only where it differs
    launched.clear()
    entry, params = study.variant_stage("s6-r48w-f320-pruned-hidden", refs, 42, args)
    assert [name for _, name, _ in launched] == ["s6-r96w-hidden-s42"] and "intermediate_size" not in launched[0][2]
    assert (params["embedding_rank"], params["intermediate_size"], params["student_init"]) == \
        ("48", "320", "runs:/first-step/model")


def test_a_row_with_an_environment_is_keyed_by_it_and_launched_with_it(study, monkeypatch):
    args = argparse.Namespace(data="/data/finer-ord", experiment="study-x", device="auto")
    refs = {"teacher-0": "runs:/t0/model"}
    pinned = study.variant_params("s6-r48w-f320-hidden-e12-full-avx2", refs, 42, args)
    native = study.variant_params("s6-r48w-f320-hidden-e12-full", refs, 42, args)
    assert {k: v for k, v in pinned.items() if k != study.ENV_PARAM} == native  # the same training otherwise
    assert study.study_key("distill", pinned) != study.study_key("distill", native)
    launched = []
    monkeypatch.setattr(study, "finished_run", lambda experiment, key: None)
    monkeypatch.setattr(study, "wait_while_running", lambda experiment, key: None)
    monkeypatch.setattr(study, "launch", lambda entry, experiment, name, params, key, *, log, environment:
                        launched.append((params, key, environment)) or "run-id")
    for params in (pinned, native):
        assert study.run_stage("distill", "study-x", "row-s42", params) == "run-id"
    (pinned_params, pinned_key, environment), (native_params, native_key, no_environment) = launched
    assert environment == study.PORTABLE_KERNELS and no_environment == {}
    assert pinned_params == native_params == {**native, "device": "auto"}  # mlflow run gets no such parameter
    assert pinned_key == study.study_key("distill", {**pinned, "device": "auto"}) != native_key


def test_the_target_is_met_only_over_the_seeds_it_asks_for(study):
    def row(meets: bool, seeds: int) -> dict:
        return {"meets_target": meets, "test_f1": {str(s): 0.8 for s in range(seeds)}}

    assert study.target_verdict(row(True, 3)) == "yes"
    assert study.target_verdict(row(True, 1)) == "on 1 seed"
    assert study.target_verdict(row(True, 2)) == "on 2 seeds"
    assert study.target_verdict(row(False, 3)) == "no"


def test_the_front_is_drawn_over_the_rows_with_the_most_seeds_and_never_over_a_control(study):
    def row(f1: float, seeds: int, params: float, lever: str = "4") -> dict:
        return {"test_f1": {str(s): f1 for s in range(seeds)}, "f1_mean": f1, "lever": lever,
                "cost": {"params_total": params}}

    # the lucky one-seed screen is better and as small as the 3-seed rows: it would dominate them
    variants = {"a": row(0.72, 3, 6.7), "b": row(0.70, 3, 5.0), "screen": row(0.75, 1, 5.0),
                "control": row(0.76, 3, 5.0, lever="control")}
    full, screens = study.front_rows({"variants": variants})
    assert set(full) == {"a", "b"} and set(screens) == {"screen"}
    assert study.pareto([(k, r["cost"]["params_total"], r["f1_mean"]) for k, r in full.items()]) == ["a", "b"]
    # a report of one-seed rows only draws its front over all of them
    single = {"x": row(0.7, 1, 5.0), "y": row(0.6, 1, 6.0)}
    assert study.front_rows({"variants": single}) == (single, {})


def test_the_plot_draws_every_row_and_labels_only_the_front(study, tmp_path, monkeypatch):
    import matplotlib.axes

    def row(f1s: list[float], params: float, ms: float) -> dict:
        return {"test_f1": {str(s): f for s, f in enumerate(f1s)}, "f1_mean": sum(f1s) / len(f1s),
                "f1_sd": 0.01, "lever": "4", "cost": {"params_total": params, "latency_cpu_b1_ms_p50": ms}}

    result = {"corpus": "toy", "teachers": {"teacher-0": {"test_f1": 0.8}},
              "costs": {"teacher": {"params_total": 20e6, "latency_cpu_b1_ms_p50": 20.0}},
              "variants": {"small": row([0.70, 0.72, 0.71], 5e6, 8.0), "dominated": row([0.69, 0.70, 0.68], 6e6, 9.0),
                           "screen": row([0.75], 5e6, 8.0)}}
    labels: list[str] = []
    original = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate",
                        lambda self, text, *a, **k: labels.append(text) or original(self, text, *a, **k))
    study.plot(result, tmp_path / "front.png")
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert labels == ["small", "small"]  # one front label per cost panel; the screen is off the front


def test_a_row_is_compared_with_its_baseline_and_with_the_rows_it_names_on_the_seeds_each_pair_shares(study):
    qat, plain, before = ("s6-r48w-f320-hidden-e12-qat-int8", "s6-r48w-f320-hidden-e12-ft-int8",
                          "s6-r48w-f320-hidden-e12-int8")
    assert study.VARIANTS[qat].versus == (plain, before)
    rng = np.random.default_rng(0)
    gold = rng.integers(1, 4, size=(200, 1))

    def counts(hit_rate: float) -> np.ndarray:  # [true positives, predicted, gold] per sentence
        hits = np.minimum(gold, rng.binomial(gold, hit_rate))
        return np.concatenate([hits, gold, gold], axis=1).astype(float)

    rows = {qat: (0.9, ["42", "1", "2"]), plain: (0.8, ["42", "1"]), before: (0.8, ["42", "1", "2"]),
            "s6-r48w-f320-hidden-e12-qat": (0.85, ["42", "1", "2"])}
    result = {"variants": {}, "_counts": {}}
    for key, (rate, seeds) in rows.items():
        result["_counts"][key] = {seed: counts(rate) for seed in seeds}
        result["variants"][key] = {"baseline": study.VARIANTS[key].baseline,
                                   "test_f1": {s: study.micro_f1(c) for s, c in result["_counts"][key].items()},
                                   "best_val_f1": {s: None for s in seeds}}
    study.compare(result)
    row = result["variants"][qat]
    assert row["vs_baseline"]["seeds"] == ["1", "2", "42"]  # against the QAT student it was made of
    assert row["vs_others"][plain]["seeds"] == ["1", "42"]  # the seeds both have
    assert row["vs_others"][before]["seeds"] == ["1", "2", "42"]
    assert row["vs_others"][plain]["gain"] > 0.05 and row["vs_others"][plain]["bootstrap"]["p_not_better"] == 0
    assert "vs_others" not in result["variants"][plain]  # it names none


def test_the_report_names_each_environment_and_the_comparisons_that_pair_runs_of_two(study):
    here, there = "AMD EPYC, AVX512, mkl 2024.2, torch 2.13.0", "Intel Xeon, AVX2, mkl 2024.2, torch 2.13.0"
    one_seed = {"seeds": ["42"]}
    result = {"teachers": {"teacher-0": {"environment": here}}, "variants": {
        "a": {"baseline": "", "environment": {"42": here, "1": there}},
        "b": {"baseline": "a", "vs_baseline": {"seeds": ["42", "1"]}, "environment": {"42": here, "1": here}},
        "c": {"baseline": "a", "vs_baseline": one_seed, "vs_others": {"b": one_seed}, "environment": {"42": ""}},
    }}
    assert study.mixed_environments(result) == [("b", "a", "1")]  # an unrecorded run is not counted as differing
    text = "\n".join(study.environment_section(result))
    assert f"| {here} | 4 | `teacher-0`, `a-s42`, `b-s42`, ..." in text and f"| {there} | 1 | `a-s1` |" in text
    assert "| not recorded (runs from before the env.* tags) | 1 | `c-s42` |" in text
    assert text.endswith("`b` vs `a` (seed 1).")


def test_a_validation_gain_is_given_only_between_runs_selected_on_the_same_validation_split(study):
    variants = {
        "s3-r96-f768-reuters1": {"best_val_f1": {"42": 0.80, "1": 0.82}},
        "s3-r96w-f768-reuters1": {"best_val_f1": {"42": 0.83, "1": 0.84}},
        "s3-r96-f768-reuters1-b20": {"best_val_f1": {"42": 0.70, "1": 0.71}},
        "s3-r96w-f768-reuters1-int8": {"best_val_f1": {"42": None, "1": None}},
    }
    gain = study.validation_gain("s3-r96w-f768-reuters1", "s3-r96-f768-reuters1", variants, ["42", "1"])
    assert gain == pytest.approx(0.025)
    assert study.validation_gain("s3-r96w-f768-reuters1", "s3-r96-f768-reuters1", variants, ["1"]) == \
        pytest.approx(0.02)
    # blocks against sentences: two different validation sets, no gain to read
    assert study.validation_gain("s3-r96-f768-reuters1-b20", "s3-r96-f768-reuters1", variants, ["42"]) is None
    assert study.validation_gain("s3-r96w-f768-reuters1-int8", "s3-r96w-f768-reuters1", variants, ["42"]) is None


def test_the_plan_lists_rows_without_a_finished_run_and_int8_rows_whose_student_is_missing(study, monkeypatch):
    finished = {"s2-r64-reuters1": {"42"}}  # the student of seed 42 is trained, not that of seed 1

    def run_stage(entry, experiment, name, params, *, reuse_only=False, device="auto"):
        assert reuse_only  # planning launches nothing
        if params.get("seed") not in finished.get(name.rsplit("-s", 1)[0], set()):
            raise LookupError("not trained")
        return f"{name}-run"

    def finished_run(experiment, key):
        return {study.study_key("distill", study.with_device("distill", study.variant_params(
            "s2-r64-reuters1", refs, 42, args), "auto")): "run"}.get(key)

    monkeypatch.setattr(study, "run_stage", run_stage)
    monkeypatch.setattr(study, "finished_run", finished_run)
    args = argparse.Namespace(data="/data/finer-ord", experiment="study-x", device="auto")
    refs = {"teacher-0": "runs:/t0/model"}
    jobs = [("s2-r64-reuters1", 42), ("s2-r64-reuters1", 1), ("s2-r64-reuters1-int8", 42),
            ("s2-r64-reuters1-int8", 1)]
    assert study.untrained(jobs, refs, args) == [("s2-r64-reuters1", 1), ("s2-r64-reuters1-int8", 42),
                                                 ("s2-r64-reuters1-int8", 1)]


def test_the_breakdown_splits_recall_by_names_seen_in_training_and_f1_by_type(study, monkeypatch):
    words = [["Dana", "Lee", "joined", "Borealis", "Bank"], ["Acme", "rose"]]
    gold = [["B-PER", "I-PER", "O", "B-ORG", "I-ORG"], ["B-ORG", "O"]]
    predicted = {"a": [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "O"]],  # Borealis Bank cut short
                 "b": [["B-PER", "I-PER", "O", "B-ORG", "I-ORG"], ["B-LOC", "O"]]}  # Acme as a place
    monkeypatch.setattr(study, "run_predictions", lambda run_id, split="test": (words, gold, predicted[run_id]))
    seen = {("Dana", "Lee"), ("Acme",)}  # Borealis Bank is not an entity of the training file
    out = study.error_breakdown(["a", "b"], seen)
    assert out["unseen_share"] == pytest.approx(1 / 3)
    assert out["recall_seen"] == pytest.approx(3 / 4) and out["recall_unseen"] == pytest.approx(1 / 2)
    # PER: 2 of 2 found, 2 predicted; ORG: 2 of 4 found, 3 predicted; LOC: none right, 1 predicted, none gold
    assert out["f1_PER"] == 1.0 and out["f1_ORG"] == pytest.approx(4 / 7) and out["f1_LOC"] == 0.0
