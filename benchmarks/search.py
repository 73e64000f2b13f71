"""Search benchmark: Optuna studies over distillation on FiNER-ORD, against the hand-set students.

    .venv/bin/python benchmarks/search.py --teacher runs:/<id>/model        # both studies, then the table
    .venv/bin/python benchmarks/search.py --teacher runs:/<id>/model --collect-only

Two studies through ``mlflow run . -e search`` (experiment ``search-finer-ord``) over the default
space (``configs/search-space.yaml``), run side by side with one thread each (``--parallel``),
each of ``--trials`` short trials (``--max-sentences`` training sentences, the space's fixed
epochs): one objective (validation F1, median pruning; the
best trial retrained with the full budget for 3 seeds) and two objectives (validation F1 and CPU
latency at batch 1; the Pareto trials retrained once). A study interrupted half-way continues
where it stopped (the same study in ``benchmarks/results/search-optuna.db``); a study whose run
finished and retrained its chosen trials is not run again.

With ``--baseline`` the best trial's student (same depth and vocabulary) is also trained with the
hand-set recipe of ``distill.md`` for 3 seeds: the same student, tuned or not. Afterwards the
teacher and each retrained student are measured side by side in one fresh process
(2 threads, the first 256 test sentences, 3 alternating rounds) and set against the hand-set
students of ``benchmarks/results/distill.json``. Output: ``benchmarks/results/search.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from stage_runs import finished_run, launch, stage_key, wait_while_running  # the sibling module

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATA = REPO.parent / "shared" / "data" / "finer-ord"
EXPERIMENT = "search-finer-ord"
#: study -> the parameters that differ between the two studies
STUDIES = {
    "f1": {"objectives": "f1", "pruner": "median", "retrain_seeds": "42,1,2", "retrain_top": "1"},
    "f1-latency": {"objectives": "f1,latency", "pruner": "none", "retrain_seeds": "42", "retrain_top": "3"},
}
#: the recipe of the hand-set students in benchmarks/results/distill.md (its budget, the distill defaults)
HAND_SET = {"epochs": "6", "learning_rate": "2e-4", "patience": "2", "temperature": "2", "kd_weight": "1",
            "ce_weight": "1", "layer_selection": "uniform", "transfer_data": "none"}
COST_KEYS = ("params_total", "model_size_mb", "latency_cpu_b1_ms_p50", "latency_cpu_b32_ms_p50",
             "throughput_cpu_words_per_s")


def search_params(study: str, args: argparse.Namespace) -> dict[str, str]:
    return {"data": str(DATA), "teacher": args.teacher, "space": args.space, "n_trials": str(args.trials),
            "max_sentences": str(args.max_sentences), "storage": f"sqlite:///{RESULTS / 'search-optuna.db'}",
            "study_name": f"finer-ord-{study}-m{args.max_sentences}", **STUDIES[study]}


def finished_search(study: str, args: argparse.Namespace):
    """The newest FINISHED search run of ``study`` that retrained its chosen trials, or None. Found by the
    study's name, not by the stage cache key: the study itself is the cache (a new run continues it)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    name = search_params(study, args)["study_name"]
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                              filter_string=f"tags.`optuna.study_name` = '{name}' and attributes.status = 'FINISHED' "
                                            "and tags.`findistill.best_trial` != ''")
    return next((r for r in runs if r.data.tags.get("findistill.stage") == "search"), None)


def run_study(study: str, args: argparse.Namespace, threads: int | None = None) -> str:
    params = search_params(study, args)
    key = stage_key("search", params)
    wait_while_running(EXPERIMENT, key)
    done = finished_search(study, args)
    if done is not None:
        print(f"[reuse] study {study}: run {done.info.run_id}", flush=True)
        return done.info.run_id
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    return launch("search", EXPERIMENT, f"search-{study}", params, key, log=RESULTS / "logs" / f"search-{study}.log",
                  threads=threads)


def _artifact_json(run_id: str, path: str):
    import mlflow

    return json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_text())


