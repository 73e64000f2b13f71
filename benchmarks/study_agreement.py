"""Agreement of the study's students with its teachers on held-out newswire: a score on other documents.

The study selects on validation sentences cut from FiNER-ORD's training file, so validation shares
articles, writers and entity names with what the students trained on; the test file is other
articles. This module gives every run a second score on documents none of them saw: entity F1
(strict IOB2, as against gold) against the tags that a reference (the ensemble of the study's
teachers, or one teacher) predicts on ``n`` Reuters-21578 paragraphs. The paragraphs are drawn
with a fixed seed from those that no run's transfer set holds (each run's transfer candidates are
rebuilt from its logged parameters, the whole pool for ``transfer_select=entities``), so no student
has seen one of them or its teacher's labels for it. The score needs no gold labels: the same
code scores against any unlabeled text (``add_agreement(text=...)``).

It measures imitation of the teachers, not correctness; a student can only match its reference
where the reference is right by agreeing with it, and it is blind to the reference's own errors.
The report sets it beside validation and test, with how closely each of the two follows test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: the draw of the held-out paragraphs (independent of every training seed of the study)
AGREEMENT_SEED = 0


def _runs_behind(run_ids: Iterable[str]) -> list:
    """The study runs ``run_ids`` and every run their models were made from: the student a quantize run
    converted (``model``) and the student a distill run continued (``student_init``), recursively."""
    import mlflow

    seen: dict[str, object] = {}
    pending = list(run_ids)
    while pending:
        run_id = pending.pop()
        if run_id in seen:
            continue
        run = seen[run_id] = mlflow.get_run(run_id)
        for name in ("model", "student_init"):
            source = run.data.params.get(name, "")
            if source.startswith("runs:/"):
                pending.append(source.split("/")[1])
    return list(seen.values())


def transfer_keys(run_ids: Iterable[str]) -> tuple[set[str], int]:
    """The :func:`~findistill.training.transfer_sets.sentence_key` of every transfer sentence (candidates
    included) of the runs ``run_ids`` and of the runs their models were made from, rebuilt from their
    parameters; and how many distinct transfer draws that was."""
    from findistill.config import parse_params
    from findistill.stages.common import load_stage_data
    from findistill.stages.distill import Config, transfer_candidates
    from findistill.training.transfer_sets import sentence_key

    names = {f.name for f in dataclasses.fields(Config)}
    draws: dict[str, set[str]] = {}
    for run in _runs_behind(run_ids):
        params = run.data.params
        if params.get("transfer_data", "none") == "none":
            continue
        config = parse_params(Config, {k: v for k, v in params.items() if k in names})
        pool = config.transfer_pool if config.transfer_select == "entities" else 1.0
        draw = json.dumps([config.data, config.transfer_data, config.transfer_ratio, pool, config.seed,
                           config.text_field, config.split_blocks])
        if draw not in draws:
            groups = transfer_candidates(config, load_stage_data(config), pool)
            draws[draw] = {sentence_key(words) for group in groups for words in group}
    return set().union(*draws.values()), len(draws)


def held_out_paragraphs(text: Path, n: int, excluded: set[str]) -> list[list[str]]:
    """``n`` paragraphs of ``text`` (as words) drawn with :data:`AGREEMENT_SEED`, none in ``excluded``."""
    from findistill.data.text import word_sentences
    from findistill.training.transfer_sets import draw_sentences

    return draw_sentences(word_sentences(text), n, AGREEMENT_SEED, excluded)


def _load(uri: str):
    from findistill.models.loading import load_tokenizer
    from findistill.runtimes.variants import load_inference_model
    from findistill.tracking.runs import localize_model

    folder = localize_model(uri)
    return load_inference_model(folder), load_tokenizer(folder)


def reference(teachers: list[str], paragraphs: list[list[str]], cache: Path) -> list:
    """The paragraphs tagged by the mean of the ``teachers``' logits (one teacher: its own), cached in
    ``cache`` under the teachers and the paragraphs."""
    from findistill.data.corpus import Sentence
    from findistill.evaluation.predict import reference_labels
    from findistill.models.ensemble import EnsembleClassifier

    digest = hashlib.sha256(json.dumps([teachers, paragraphs]).encode()).hexdigest()[:16]
    path = cache / f"reference-{digest}.json"
    if path.exists():
        return [Sentence(words, tags) for words, tags in zip(paragraphs, json.loads(path.read_text()), strict=True)]
    loaded = [_load(uri) for uri in teachers]
    model = loaded[0][0] if len(loaded) == 1 else EnsembleClassifier([m for m, _ in loaded]).eval()
    print(f"[agreement] the {'ensemble of ' + str(len(teachers)) + ' teachers' if len(teachers) > 1 else 'teacher'} "
          f"tags {len(paragraphs):,} held-out paragraphs", flush=True)
    tagged = reference_labels(model, loaded[0][1], paragraphs)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([s.tags for s in tagged]))
    return tagged


def agreement_f1(model_uri: str, tagged: list, cache: Path) -> dict[str, float]:
    """Entity precision/recall/F1 of the model at ``model_uri`` against the reference tags ``tagged``
    (cached in ``cache`` under the model and the reference)."""
    from findistill.evaluation.predict import evaluate_ner

    digest = hashlib.sha256(json.dumps([model_uri, [s.tags for s in tagged]]).encode()).hexdigest()[:16]
    path = cache / f"scores-{digest}.json"
    if path.exists():
        return json.loads(path.read_text())
    model, tokenizer = _load(model_uri)
    scores = evaluate_ner(model, tokenizer, tagged, max_length=256).scores
    kept = {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kept))
    return kept


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (ties at their mean rank); None below 3 pairs."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return None
    return float(spearmanr(x, y).statistic)


def own_rows(result: dict) -> dict[str, dict]:
    """The report's rows that are results of their own: a control row (lever ``control``) repeats its
    baseline's training by another path."""
    return {key: row for key, row in result["variants"].items() if row.get("lever") != "control"}


