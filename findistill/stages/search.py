"""``search``: Optuna search over distillation (temperature, loss weights, depth, vocabulary,
learning rate, epochs, transfer set): one nested run per trial, pruning on validation F1, studies
shared by workers through the storage; plots, the trial table and the chosen students retrained,
tested and registered.

Each trial is a ``distill`` run on the train/validation splits (never the test split) with the
search space's fixed values and the values the sampler picked; it returns the validation entity
F1 and, for a two-objective study, the student's CPU latency at batch 1 (measured in a fresh
process as ``evaluate`` measures it) or its parameter count. Running the same command again, or
on several machines against one storage, continues the same study until it holds ``n_trials``
trials. The worker that ends the study retrains the best trial (or the Pareto trials) with the
full budget (all sentences, the space's ``retrain`` values) for each of ``retrain_seeds``,
evaluates on the test split with the resource metrics, and registers the first seed's student.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from findistill.config import ConfigError, as_parameters, parse_params, require
from findistill.data.corpus import NerData
from findistill.data.text import sentence_texts
from findistill.evaluation.predict import check_label_compatibility
from findistill.models.loading import load_token_classifier, load_tokenizer, model_labels
from findistill.search.budget import fit_student
from findistill.search.report import (
    FAIL_ATTR,
    FILLED_ATTR,
    RUN_ID_ATTR,
    STUDENT_PARAMS_ATTR,
    importances,
    markdown_table,
    trials_frame,
    write_plots,
)
from findistill.search.space import SearchSpace, load_space
from findistill.search.study import (
    PRUNERS,
    SAMPLERS,
    Objective,
    chosen_trials,
    counted_trials,
    default_storage,
    make_storage,
    open_study,
    parse_objectives,
    redact,
)
from findistill.stages import distill
from findistill.stages.common import DataParams, load_stage_data, print_tracking_location, split_list
from findistill.tracking.runs import (
    child_context,
    describe_run,
    into_active_run,
    localize_model,
    log_artifacts,
    log_json,
    log_metrics,
    log_text,
    scratch_dir,
    stage_run,
)
from findistill.vocab.build import BUILD_METHODS
from findistill.vocab.cache import cached_tokenizer

DEFAULT_SPACE = "configs/search-space.yaml"
#: distill parameters a search space may not set: the search decides them
NOT_SEARCHABLE = ("teacher", "data", "splits", "scheme", "validation_fraction", "test_fraction", "max_sentences",
                  "split_blocks", "seed", "eval_split", "device", "checkpoint_dir", "keep_checkpoints",
                  "measure_resources", "registered_model_name", "trust_remote_code", "checkpoint_steps",
                  "teacher_cache")
#: search-only parameters: a domain vocabulary built from the train split for the trial
VOCAB_PARAMS = ("vocab_method", "vocab_size")
VOCAB_METHODS = ("same", *BUILD_METHODS)
DEFAULT_VOCAB_SIZE = 16000
RETRAIN_CHOICES = ("auto", "true", "false")


@dataclass
class Config(DataParams):
    """``search``: an Optuna study of ``n_trials`` distillations of ``teacher`` over the search space in
    ``space`` (YAML; default ``configs/search-space.yaml``), optimising ``objectives`` (``f1``,
    ``f1,latency`` or ``f1,params``) on the validation split.

    ``storage``: an SQLAlchemy URL (``auto``: SQLite in ``.findistill/optuna.db``; PostgreSQL for
    workers on several machines); ``study_name`` (``auto``: named after the space, objectives, data
    and teacher, so the same command continues the same study). ``sampler``: tpe, nsga2 or random;
    ``pruner``: median, halving or none (one objective only). ``max_sentences`` limits each split
    of the trials only; ``timeout_minutes`` (0: none) stops this worker. ``retrain``: auto (the
    worker that ends the study), true or false; each chosen trial is retrained for every seed of
    ``retrain_seeds`` and tested; ``retrain_top`` caps the Pareto trials retrained;
    ``registered_model_name`` registers the first seed's student of each chosen trial.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("teacher",)  # declared without a default in MLproject

    teacher: str = ""
    space: str = DEFAULT_SPACE
    n_trials: int = 24
    timeout_minutes: float = 0.0
    objectives: str = "f1"
    storage: str = "auto"
    study_name: str = "auto"
    sampler: str = "tpe"
    pruner: str = "median"
    retrain: str = "auto"
    retrain_seeds: str = "42"
    retrain_top: int = 3
    registered_model_name: str = ""
    device: str = "auto"
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.teacher.strip()), "teacher",
                "a fine-tuned NER model (runs:/<id>/model, models:/<name>@<alias>, or a folder)", self.teacher)
        require(self.n_trials >= 1, "n_trials", "an integer >= 1 (trials the study holds when done)", self.n_trials)
        require(self.timeout_minutes >= 0, "timeout_minutes", "0 (none) or a number of minutes",
                self.timeout_minutes)
        with as_parameters():
            parse_objectives(self.objectives)
        require(self.sampler in SAMPLERS, "sampler", f"one of {', '.join(SAMPLERS)}", self.sampler)
        require(self.pruner in PRUNERS, "pruner", f"one of {', '.join(PRUNERS)}", self.pruner)
        require(self.retrain in RETRAIN_CHOICES, "retrain", f"one of {', '.join(RETRAIN_CHOICES)}", self.retrain)
        seeds = split_list(self.retrain_seeds)
        require(bool(seeds) and all(s.lstrip("-").isdigit() for s in seeds), "retrain_seeds",
                "comma-separated integer seeds such as 42,1,2", self.retrain_seeds)
        require(self.retrain_top >= 1, "retrain_top", "an integer >= 1", self.retrain_top)
        require(bool(self.storage.strip()), "storage", "'auto' or an SQLAlchemy URL", self.storage)