def collect_study(study: str, args: argparse.Namespace) -> dict | None:
    import optuna

    from findistill.search.report import trials_frame
    from findistill.search.study import OBJECTIVES, make_storage

    run = finished_search(study, args)
    if run is None:
        print(f"[missing] study {study}: no finished search run with these settings", flush=True)
        return None
    summary = _artifact_json(run.info.run_id, "search/summary.json")
    retrained = _artifact_json(run.info.run_id, "search/retrained.json")
    storage = make_storage(search_params(study, args)["storage"])
    optuna_study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    objectives = [OBJECTIVES[name] for name in summary["objectives"]]
    frame = trials_frame(optuna_study, objectives)
    front = []
    if len(objectives) > 1:
        front = sorted(({"trial": t.number, "f1": t.values[0], objectives[1].name: t.values[1], "params": t.params}
                        for t in optuna_study.best_trials), key=lambda row: -row["f1"])
    return {"study": study, "run_id": run.info.run_id, "summary": summary, "retrained": retrained,
            "pareto": front, "trials": json.loads(frame.to_json(orient="records")),
            "seconds": run.data.metrics.get("search_seconds")}


def student_tokenizer(params: dict, teacher: str) -> str:
    """The tokenizer of a trial's student: ``same``, or the folder ``search`` built (or builds) for it."""
    if params.get("vocab_method", "same") == "same":
        return "same"
    from findistill.data.splits import load_ner_data
    from findistill.data.text import sentence_texts
    from findistill.models.loading import load_tokenizer
    from findistill.stages.search import DEFAULT_VOCAB_SIZE
    from findistill.tracking.runs import localize_model
    from findistill.vocab.cache import cached_tokenizer

    train = load_ner_data(str(DATA)).splits["train"]
    folder, _ = cached_tokenizer(REPO / ".findistill" / "tokenizers", params["vocab_method"],
                                 int(params.get("vocab_size", DEFAULT_VOCAB_SIZE)),
                                 load_tokenizer(localize_model(teacher)), lambda: sentence_texts(train))
    return str(folder)


def hand_set_same_size(study: dict, args: argparse.Namespace) -> dict:
    """The best trial's student (depth and vocabulary) trained with the hand-set recipe of
    ``distill.md`` (6 epochs at 2e-4, patience 2, T = 2, KD and CE weights 1, uniform layers), 3 seeds."""
    best = study["retrained"][0]["params"]
    params = {"data": str(DATA), "teacher": args.teacher, "student_layers": str(best.get("student_layers", 3)),
              "tokenizer": student_tokenizer(best, args.teacher), **HAND_SET}
    f1 = {}
    for seed in ("42", "1", "2"):
        run_params = {**params, "seed": seed}
        key = stage_key("distill", run_params)
        wait_while_running(EXPERIMENT, key)
        done = finished_run(EXPERIMENT, key)
        if done is None and args.collect_only:
            continue
        run_id = done.info.run_id if done else launch("distill", EXPERIMENT, f"hand-set-s{seed}", run_params, key,
                                                     log=RESULTS / "logs" / f"search-hand-set-s{seed}.log")
        from mlflow.tracking import MlflowClient

        f1[seed] = MlflowClient().get_run(run_id).data.metrics.get("test_f1")
    values = [v for v in f1.values() if v is not None]
    return {"params": {k: v for k, v in params.items() if k not in ("data", "teacher")}, "test_f1": f1,
            "test_f1_mean": float(np.mean(values)) if values else None,
            "test_f1_sd": float(np.std(values)) if values else None}


def more_seeds(studies: list[dict], spec: str, args: argparse.Namespace) -> None:
    """Retrain ``study:trial`` (a retrained Pareto trial) for seeds 1 and 2 as ``distill`` runs with the
    values ``search`` retrained it with, and add their test F1 to its row."""
    from mlflow.tracking import MlflowClient

    from findistill.stages.search import VOCAB_PARAMS, load_search_space

    name, number = spec.rsplit(":", 1)
    study = next(s for s in studies if s["study"] == name)
    row = next(r for r in study["retrained"] if r["trial"] == int(number))
    space = load_search_space(str(REPO / args.space))
    values = {**space.fixed, **row["params"], **space.retrain}
    tokenizer = student_tokenizer(values, args.teacher)
    values = {k: str(v) for k, v in values.items() if k not in VOCAB_PARAMS}
    if tokenizer != "same":
        values["tokenizer"] = tokenizer
    for seed in ("1", "2"):
        if seed in row["test_f1"] or int(seed) in row["test_f1"]:
            continue
        params = {"data": str(DATA), "teacher": args.teacher, "seed": seed, **values}
        key = stage_key("distill", params)
        done = finished_run(EXPERIMENT, key)
        if done is None and args.collect_only:
            continue
        log = RESULTS / "logs" / f"search-{name}-trial{number}-s{seed}.log"
        run_id = done.info.run_id if done else launch("distill", EXPERIMENT, f"{name}-trial{number}-s{seed}", params,
                                                     key, log=log)
        row["test_f1"][seed] = MlflowClient().get_run(run_id).data.metrics.get("test_f1")
    f1s = [v for v in row["test_f1"].values() if v is not None]
    row["test_f1_mean"], row["test_f1_sd"] = float(np.mean(f1s)), float(np.std(f1s))


