"""``main``: The whole study as child runs in the order a strategy names (finetune-distill,
adapt-finetune-distill, distill-adapt-finetune, distill-adapt-distill): prepare ->
analyze_tokenization -> train_tokenizer -> [adapt] -> finetune teacher -> distill (or search)/adapt student ->
evaluate [-> quantize]; finished stages with the same inputs and code are reused.

Stage orders (Gordon & Duh 2020, "Distill, Adapt, Distill"), with T0 the general teacher
(``model``) and the student ``student_layers`` of its layers with the student ``tokenizer``:

- ``finetune-distill``: fine-tune T0 on the NER data, distil the student from it (the baseline);
- ``adapt-finetune-distill``: adapt T0 (masked LM on domain text), fine-tune it, distil;
- ``distill-adapt-finetune``: distil a general student from T0 on ``general_data`` (hidden
  states), adapt the student, fine-tune it (no NER teacher);
- ``distill-adapt-distill``: as above up to the adapted student; adapt and fine-tune T0; distil
  the adapted student from that teacher.

Every chain starts with prepare -> analyze_tokenization -> train_tokenizer (when the student gets
a domain vocabulary) and ends with evaluate of the student, an inference variant of it when
``quantize`` names one (``quantize`` stage: its F1 is checked against the student's), the teacher,
the student (and its variant) measured side by side in one fresh process, registration when
asked, and the ``compare`` table and dashboard of these models (``compare/``, and
``<dashboards>/main-<run id>.html`` unless ``dashboards`` is ``none``).

**Stage cache.** Each stage's key is a hash of its stage name, its parameters (upstream results
enter as ``runs:/<id>/...``, so a new upstream run changes the key), a fingerprint of local input
files and the code version (a hash of the ``findistill`` package). A FINISHED run with the same
key in the experiment is reused instead of recomputed; a killed or failed one is not, and since
checkpoints are named by the config too, re-running ``main`` resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import LoggedModelOutput
from mlflow.tracking import MlflowClient

from findistill.config import as_parameters, require, to_dict
from findistill.costs.device import resolve_device
from findistill.costs.fresh_process import measure_saved_models
from findistill.data.corpus import NerData
from findistill.models.loading import DEFAULT_TEACHER
from findistill.models.students import select_layers
from findistill.runtimes.variants import VARIANTS, QualityError
from findistill.stages import (
    adapt,
    analyze_tokenization,
    compare,
    distill,
    evaluate,
    finetune,
    prepare,
    quantize,
    search,
    train_tokenizer,
)
from findistill.stages.common import (
    EXAMPLE_TEXTS,
    DataParams,
    StudentParams,
    load_stage_data,
    model_depth,
    print_tracking_location,
)
from findistill.stages.pipeline import Pipeline
from findistill.tracking.pyfunc import MODEL_ID_TAG
from findistill.tracking.registry import register, version_tags
from findistill.tracking.runs import (
    describe_run,
    localize_model,
    log_dataset_inputs,
    log_json,
    log_metrics,
    log_text,
    stage_run,
)
from findistill.tracking.stale import mark_stale_runs
from findistill.training.trainer import TrainSettings
from findistill.vocab.build import BUILD_METHODS

STRATEGIES = {
    "finetune-distill": "fine-tune the general teacher, distil the student from it (baseline)",
    "adapt-finetune-distill": "adapt the teacher to the domain (masked LM), fine-tune it, distil the student",
    "distill-adapt-finetune": "distil a general student on general text, adapt it, fine-tune it (no NER teacher)",
    "distill-adapt-distill": "distil a general student, adapt it; adapt and fine-tune the teacher; distil the "
                             "adapted student from it",
}
NEEDS_GENERAL = ("distill-adapt-finetune", "distill-adapt-distill")
SEARCHABLE_STRATEGIES = ("finetune-distill", "adapt-finetune-distill")


@dataclass
class Config(StudentParams, TrainSettings, DataParams):
    """``main``: the study for one ``strategy`` (see :data:`STRATEGIES`), each stage a child run.

    ``model``: the general teacher. ``general_data``: general-domain text for the strategies that
    distil on it (an NER corpus such as ../shared/data/wikigold, or raw text). ``text_data``:
    extra unlabeled domain text for the tokenizer and adaptation. Student: ``student_layers``
    layers (``layer_selection``) and ``tokenizer``: ``domain`` (built here by ``tokenizer_method``
    at ``tokenizer_vocab_size``), ``same``, or a tokenizer reference. The optimisation settings
    (``epochs``...) are the teacher's; students use ``student_learning_rate`` and
    ``student_epochs`` (0: ``epochs``); adaptation ``adapt_epochs`` at ``adapt_learning_rate``,
    general distillation ``general_epochs``. ``reuse=false`` recomputes every stage.

    ``search`` (a search-space YAML such as ``configs/search-space.yaml``; ``none``: no search)
    replaces the distill step by a ``search`` of ``search_trials`` trials (``search_objectives``,
    study in ``search_storage``) whose best trial, retrained, is the student: the space then
    decides the student and its training, not the student parameters above.

    ``quantize`` (``none``, or a variant of the ``quantize`` stage such as ``onnx-int8``) adds an
    inference variant of the student after its evaluation. A variant that loses more than one F1
    point on validation against the student is refused: ``main`` ends with the fp32 student, says
    so in ``pipeline.md`` and in the tag ``findistill.quantize_refused``, and registers no variant.

    The defaults are the demo (``make demo``: the bundled sample, 335 training sentences, in about
    three minutes on 2 cores), chosen from what the benchmarks showed pays: ``finetune-distill``
    (adapting first moved the student by less than the seed noise), the teacher's own vocabulary
    (on a few hundred labelled sentences a domain vocabulary costs the student more F1 than depth
    does), 3 of the teacher's 6 layers distilled with an augmented transfer set (training sentences
    with their mentions swapped, the strongest lever seen), 6 epochs at 3e-4 for both, T = 1.
    """

    strategy: str = "finetune-distill"
    model: str = DEFAULT_TEACHER
    general_data: str = "none"
    text_data: str = "none"
    student_layers: int = 3
    tokenizer: str = "same"
    tokenizer_method: str = "trim"
    tokenizer_vocab_size: int = 16000
    epochs: int = 6
    batch_size: int = 8
    learning_rate: float = 3e-4
    student_epochs: int = 0
    student_learning_rate: float = 3e-4
    temperature: float = 1.0
    kd_weight: float = 1.0
    ce_weight: float = 1.0
    transfer_data: str = "augment"
    search: str = "none"
    search_trials: int = 8
    search_objectives: str = "f1"
    search_storage: str = "auto"
    quantize: str = "none"
    adapt_epochs: int = 3
    adapt_learning_rate: float = 1e-4
    general_epochs: int = 3
    eval_split: str = "test"
    device: str = "auto"
    measure_resources: bool = True
    registered_model_name: str = ""
    trust_remote_code: bool = False
    reuse: bool = True
    dashboards: str = "dashboards"

    def __post_init__(self) -> None:
        DataParams.__post_init__(self)
        StudentParams.__post_init__(self)
        self.check_settings()
        valid = ", ".join(STRATEGIES)
        require(self.strategy in STRATEGIES, "strategy", f"one of {valid}", self.strategy)
        require(self.strategy not in NEEDS_GENERAL or self.general_data != "none", "general_data",
                f"a general-domain corpus for strategy {self.strategy} (it distils on general text first), "
                "e.g. ../shared/data/wikigold", self.general_data)
        require(self.student_layers >= 1, "student_layers", "an integer >= 1 (the student's depth)",
                self.student_layers)
        require(self.tokenizer_method in BUILD_METHODS, "tokenizer_method",
                f"one of {', '.join(BUILD_METHODS)}", self.tokenizer_method)
        for name in ("adapt_epochs", "general_epochs"):
            require(getattr(self, name) >= 1, name, "an integer >= 1", getattr(self, name))
        require(self.student_epochs >= 0, "student_epochs", "0 (as epochs) or an integer >= 1", self.student_epochs)
        require(self.search == "none" or self.strategy in SEARCHABLE_STRATEGIES, "search",
                f"'none' with strategy {self.strategy} (a search replaces the distill step of "
                f"{' or '.join(SEARCHABLE_STRATEGIES)})", self.search)
        require(self.search_trials >= 1, "search_trials", "an integer >= 1", self.search_trials)
        require(self.quantize == "none" or self.quantize in VARIANTS, "quantize",
                f"'none' or one of {', '.join(VARIANTS)}", self.quantize)
        for name in ("student_learning_rate", "adapt_learning_rate"):
            require(getattr(self, name) > 0, name, "a positive number", getattr(self, name))


def _fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _pick(config: Config, cls: type) -> dict[str, Any]:
    """The values of ``config`` for the fields ``cls`` shares with it."""
    values = to_dict(config)
    return {k: values[k] for k in _fields(cls) if k in values}


def _metrics(run_id: str) -> dict[str, float]:
    return mlflow.get_run(run_id).data.metrics


#: cost metrics ``main`` logs as ``teacher_<metric>``/``student_<metric>`` (from one side-by-side measurement)
SUMMARY_KEYS = ("params_total", "model_size_mb", "latency_cpu_b1_ms_p50", "latency_cpu_b32_ms_p50",
                "throughput_cpu_words_per_s", "peak_rss_mb", "peak_rss_increase_mb", "mfu_cpu_b32",
                "latency_gpu_b1_ms_p50", "latency_gpu_b32_ms_p50", "gpu_peak_mem_mb")
#: rounds of the side-by-side measurement (teacher, student, then student, teacher; medians)
COST_ROUNDS = 2


def _register(name: str, run_id: str, role: str, metrics: dict[str, float]) -> None:
    """Register ``runs:/<run_id>/model`` under ``name`` unless that run is already a version of it; the
    version's tags (:func:`version_tags`) take ``metrics`` (the side-by-side costs) over the run's."""
    existing = MlflowClient().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:
        print(f"[main] {role} run {run_id} is already {name} version {existing[0].version}")
        return
    version = register(f"runs:/{run_id}/model", name, tags={**version_tags(run_id, metrics), "role": role})
    print(f"[main] registered the {role} as {name} version {version}")


def run(config: Config) -> str:
    """Run ``config.strategy``; log the steps (``pipeline.json``/``.md``) and the student's quality and cost."""
    s = config.strategy
    select_layers(model_depth(localize_model(config.model)), config.student_layers, config.layer_selection)
    if config.search != "none":  # every problem of the space, before the teacher is trained
        require(Path(config.search).is_file(), "search", "'none' or a search-space YAML file such as "
                "configs/search-space.yaml", config.search)
        search.load_search_space(config.search)
    with stage_run("main", config, run_name=f"main {s}") as parent:
        swept = mark_stale_runs([parent.info.experiment_id])
        if swept.killed:  # before looking for runs to reuse: a killed step is rerun (and resumes)
            print(f"[main] marked {len(swept.killed)} run(s) KILLED that a dead process left RUNNING")
        pipe = Pipeline(parent.info.experiment_id, reuse=config.reuse)
        mlflow.set_tags({"findistill.strategy": s, "findistill.code_version": pipe.code})
        print(f"[main] strategy {s}: {STRATEGIES[s]} (code {pipe.code})")
        prepared = pipe.run("prepare", prepare, prepare.Config(**_pick(config, prepare.Config)))
        data = {**_pick(config, DataParams), "data": f"runs:/{prepared}/data", "splits": "auto", "max_sentences": 0}
        study_data = load_stage_data(DataParams(**data))
        log_dataset_inputs(study_data)  # the study's data, in the run list's Datasets
        corpora = f"domain=runs:/{prepared}/data" + (f",general={config.general_data}"
                                                      if config.general_data != "none" else "")
        pipe.run("analyze_tokenization", analyze_tokenization, analyze_tokenization.Config(
            tokenizers=config.model, corpora=corpora, general="general", seed=config.seed,
            trust_remote_code=config.trust_remote_code))
        student_tokenizer = config.tokenizer
        if config.tokenizer == "domain":
            with as_parameters(method="tokenizer_method", vocab_size="tokenizer_vocab_size"):
                built = pipe.run("train_tokenizer", train_tokenizer, train_tokenizer.Config(
                    **data, method=config.tokenizer_method, vocab_size=config.tokenizer_vocab_size,
                    teacher=config.model, text_data=config.text_data, trust_remote_code=config.trust_remote_code))
            student_tokenizer = f"runs:/{built}/tokenizer"

        common = {**data, "eval_split": config.eval_split, "device": config.device,
                  "measure_resources": False,  # costs are measured once, side by side, at the end
                  "trust_remote_code": config.trust_remote_code}
        teacher_train = {k: v for k, v in _pick(config, TrainSettings).items() if k != "seed"}  # seed is in data
        student_train = {**teacher_train, "epochs": config.student_epochs or config.epochs,
                         "learning_rate": config.student_learning_rate}
        student_spec = {"student_layers": config.student_layers, "layer_selection": config.layer_selection,
                        "tokenizer": student_tokenizer, "vocab_transfer": config.vocab_transfer,
                        "intermediate_size": config.intermediate_size}
        # the embedding factorisation, applied to whichever model becomes the final student
        factorising = {"embedding_rank": config.embedding_rank, "embedding_weights": config.embedding_weights,
                       "embedding_exact_rows": config.embedding_exact_rows,
                       "embedding_weights_text": config.embedding_weights_text}
        adapting = {**data, "text_data": config.text_data, "epochs": config.adapt_epochs,
                    "learning_rate": config.adapt_learning_rate, "device": config.device,
                    "trust_remote_code": config.trust_remote_code}
        kd = {"temperature": config.temperature, "kd_weight": config.kd_weight, "ce_weight": config.ce_weight,
              "transfer_data": config.transfer_data}

        teacher_run = None
        if s != "distill-adapt-finetune":
            base = config.model
            if s in ("adapt-finetune-distill", "distill-adapt-distill"):
                adapted = pipe.run("adapt-teacher", adapt, adapt.Config(**adapting, model=base))
                base = f"runs:/{adapted}/model"
            teacher_run = pipe.run("finetune-teacher", finetune,
                                   finetune.Config(**common, **teacher_train, model=base))
        if s.startswith("distill-adapt"):
            general = pipe.run("general-distill-student", adapt, adapt.Config(
                **{**adapting, "epochs": config.general_epochs}, **student_spec, model=config.model,
                teacher=config.model, general_data=config.general_data))
            adapted_student = pipe.run("adapt-student", adapt,
                                       adapt.Config(**adapting, model=f"runs:/{general}/model"))
            if s == "distill-adapt-finetune":
                student_run = pipe.run("finetune-student", finetune, finetune.Config(
                    **common, **student_train, **factorising, model=f"runs:/{adapted_student}/model"))
            else:
                student_run = pipe.run("distill-student", distill, distill.Config(
                    **common, **student_train, **kd, teacher=f"runs:/{teacher_run}/model",
                    student_init=f"runs:/{adapted_student}/model", student_layers=0, **factorising))
        elif config.search != "none":
            searched = pipe.run("search-student", search, search.Config(
                **data, teacher=f"runs:/{teacher_run}/model", space=config.search, n_trials=config.search_trials,
                objectives=config.search_objectives, storage=config.search_storage, retrain="true",
                retrain_seeds=str(config.seed), device=config.device, trust_remote_code=config.trust_remote_code))
            student_run = _searched_student(searched)
        else:
            student_run = pipe.run("distill-student", distill, distill.Config(
                **common, **student_train, **kd, **student_spec, **factorising,
                teacher=f"runs:/{teacher_run}/model"))
        evaluated = pipe.run("evaluate-student", evaluate, evaluate.Config(
            **data, model=f"runs:/{student_run}/model", split=config.eval_split, max_length=config.max_length,
            device=config.device, measure_resources=False))
        quantized_run, notes = None, []
        if config.quantize != "none":
            try:
                quantized_run = pipe.run("quantize-student", quantize, quantize.Config(
                    **data, model=f"runs:/{student_run}/model", variant=config.quantize,
                    eval_split=config.eval_split, max_length=config.max_length, measure_resources=False,
                    trust_remote_code=config.trust_remote_code))
            except QualityError as refused:  # the student is still the result; the variant is only refused
                mlflow.set_tag("findistill.quantize_refused", str(refused)[:500])
                notes.append(f"The {config.quantize} variant of the student was refused: {refused}.")
                print(f"[main] {notes[-1]}")

        costs, cost_note = {}, "Costs not measured (measure_resources=false)."
        if config.measure_resources:
            costs, cost_note = _measure_side_by_side(config, study_data, teacher_run, student_run, quantized_run)
            log_json(costs, "costs.json")
        summary = _summarise(config, evaluated, teacher_run, costs, quantized_run)
        log_metrics(summary)
        log_json(pipe.steps, "pipeline.json")
        table = _steps_table(pipe.steps, summary, config.eval_split, " ".join([cost_note, *notes]))
        log_text(table, "pipeline.md")
        print(f"\n{table}")
        models = {"teacher": teacher_run, "student": student_run, "quantized": quantized_run}
        measured = {who: {**costs.get(who, {}), **({f"{config.eval_split}_f1": summary[f"{who}_{config.eval_split}_f1"]}
                                                    if f"{who}_{config.eval_split}_f1" in summary else {})}
                    for who, run_id in models.items() if run_id}
        if config.registered_model_name:
            for who, run_id in models.items():
                if run_id:
                    _register(config.registered_model_name, run_id, who, measured[who])
        _compare(config, parent.info.run_id, {who: (models[who], m) for who, m in measured.items()}, cost_note)
        describe_run(_description(config, summary))
        _list_models(parent.info.run_id, [run_id for run_id in models.values() if run_id])
        _demo(quantized_run or student_run)
        reused = sum(step["reused"] for step in pipe.steps)
        print(f"\nmain run {parent.info.run_id}: {len(pipe.steps)} stages, {reused} reused")
        print_tracking_location()
        return parent.info.run_id