SEARCHABLE = tuple(sorted({f.name for f in fields(distill.Config)} - set(NOT_SEARCHABLE) | set(VOCAB_PARAMS)))


def _strings(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def check_values(values: dict[str, Any]) -> str | None:
    """Why ``distill`` would reject these parameter values (with every other parameter at its
    default), or None when it accepts them."""
    values = dict(values)
    method = str(values.pop("vocab_method", "same"))
    size = values.pop("vocab_size", DEFAULT_VOCAB_SIZE)
    if method not in VOCAB_METHODS:
        return f"parameter 'vocab_method': expected one of {', '.join(VOCAB_METHODS)}, got {method!r}"
    if not (isinstance(size, int) and not isinstance(size, bool) and size >= 100):
        return f"parameter 'vocab_size': expected an integer >= 100, got {size!r}"
    try:
        with as_parameters():
            parse_params(distill.Config, {"teacher": "teacher", **_strings(values)})
    except (ConfigError, TypeError) as err:
        return str(err)
    return None


def load_search_space(path: str) -> SearchSpace:
    space = load_space(path, allowed=SEARCHABLE, check=check_values)
    names = set(space.names()) | set(space.fixed)
    if "tokenizer" in names and "vocab_method" in names:
        raise ConfigError(f"search space {path}: give either 'tokenizer' or 'vocab_method', not both")
    if space.budget is not None and ("student_init" in space.names()
                                     or str(space.fixed.get("student_init", "teacher")) != "teacher"):
        raise ConfigError(f"search space {path}: a budget counts students cut from the teacher; leave "
                          "student_init at 'teacher'")
    return space


def study_name_for(config: Config) -> str:
    """``study_name``, or for ``auto`` ``<space file stem>-<objectives>-<hash>``: the hash covers what
    the trials depend on (data, split settings, teacher, the space's text), not ``n_trials`` or the
    timeout, so the same command continues the same study."""
    if config.study_name != "auto":
        return config.study_name
    trial_inputs = {k: getattr(config, k) for k in ("data", "splits", "scheme", "seed", "validation_fraction",
                                                    "test_fraction", "max_sentences", "teacher", "objectives")}
    if config.split_blocks:  # only when set: a study split by sentences is named as without the parameter
        trial_inputs["split_blocks"] = config.split_blocks
    payload = json.dumps(trial_inputs, sort_keys=True) + Path(config.space).read_text(encoding="utf-8")
    key = hashlib.sha256(payload.encode()).hexdigest()[:8]
    return f"{Path(config.space).stem}-{config.objectives.replace(',', '-')}-{key}"


class TrialRunner:
    """The objective: one ``distill`` run per trial, inside a run opened here (nested under the worker's
    run) so that even a trial that fails before training has its run."""

    def __init__(self, config: Config, space: SearchSpace, objectives: list[Objective], data: NerData,
                 study_name: str):
        self.config, self.space, self.objectives, self.data = config, space, objectives, data
        self.study_name = study_name
        self.teacher_dir = localize_model(config.teacher)
        self.work = Path(".findistill") / "search" / study_name
        self._teacher_tokenizer = None
        self._teacher_model = None
        self._vocab_sentences = None

    def tokenizer_for(self, values: dict[str, Any]) -> str | None:
        """The folder of the trial's domain tokenizer (built from the whole train split, or from the cache)."""
        method = values.get("vocab_method", "same")
        if method == "same":
            return None
        if self._teacher_tokenizer is None:
            self._teacher_tokenizer = load_tokenizer(self.teacher_dir, trust_remote_code=self.config.trust_remote_code)
        size = int(values.get("vocab_size", DEFAULT_VOCAB_SIZE))
        if self._vocab_sentences is None:  # the whole train split, also when the trials see only part of it
            full = self.data if not self.config.max_sentences else load_stage_data(replace(self.config,
                                                                                           max_sentences=0))
            self._vocab_sentences = full.splits["train"]
        folder, built = cached_tokenizer(Path(".findistill") / "tokenizers", method, size, self._teacher_tokenizer,
                                         lambda: sentence_texts(self._vocab_sentences))
        print(f"tokenizer {method} {size}: {'built' if built else 'from the cache'} ({folder})")
        return str(folder)

    def fit_budget(self, trial: optuna.Trial, values: dict[str, Any]) -> dict[str, int]:
        """The space's budget applied to a trial: returns the value it fills (if any), records it and the
        student's parameter count on the trial; a student above the budget prunes the trial before it
        trains."""
        budget = self.space.budget
        if budget is None:
            return {}
        if self._teacher_model is None:
            self._teacher_model = load_token_classifier(self.teacher_dir,
                                                        trust_remote_code=self.config.trust_remote_code)
        placeholder = {budget.fill: budget.multiple_of} if budget.fill else {}
        spec = self.distill_config({**self.space.fixed, **values, **placeholder}, seed=self.config.seed, final=False)
        rows = 0 if spec.tokenizer == "same" else len(load_tokenizer(spec.tokenizer))
        sizes = {"n_layers": spec.student_layers, "selection": spec.layer_selection, "vocab_size": rows,
                 "intermediate_size": spec.intermediate_size, "embedding_rank": spec.embedding_rank,
                 "exact_rows": spec.embedding_exact_rows}
        with as_parameters():
            filled, params, cap = fit_student(budget, self._teacher_model, sizes)
        trial.set_user_attr(FILLED_ATTR, filled)
        trial.set_user_attr(STUDENT_PARAMS_ATTR, params)
        if params > cap:
            raise optuna.TrialPruned(f"its student has {params:,} parameters, above the budget's {cap:,}")
        print(f"[search] budget: {', '.join(f'{k}={v}' for k, v in filled.items()) or 'the sampled sizes'}: "
              f"{params:,} of {cap:,} parameters")
        return filled

    def distill_config(self, values: dict[str, Any], *, seed: int, final: bool,
                       checkpoint_dir: str = "auto") -> distill.Config:
        """``distill``'s config for a trial (``final=False``: validation only) or a retraining (``final``:
        all sentences, tested, resources measured)."""
        c = self.config
        values = dict(values)
        tokenizer = self.tokenizer_for(values)
        for name in VOCAB_PARAMS:
            values.pop(name, None)
        if tokenizer is not None:
            values["tokenizer"] = tokenizer
        params = {
            "teacher": c.teacher, "data": c.data, "splits": c.splits, "scheme": c.scheme,
            "validation_fraction": c.validation_fraction, "test_fraction": c.test_fraction,
            "split_blocks": c.split_blocks,
            "max_sentences": 0 if final else c.max_sentences, "seed": seed, "device": c.device,
            "trust_remote_code": c.trust_remote_code, "checkpoint_dir": checkpoint_dir,
            "eval_split": "test" if final else "validation",
            "measure_resources": final or any(o.name == "latency" for o in self.objectives),
            **values,
        }
        with as_parameters():
            return parse_params(distill.Config, _strings(params))

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        run = mlflow.start_run(run_name=f"trial {trial.number}", nested=True)
        status, checkpoints = "FAILED", None
        try:
            trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
            mlflow.set_tags({"optuna.study_name": self.study_name, "optuna.trial_number": str(trial.number),
                             "findistill.search_trial": "true"})
            self.close_dead_worker_run(trial)
            values = self.space.suggest(trial)
            values.update(self.fit_budget(trial, values))
            # named by the values: a trial whose worker died is queued again with the same values and resumes
            digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]
            checkpoints = self.work / f"trial-{digest}"
            mlflow.log_params({**_strings(self.space.fixed), **_strings(values)})
            print(f"\n[search] trial {trial.number}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
            config = self.distill_config({**self.space.fixed, **values}, seed=self.config.seed, final=False,
                                         checkpoint_dir=str(checkpoints))
            with into_active_run():
                distill.run(config, on_epoch=lambda metrics, epoch: self.report(trial, metrics, epoch))
            metrics = MlflowClient().get_run(run.info.run_id).data.metrics
            missing = [o.metric for o in self.objectives if o.metric not in metrics]
            if missing:
                raise RuntimeError(f"the trial's run logged no {', '.join(missing)}")
            result = tuple(float(metrics[o.metric]) for o in self.objectives)
            if not all(math.isfinite(v) for v in result):
                raise FloatingPointError(f"objective values are not finite: {result}")
            status = "FINISHED"
            mlflow.set_tag("optuna.trial_state", "COMPLETE")
            return result[0] if len(result) == 1 else result
        except optuna.TrialPruned as pruned:
            status = "KILLED"
            mlflow.set_tags({"optuna.trial_state": "PRUNED", "findistill.pruned": str(pruned)})
            trial.set_user_attr(FAIL_ATTR, f"pruned: {pruned}")
            raise
        except Exception as err:
            reason = f"{type(err).__name__}: {err}".splitlines()[0][:500]
            mlflow.set_tags({"optuna.trial_state": "FAIL", "findistill.fail_reason": reason})
            trial.set_user_attr(FAIL_ATTR, reason)
            print(f"[search] trial {trial.number} failed: {reason}")
            raise
        finally:
            mlflow.end_run(status)
            if status != "FINISHED" and checkpoints is not None:
                shutil.rmtree(checkpoints, ignore_errors=True)

    def close_dead_worker_run(self, trial: optuna.Trial) -> None:
        """When ``trial`` retries a trial whose worker stopped sending heartbeats, end that trial's
        run (left RUNNING by the dead process) as FAILED, and tag this run as its retry."""
        trials = {t.number: t for t in trial.study.get_trials(deepcopy=False)}
        original = trials[trial.number].system_attrs.get("failed_trial")
        if original is None or original not in trials:
            return
        mlflow.set_tag("optuna.retry_of_trial", str(original))
        run_id = trials[original].user_attrs.get(RUN_ID_ATTR)
        client = MlflowClient()
        if run_id and client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "findistill.fail_reason", "its worker stopped sending heartbeats (killed?)")
            client.set_terminated(run_id, status="FAILED")

    def report(self, trial: optuna.Trial, metrics: dict[str, float], epoch: int) -> None:
        """After each epoch: a NaN loss fails the trial; validation F1 goes to the pruner."""
        loss = metrics.get("train_loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} at epoch {epoch}")
        if "val_f1" not in metrics or len(self.objectives) > 1:
            return
        trial.report(metrics["val_f1"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation F1 {metrics['val_f1']:.4f} at epoch {epoch} is below what the "
                                     f"pruner ({self.config.pruner}) lets through")


def _summary(study: optuna.Study, objectives: list[Objective]) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    count = {state.name.lower(): sum(t.state == state for t in trials)
             for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    return {"study_name": study.study_name, "objectives": [o.name for o in objectives], "trials": count}


def log_study(study: optuna.Study, objectives: list[Objective], chosen: list) -> dict[str, Any]:
    """Trial table, importances, plots and summary as artifacts of the worker's run (``search/``)."""
    frame = trials_frame(study, objectives)
    scores = importances(study, objectives)
    summary = _summary(study, objectives)
    summary["importances"] = scores
    summary["chosen"] = [{"trial": t.number, "values": dict(zip([o.name for o in objectives], t.values)),
                          "params": t.params, "run_id": t.user_attrs.get(RUN_ID_ATTR)} for t in chosen]
    with scratch_dir("search") as tmp:
        folder = Path(tmp)
        frame.to_csv(folder / "trials.csv", index=False)
        lead = ["trial", "state", *[o.name for o in objectives]]
        rest = [c for c in frame.columns if c not in lead and c != "run_id"]
        (folder / "trials.md").write_text(markdown_table(frame, lead + rest))
        write_plots(study, objectives, folder / "plots")
        log_artifacts(folder, "search")
    log_json(summary, "search/summary.json")
    log_metrics({f"trials_{k}": v for k, v in summary["trials"].items()})
    if len(objectives) == 1 and chosen:
        log_metrics({"best_validation_f1": chosen[0].values[0]})
    for name, ranked in scores.items():
        if ranked:
            print(f"importances for {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in ranked.items()))
    return summary


def retrain_chosen(runner: TrialRunner, config: Config, chosen: list, objectives: list[Objective]) -> list[dict]:
    """Each chosen trial retrained with the full budget for every retrain seed, as child runs; returns
    one row per trial with the test F1 per seed and the first seed's costs and model."""
    rows = []
    seeds = [int(s) for s in split_list(config.retrain_seeds)]
    for trial in chosen:
        values = {**runner.space.fixed, **trial.params, **trial.user_attrs.get(FILLED_ATTR, {}),
                  **runner.space.retrain}
        row: dict[str, Any] = {"trial": trial.number, "params": trial.params,
                               **{f"trial_{o.name}": v for o, v in zip(objectives, trial.values)}, "test_f1": {}}
        for i, seed in enumerate(seeds):
            distill_config = runner.distill_config(values, seed=seed, final=True)
            if i == 0 and config.registered_model_name:
                distill_config.registered_model_name = config.registered_model_name
            tags = {"optuna.study_name": runner.study_name, "optuna.trial_number": str(trial.number),
                    "findistill.search_retrain": "true"}
            with child_context(f"retrain trial {trial.number} s{seed}", tags):
                run_id = distill.run(distill_config)
            metrics = MlflowClient().get_run(run_id).data.metrics
            row["test_f1"][seed] = metrics.get("test_f1")
            if i == 0:
                row.update(run_id=run_id, model_uri=f"runs:/{run_id}/model",
                           **{k: metrics.get(k) for k in ("params_total", "latency_cpu_b1_ms_p50",
                                                          "latency_cpu_b32_ms_p50", "model_size_mb")})
        f1s = [v for v in row["test_f1"].values() if v is not None]
        row["test_f1_mean"] = statistics.fmean(f1s) if f1s else None
        row["test_f1_sd"] = statistics.pstdev(f1s) if len(f1s) > 1 else 0.0
        rows.append(row)
    return rows


def _retrain_markdown(rows: list[dict], objectives: list[Objective]) -> str:
    lines = ["| trial | " + " | ".join(f"trial {o.name}" for o in objectives)
             + " | test F1 mean ± sd | per seed | params | CPU b1 p50 ms | values |",
             "|---|" + "---:|" * (len(objectives) + 4) + "---|"]
    for row in rows:
        trial_values = " | ".join(f"{row[f'trial_{o.name}']:.4g}" for o in objectives)
        per_seed = ", ".join(f"{v:.4f}" for v in row["test_f1"].values() if v is not None)
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
        lines.append(f"| {row['trial']} | {trial_values} | {row['test_f1_mean']:.4f} ± {row['test_f1_sd']:.4f} | "
                     f"{per_seed} | {row.get('params_total') or 0:,.0f} | {row.get('latency_cpu_b1_ms_p50') or 0:.2f} "
                     f"| {params} |")
    return "\n".join(lines) + "\n"


def _should_retrain(config: Config, study: optuna.Study, run_id: str) -> bool:
    """``retrain=auto``: only the worker that finds no trial still running, and only once per study."""
    if config.retrain != "auto":
        return config.retrain == "true"
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        print("[search] other workers are still running trials: they retrain the chosen trials when done")
        return False
    if study.user_attrs.get("retrained_by"):
        print(f"[search] the chosen trials were retrained by run {study.user_attrs['retrained_by']}")
        return False
    study.set_user_attr("retrained_by", run_id)
    return True


def run(config: Config) -> str:
    """Run (or continue) the study; log the trials, plots and the retrained chosen students; return the
    worker's run id."""
    objectives = parse_objectives(config.objectives)
    space = load_search_space(config.space)  # every problem of the space, before anything runs
    data = load_stage_data(config)
    storage_url = default_storage() if config.storage == "auto" else config.storage
    with as_parameters():
        storage = make_storage(storage_url)
    name = study_name_for(config)
    with as_parameters():
        study, created = open_study(storage, name, objectives, config.sampler, config.seed, config.pruner)
    runner = TrialRunner(config, space, objectives, data, name)
    teacher = load_token_classifier(runner.teacher_dir, trust_remote_code=config.trust_remote_code)
    check_label_compatibility(model_labels(teacher), data.labels, f"teacher {config.teacher} vs data {config.data}")
    del teacher  # a teacher that cannot label this data ends here, not in every trial
    done = counted_trials(study)
    print(f"[search] study {name!r} in {redact(storage_url)}: {'created' if created else 'joined'}, "
          f"{done} of {config.n_trials} trials done\nsearch space ({config.space}):\n{space.describe()}")
    with stage_run("search", config, run_name=f"search {name}") as run:
        mlflow.set_tags({"optuna.study_name": name, "optuna.storage": redact(storage_url),
                         "findistill.study_created": str(created).lower()})
        mlflow.log_artifact(config.space, "search")
        started = time.perf_counter()
        if done < config.n_trials:
            study.optimize(
                runner, n_trials=config.n_trials - done, timeout=config.timeout_minutes * 60 or None,
                catch=(Exception,), gc_after_trial=True,
                callbacks=[optuna.study.MaxTrialsCallback(config.n_trials, states=(TrialState.COMPLETE,
                                                                                    TrialState.PRUNED,
                                                                                    TrialState.FAIL))],
            )
        log_metrics({"search_seconds": time.perf_counter() - started})
        # decided first: the trials are read once no other worker runs one (a trial finishing in between
        # would otherwise be missing from the chosen ones)
        retrain = _should_retrain(config, study, run.info.run_id)
        chosen = chosen_trials(study, config.retrain_top)
        summary = log_study(study, objectives, chosen)
        print(f"[search] trials: {summary['trials']}")
        if not chosen:
            print("[search] no trial completed: nothing to retrain")
        elif retrain:
            rows = retrain_chosen(runner, config, chosen, objectives)
            log_json(rows, "search/retrained.json")
            table = _retrain_markdown(rows, objectives)
            log_text(table, "search/retrained.md")
            best = rows[0]
            mlflow.set_tags({"findistill.best_trial": str(best["trial"]), "findistill.best_model_uri":
                             best["model_uri"]})
            log_metrics({"best_test_f1_mean": best["test_f1_mean"], "best_test_f1_sd": best["test_f1_sd"]})
            describe_run(f"Optuna study {name}: {summary['trials']}; trial {best['trial']} chosen on validation, "
                         f"retrained: test F1 {best['test_f1_mean']:.4f} ± {best['test_f1_sd']:.4f}.")
            print(f"\n[search] chosen trials retrained with the full budget:\n{table}")
        print_tracking_location()
        print(f"Watch the study live: optuna-dashboard {redact(storage_url)}")
        return run.info.run_id