def measure(teacher: str, studies: list[dict]) -> dict[str, dict[str, float]]:
    """Teacher and every retrained student (first seed) side by side in one fresh process."""
    from findistill.costs.fresh_process import measure_saved_models
    from findistill.data.splits import load_ner_data
    from findistill.tracking.runs import localize_model

    cache = RESULTS / "search-costs.json"
    uris = {"teacher": teacher}
    for study in studies:
        for row in study["retrained"]:
            uris[f"{study['study']} trial {row['trial']}"] = row["model_uri"]
    if cache.exists():  # measured earlier: kept while it covers these models (delete it to measure again)
        costs = json.loads(cache.read_text())
        if set(uris) <= set(costs):
            return costs
    dirs = {name: localize_model(uri) for name, uri in uris.items()}
    sentences = [s.tokens for s in load_ner_data(str(DATA)).splits["test"][:256]]
    costs = measure_saved_models(dirs, sentences, max_length=256, threads=2, rounds=3)
    cache.write_text(json.dumps(costs, indent=1))
    return costs


def hand_set() -> list[dict]:
    """The hand-set students of the distillation benchmark on FiNER-ORD (3 seeds each)."""
    rows = json.loads((RESULTS / "distill.json").read_text())
    corpus = next(r for r in rows if r["corpus"] == "finer-ord")
    teacher = corpus["costs"]["teacher"]
    out = []
    for key, variant in corpus["variants"].items():
        out.append({"variant": key, "description": variant["description"], "f1_mean": variant["f1_mean"],
                    "f1_sd": variant["f1_sd"], "f1_ratio": variant["f1_ratio"],
                    "params": variant["cost"]["params_total"], "params_ratio": variant["params_ratio"],
                    "speedup_b1": teacher["latency_cpu_b1_ms_p50"] / variant["cost"]["latency_cpu_b1_ms_p50"]})
    return out