def _compare(config: Config, parent_run: str, models: dict[str, tuple[str, dict[str, float]]], note: str) -> None:
    """The ``compare`` table and dashboard of the pipeline's models (``who -> (run id, measured metrics)``):
    F1 from their runs, costs from the side-by-side measurement."""
    split = config.eval_split
    entries = []
    for who, (run_id, measured) in models.items():
        run = mlflow.get_run(run_id)
        entry = compare.model_of_run(run, split, label=f"{who} ({run.data.tags.get('mlflow.runName', run_id[:8])})",
                                     key=who)
        entry.role, entry.f1 = who, measured.get(f"{split}_f1", entry.f1)
        entry.costs = {k: v for k, v in measured.items() if k != f"{split}_f1"}
        entries.append(entry)
    compare.log_report(entries, split=split, title=f"main-{parent_run[:8]}", notes=[note],
                       output_dir=config.dashboards)


def _list_models(parent_run: str, runs: list[str]) -> None:
    """Record the models of ``runs`` as outputs of the parent run, so its row in the UI's run list names them.
    Done last: metrics the parent logged after it at step 0 would be linked to these models."""
    ids = [mlflow.get_run(run_id).data.tags.get(MODEL_ID_TAG) for run_id in runs]
    MlflowClient().log_outputs(parent_run, [LoggedModelOutput(model_id, step=0) for model_id in ids if model_id])