def add_agreement(result: dict, teachers: list[str], text: Path, n: int, cache: Path) -> None:
    """``result["agreement"]`` (the held-out set, the teachers' own scores, the correlations) and each
    variant's ``agreement_f1`` per seed, against ``teachers`` (the mean of their logits when several) on ``n``
    paragraphs of ``text``."""
    run_ids = [run for row in result["variants"].values() for run in row["runs"].values()]
    excluded, draws = transfer_keys(run_ids)
    paragraphs = held_out_paragraphs(text, n, excluded)
    tagged = reference(teachers, paragraphs, cache)
    entities = sum(tag.startswith("B-") for s in tagged for tag in s.tags)
    info: dict = {"text": str(text), "paragraphs": len(paragraphs), "words": sum(len(p) for p in paragraphs),
                  "reference_entities": entities, "excluded_sentences": len(excluded), "transfer_draws": draws,
                  "seed": AGREEMENT_SEED, "reference": teachers,
                  "teachers": {uri: agreement_f1(uri, tagged, cache)["f1"] for uri in teachers} if len(teachers) > 1
                  else {}}
    for key, row in result["variants"].items():
        print(f"[agreement] {key}", flush=True)
        row["agreement"] = {seed: agreement_f1(f"runs:/{run}/model", tagged, cache)
                            for seed, run in row["runs"].items()}
        row["agreement_f1"] = {seed: scores["f1"] for seed, scores in row["agreement"].items()}
    for row in result["variants"].values():
        cmp = row.get("vs_baseline")
        base = result["variants"].get(row["baseline"] or "")
        if cmp and base:
            cmp["agreement_gain"] = float(np.mean([row["agreement_f1"][s] - base["agreement_f1"][s]
                                                   for s in cmp["seeds"]]))
    rows = list(own_rows(result).values())  # a control row would count its baseline's run twice
    trained = [(row["test_f1"][s], row["best_val_f1"][s], row["agreement_f1"][s])
               for row in rows for s in row["runs"] if row["best_val_f1"].get(s) is not None]
    test, val, agree = (list(column) for column in zip(*trained, strict=True)) if trained else ([], [], [])
    info["runs"] = len(trained)
    info["spearman_test_val"] = spearman(test, val)
    info["spearman_test_agreement"] = spearman(test, agree)
    comparisons = [row["vs_baseline"] for row in rows
                   if row.get("vs_baseline") and row["vs_baseline"].get("val_gain") is not None
                   and "agreement_gain" in row["vs_baseline"]]
    info["lever_comparisons"] = len(comparisons)
    info["val_sign_matches"] = int(sum(np.sign(c["val_gain"]) == np.sign(c["gain"]) for c in comparisons))
    info["agreement_sign_matches"] = int(sum(np.sign(c["agreement_gain"]) == np.sign(c["gain"])
                                             for c in comparisons))
    result["agreement"] = info
