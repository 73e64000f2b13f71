"""benchmarks/study_predictions.py: a report's runs' test predictions, exported so its comparisons outlive the store."""

from __future__ import annotations

import json
import random
import sys

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def study():
    yield load_benchmark("study", register=True)
    sys.modules.pop("study", None)


def _sentences(rng: random.Random, n: int) -> tuple[list[list[str]], list[list[str]]]:
    words = [[f"w{rng.randrange(50)}" for _ in range(rng.randint(1, 12))] for _ in range(n)]
    gold = [[rng.choice(["O", "O", "O", "B-ORG", "I-ORG", "B-PER", "B-LOC"]) for _ in w] for w in words]
    return words, gold


def _noisy(rng: random.Random, gold: list[list[str]], error: float) -> list[list[str]]:
    return [[rng.choice(["O", "B-ORG", "B-MISC"]) if rng.random() < error else t for t in s] for s in gold]


def test_packed_tags_come_back_as_they_were_and_refuse_a_split_of_another_size(study):
    from study_predictions import pack_tags, unpack_tags

    rng = random.Random(0)
    _, gold = _sentences(rng, 300)
    labels: list[str] = []
    packed = pack_tags(gold, labels)
    assert set(labels) == {t for s in gold for t in s} and len(packed) < sum(map(len, gold))
    assert unpack_tags(packed, labels, [len(s) for s in gold]) == gold
    predicted = _noisy(rng, gold, 0.2)  # a tag the gold never uses is added to the shared labels
    again = pack_tags(predicted, labels)
    assert "B-MISC" in labels and unpack_tags(packed, labels, [len(s) for s in gold]) == gold
    assert unpack_tags(again, labels, [len(s) for s in gold]) == predicted
    with pytest.raises(ValueError, match="hold"):
        unpack_tags(packed, labels, [len(s) for s in gold][:-1])


def test_two_exported_rows_compare_as_the_study_compares_runs_and_only_on_the_same_test_split(study, monkeypatch):
    from study_predictions import compare_rows

    rng = random.Random(1)
    words, gold = _sentences(rng, 200)
    runs = {f"{row}-{seed}": _noisy(rng, gold, error) for row, error in (("good", 0.05), ("poor", 0.3))
            for seed in ("42", "1", "2")}
    monkeypatch.setattr(study, "run_predictions", lambda run_id: (words, gold, runs[run_id]))
    reports = []
    for rows in ({"good": ("42", "1")}, {"poor": ("42", "1", "2")}):
        result = {"report": "r", "data": "corpus"}
        exports = study.Exports(result)
        for row, seeds in rows.items():
            counts = [exports.add(row, seed, f"{row}-{seed}") for seed in seeds]
        reports.append(json.loads(json.dumps(result)))  # as written to and read from the report's JSON
    cmp = compare_rows((reports[0], "good"), (reports[1], "poor"), words, gold)
    assert cmp["seeds"] == ["1", "42"]  # the seeds both rows have
    assert cmp["f1"][1] == [study.micro_f1(study.entity_counts(gold, runs[f"poor-{s}"])) for s in ("1", "42")]
    assert cmp["f1"][1][1] == study.micro_f1(counts[0])
    assert cmp["gain"] > 0.2 and cmp["bootstrap"]["low"] > 0 and cmp["bootstrap"]["p_not_better"] == 0
    other = [list(s) for s in gold]
    other[0][0] = "B-PER" if other[0][0] != "B-PER" else "O"
    with pytest.raises(ValueError, match="another test split"):
        compare_rows((reports[0], "good"), (reports[1], "poor"), words, other)
    with pytest.raises(KeyError, match="it has good"):
        compare_rows((reports[0], "best"), (reports[1], "poor"), words, gold)
    with pytest.raises(KeyError, match="holds no predictions"):  # a report made before they were exported
        compare_rows((reports[0], "good"), ({"report": "old", "variants": {}}, "poor"), words, gold)
    # a run of the same report tested on another split is refused while the report is made
    exports = study.Exports({})
    exports.add("good", "42", "good-42")
    monkeypatch.setattr(study, "run_predictions", lambda run_id: (words[1:], gold[1:], runs["good-42"][1:]))
    with pytest.raises(ValueError, match="another split"):
        exports.add("good", "1", "good-1")


def test_two_reports_list_the_runs_they_share_and_how_many_words_a_rerun_changed(study, monkeypatch):
    from study_predictions import repeats

    rng = random.Random(2)
    words, gold = _sentences(rng, 120)
    first = _noisy(rng, gold, 0.1)
    moved = [list(s) for s in first]
    for sentence, position in ((3, 0), (7, -1)):  # a rerun elsewhere: two words tagged otherwise
        moved[sentence][position] = "B-MISC" if first[sentence][position] != "B-MISC" else "O"
    runs = {"old-row-42": first, "old-row-1": first, "old-only-old-42": first, "new-row-42": [list(s) for s in first],
            "new-row-1": moved, "new-row-2": first, "new-teacher-0-42": gold}
    monkeypatch.setattr(study, "run_predictions", lambda run_id: (words, gold, runs[run_id]))
    reports = []
    for name in ("old", "new"):
        result = {"report": name, "data": "corpus"}
        exports = study.Exports(result)
        for run_id in runs:
            if run_id.startswith(name + "-"):
                row, seed = run_id[len(name) + 1:].rsplit("-", 1)
                exports.add(row, seed, run_id)
        reports.append(json.loads(json.dumps(result)))
    shared = repeats(reports[1], reports[0], words, gold)
    assert [(r["row"], r["seed"], r["words_differ"]) for r in shared] == [("row", "1", 2), ("row", "42", 0)]
    assert shared[1]["f1"][0] == shared[1]["f1"][1] == study.micro_f1(study.entity_counts(gold, first))
    assert shared[0]["f1"][0] == study.micro_f1(study.entity_counts(gold, moved))
    with pytest.raises(ValueError, match="share no run"):
        repeats(reports[0], {**reports[1], "predictions": {"teacher-0": reports[1]["predictions"]["teacher-0"]}},
                words, gold)