def _description(config: Config, summary: dict[str, float]) -> str:
    """The parent run's description: strategy, corpus, and the student against the teacher."""
    f1 = f"{config.eval_split}_f1"
    text = f"Strategy {config.strategy} on {config.data}."
    if f"student_{f1}" in summary:
        text += f" Student {config.eval_split} F1 {summary[f'student_{f1}']:.4f}"
        if f"teacher_{f1}" in summary:
            text += f" vs teacher {summary[f'teacher_{f1}']:.4f}"
        ratios = [f"{label} {summary[key]:.2f}" for key, label in (
            ("f1_vs_teacher", "F1 ratio"), ("params_vs_teacher", "parameter ratio"),
            ("speedup_cpu_b1", "CPU batch-1 speed-up")) if key in summary]
        text += (" (" + ", ".join(ratios) + ")" if ratios else "") + "."
    if f"quantized_{f1}" in summary:
        text += f" Quantized ({config.quantize}) F1 {summary[f'quantized_{f1}']:.4f}"
        if "quantized_speedup_cpu_b1" in summary:
            text += f", {summary['quantized_speedup_cpu_b1']:.2f}x the teacher's batch-1 CPU speed"
        text += "."
    return text


def _searched_student(search_run: str) -> str:
    """The run of the student a ``search`` run chose and retrained (its best trial)."""
    uri = MlflowClient().get_run(search_run).data.tags.get("findistill.best_model_uri", "")
    if not uri.startswith("runs:/"):
        raise RuntimeError(f"search run {search_run} retrained no student (no trial completed: see its trials.md)")
    return uri.removeprefix("runs:/").split("/")[0]