def _values(params: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def markdown(studies: list[dict], costs: dict, teacher_f1: float | None, hand: list[dict],
             baseline: dict | None = None) -> str:
    teacher_cost = costs["teacher"]
    lines = ["# Optuna search over distillation on FiNER-ORD", ""]
    if teacher_f1 is not None:
        lines += [f"Teacher test F1 {teacher_f1:.4f}, {teacher_cost['params_total'] / 1e6:.2f}M parameters, "
                  f"CPU b1 p50 {teacher_cost['latency_cpu_b1_ms_p50']:.1f} ms.", ""]
    for study in studies:
        s = study["summary"]
        lines += [f"## Study `{s['study_name']}` ({', '.join(s['objectives'])})", "",
                  f"Trials: {s['trials']}; {study['seconds'] / 60:.0f} min of search on 2 cores "
                  f"(run `{study['run_id']}`).", ""]
        for objective, ranked in s["importances"].items():
            if ranked:
                lines.append(f"- Importances for {objective}: "
                             + ", ".join(f"{k} {v:.2f}" for k, v in ranked.items()))
        if study["pareto"]:
            second = s["objectives"][1]
            lines += ["", "Pareto front (trial values on the validation split):", "",
                      f"| trial | validation F1 | {second} | values |", "|---|---:|---:|---|"]
            lines += [f"| {p['trial']} | {p['f1']:.4f} | {p[second]:.4g} | {_values(p['params'])} |"
                      for p in study["pareto"]]
        lines += ["", "Retrained with the full budget (all training sentences, the space's retrain values), "
                  "tested; costs side by side with the teacher:", "",
                  "| trial | test F1 mean ± sd | seeds | F1 vs teacher | params | vs teacher | CPU b1 p50 ms | "
                  "b1 speed-up | values |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for row in study["retrained"]:
            cost = costs[f"{study['study']} trial {row['trial']}"]
            ratio = f"{row['test_f1_mean'] / teacher_f1:.1%}" if teacher_f1 else "–"
            lines.append(
                f"| {row['trial']} | {row['test_f1_mean']:.4f} ± {row['test_f1_sd']:.4f} | {len(row['test_f1'])} | "
                f"{ratio} | {cost['params_total'] / 1e6:.2f}M | "
                f"{cost['params_total'] / teacher_cost['params_total']:.0%} | {cost['latency_cpu_b1_ms_p50']:.1f} | "
                f"{teacher_cost['latency_cpu_b1_ms_p50'] / cost['latency_cpu_b1_ms_p50']:.2f}x | "
                f"{_values(row['params'])} |")
        lines.append("")
    if baseline and baseline.get("test_f1_mean") is not None:
        p = baseline["params"]
        ratio = f" ({baseline['test_f1_mean'] / teacher_f1:.1%} of the teacher)" if teacher_f1 else ""
        lines += ["## The same student with the hand-set recipe", "",
                  f"{p['student_layers']} layers, tokenizer `{Path(p['tokenizer']).name}`, {p['epochs']} epochs at "
                  f"{p['learning_rate']}, T = {p['temperature']}, KD and CE weights 1, uniform layers, no transfer "
                  f"set: test F1 {baseline['test_f1_mean']:.4f} ± {baseline['test_f1_sd']:.4f}{ratio} "
                  f"(seeds {', '.join(f'{k}: {v:.4f}' for k, v in baseline['test_f1'].items())}).", ""]
    lines += ["## Hand-set students (benchmarks/results/distill.md, their own teacher run, 3 seeds)", "",
              "| variant | test F1 mean ± sd | F1 vs teacher | params | vs teacher | b1 speed-up |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {h['description']} | {h['f1_mean']:.4f} ± {h['f1_sd']:.4f} | {h['f1_ratio']:.1%} | "
              f"{h['params'] / 1e6:.2f}M | {h['params_ratio']:.0%} | {h['speedup_b1']:.2f}x |" for h in hand]
    lines += ["", "Costs: one fresh process, 2 threads, first 256 test sentences, max_length 256, median of 3 "
              "alternating rounds. Trials never see the test split: they are chosen on validation F1."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="the fine-tuned FiNER-ORD teacher (runs:/<id>/model)")
    parser.add_argument("--space", default="configs/search-space.yaml")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--max-sentences", type=int, default=500, help="training sentences per trial")
    parser.add_argument("--parallel", type=int, default=2, help="studies run at once (1 thread each when > 1)")
    parser.add_argument("--studies", default=",".join(STUDIES))
    parser.add_argument("--collect-only", action="store_true", help="no new runs: tables from finished ones")
    parser.add_argument("--more-seeds", default="", metavar="STUDY:TRIAL,...",
                        help="retrain these retrained trials for seeds 1 and 2 as well (e.g. f1-latency:14)")
    parser.add_argument("--baseline", action="store_true",
                        help="also train the best trial's student with the hand-set recipe (3 seeds)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{RESULTS / 'mlflow.db'}")
    names = [s for s in args.studies.split(",") if s]
    if not args.collect_only:  # the studies side by side, one thread each: more trials per hour on 2 cores
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            list(pool.map(lambda study: run_study(study, args, threads=1 if args.parallel > 1 else None), names))
    studies = [s for s in (collect_study(study, args) for study in names) if s is not None]
    from mlflow.tracking import MlflowClient

    teacher_run = args.teacher.removeprefix("runs:/").split("/")[0]
    teacher_f1 = MlflowClient().get_run(teacher_run).data.metrics.get("test_f1") if args.teacher.startswith(
        "runs:/") else None
    for spec in filter(None, args.more_seeds.split(",")):
        more_seeds(studies, spec, args)
    single = next((s for s in studies if len(s["summary"]["objectives"]) == 1 and s["retrained"]), None)
    baseline = hand_set_same_size(single, args) if single and args.baseline else None
    costs = measure(args.teacher, studies)
    (RESULTS / "search.json").write_text(json.dumps({"teacher": args.teacher, "teacher_test_f1": teacher_f1,
                                                     "studies": studies, "costs": costs,
                                                     "hand_set_same_size": baseline}, indent=1, default=str))
    table = markdown(studies, costs, teacher_f1, hand_set(), baseline)
    (RESULTS / "search.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