def _measure_side_by_side(config: Config, data: NerData, teacher_run: str | None, student_run: str,
                          quantized_run: str | None = None) -> tuple[dict[str, dict[str, float]], str]:
    """Measure the teacher (if any), the student and its quantized variant (if any) one after the other in
    one fresh process on the same sentences (all of ``config.eval_split``), ``COST_ROUNDS`` rounds in
    alternating order.

    Returns ``{"teacher": metrics, "student": metrics, "quantized": metrics}`` (see
    ``measure_saved_models``) and a sentence saying how they were measured, for ``pipeline.md``.
    """
    folders = {"teacher": localize_model(f"runs:/{teacher_run}/model")} if teacher_run else {}
    folders["student"] = localize_model(f"runs:/{student_run}/model")
    if quantized_run:
        folders["quantized"] = localize_model(f"runs:/{quantized_run}/model")
    sentences = [s.tokens for s in data.splits[config.eval_split]]
    names = list(folders)
    who = " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"
    print(f"\n[main] measuring the {who} in one fresh process on {len(sentences)} {config.eval_split} sentences")
    costs = measure_saved_models(folders, sentences, max_length=config.max_length,
                                 device=resolve_device(config.device), rounds=COST_ROUNDS,
                                 trust_remote_code=config.trust_remote_code)
    any_costs = next(iter(costs.values()))
    order = ", then ".join(" ".join(names) for names in (list(folders), list(folders)[::-1])[:COST_ROUNDS])
    note = (f"Costs of the {who} were measured in one fresh Python process, one model at a time, on the same "
            f"{len(sentences)} {config.eval_split} sentences with {int(any_costs['cpu_threads'])} CPU thread(s), in "
            f"the order {order} (medians of {COST_ROUNDS} rounds). Peak RSS is the whole process's; the process "
            f"held {any_costs['rss_baseline_mb']:.0f} MB before any model was loaded.")
    return costs, note


def _summarise(config: Config, evaluated: str, teacher_run: str | None,
               costs: dict[str, dict[str, float]], quantized_run: str | None = None) -> dict[str, float]:
    """Quality from the stage runs, costs from the side-by-side measurement.

    ``student_<split>_f1`` comes from the student's evaluation run, ``teacher_<split>_f1`` from
    the teacher's fine-tuning run, ``quantized_<split>_f1`` from the quantize run. ``costs`` (name ->
    metrics, from ``_measure_side_by_side``; empty when resources are not measured) gives
    ``teacher_<metric>``/``student_<metric>``/``quantized_<metric>`` for :data:`SUMMARY_KEYS`. Ratios
    (student / teacher, except the speed-up): ``f1_vs_teacher``, ``params_vs_teacher``,
    ``speedup_cpu_b1`` (teacher's batch-1 CPU p50 latency over the student's), ``rss_vs_teacher``
    (``peak_rss_increase_mb``: memory added by the model and its inference over the fresh process's
    baseline); for the quantized variant the same ratios prefixed ``quantized_``.
    """
    f1 = f"{config.eval_split}_f1"
    quality = {"student": _metrics(evaluated)} | ({"teacher": _metrics(teacher_run)} if teacher_run else {})
    if quantized_run:
        quality["quantized"] = _metrics(quantized_run)
    summary = {f"{who}_{f1}": m[f1] for who, m in quality.items() if f1 in m}
    for who, metrics in costs.items():
        summary.update({f"{who}_{k}": metrics[k] for k in SUMMARY_KEYS if k in metrics})

    def ratio(name: str, key: str, who: str, inverse: bool = False) -> None:
        model, teacher = summary.get(f"{who}_{key}"), summary.get(f"teacher_{key}")
        if model and teacher:
            summary[name if who == "student" else f"{who}_{name}"] = teacher / model if inverse else model / teacher

    for who in ("student", "quantized"):
        ratio("f1_vs_teacher", f1, who)
        ratio("params_vs_teacher", "params_total", who)
        ratio("speedup_cpu_b1", "latency_cpu_b1_ms_p50", who, inverse=True)
        ratio("rss_vs_teacher", "peak_rss_increase_mb", who)
    return summary


def _steps_table(steps: list[dict[str, Any]], summary: dict[str, float], split: str, cost_note: str) -> str:
    """``pipeline.md``: the steps, then quality and costs of the teacher and the student side by side."""
    lines = ["| step | stage | run | reused | seconds |", "|---|---|---|---|---:|"]
    lines += [f"| {s['step']} | {s['stage']} | {s['run_id']} | {'yes' if s['reused'] else 'no'} | {s['seconds']:.1f} |"
              for s in steps]
    columns = ((f"{split}_f1", f"{split} F1", "{:.4f}"), ("params_total", "params", "{:,.0f}"),
               ("model_size_mb", "size MB", "{:.1f}"), ("latency_cpu_b1_ms_p50", "CPU b1 p50 ms", "{:.2f}"),
               ("latency_cpu_b32_ms_p50", "CPU b32 p50 ms", "{:.1f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
               ("peak_rss_increase_mb", "RSS over baseline MB", "{:.0f}"), ("mfu_cpu_b32", "MFU b32", "{:.2%}"))
    lines += ["", "| | " + " | ".join(title for _, title, _ in columns) + " |",
              "|---|" + "---:|" * len(columns)]
    for who in ("teacher", "student", "quantized"):
        if any(f"{who}_{key}" in summary for key, _, _ in columns):
            cells = [fmt.format(summary[f"{who}_{key}"]) if f"{who}_{key}" in summary else "n/a"
                     for key, _, fmt in columns]
            lines.append(f"| {who} | " + " | ".join(cells) + " |")
    lines += ["", cost_note]
    for who, prefix in (("Student", ""), ("Quantized student", "quantized_")):
        names = [f"{prefix}{n}" for n in ("f1_vs_teacher", "params_vs_teacher", "speedup_cpu_b1", "rss_vs_teacher")]
        ratios = [f"{name.removeprefix(prefix)} {summary[name]:.3g}" for name in names if name in summary]
        if ratios:
            lines.append(f"{who} vs teacher: {', '.join(ratios)}.")
    return "\n".join(lines) + "\n"


def _demo(student_run: str) -> None:
    loaded = mlflow.pyfunc.load_model(f"runs:/{student_run}/model")
    print("\nThe student, loaded back from MLflow, tags a sentence:")
    print(f"  {EXAMPLE_TEXTS[0]}")
    for span in loaded.predict({"text": EXAMPLE_TEXTS})[0]:
        print(f"  {span['entity']:<5} {span['text']!r} ({span['score']:.2f})")
