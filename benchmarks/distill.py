"""Distillation benchmark: students vs their teacher on the shared financial corpora, one command.

    .venv/bin/python benchmarks/distill.py                        # everything (hours on 2 cores)
    .venv/bin/python benchmarks/distill.py --teacher finer-ord=runs:/<id>/model --corpora finer-ord
    .venv/bin/python benchmarks/distill.py --collect-only         # tables from the runs in the store

Per corpus: the teacher (``--teacher corpus=ref``, or fine-tuned here with seed 42), trimmed
domain tokenizers (``train_tokenizer``, 8k; 16k for a lever), then every student variant x seed through ``mlflow run``
(``finetune`` with a student spec for the no-KD baselines, ``distill`` for KD), all with the same
optimisation budget. Runs are named ``<variant>-s<seed>`` in experiment ``distill-<corpus>`` and
found again by their stage cache key (parameters, input files, code version; ``stage_runs.py``): a
finished run with the same key is not run again, so an interrupted benchmark resumes, and one
left RUNNING by a process that died is marked FAILED and run again. ``--workers 2`` trains two
runs at a time with one thread each.

Resource costs are measured afterwards, side by side in one fresh process on an otherwise idle
machine (one model per architecture, i.e. depth and vocabulary; same sentences, same thread count,
three rounds in alternating order), so the ratios to the teacher compare like with like; they are
kept in ``distill-costs.json`` (delete it to measure again). The teacher with only its vocabulary
replaced is scored too.
Output: ``benchmarks/results/distill.{json,md}`` and ``distill-<corpus>.png`` (store:
``MLFLOW_TRACKING_URI``, default ``sqlite:///benchmarks/results/distill.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage_runs import finished_run, launch, stage_key, wait_while_running  # the sibling module

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = REPO.parent / "shared" / "data"
CORPORA = ("finer-ord", "sec-filings")

#: key -> (description, stage, student layers, domain tokenizer (trim size, "" = the teacher's), extra parameters)
VARIANTS: dict[str, tuple[str, str, int, str, dict[str, str]]] = {
    "s3-same-nokd": ("3 layers, teacher tokenizer, no KD", "finetune", 3, "", {}),
    "s3-same-kd": ("3 layers, teacher tokenizer, KD", "distill", 3, "", {}),
    "s3-dom-nokd": ("3 layers, domain tokenizer 8k, no KD", "finetune", 3, "8000", {}),
    "s3-dom-kd": ("3 layers, domain tokenizer 8k, KD", "distill", 3, "8000", {}),
    "s2-dom-kd": ("2 layers, domain tokenizer 8k, KD", "distill", 2, "8000", {}),
    "s1-dom-kd": ("1 layer, domain tokenizer 8k, KD", "distill", 1, "8000", {}),
    # levers: what beyond logit KD on the labelled set pays
    "s3-dom-kd-augment": ("3 layers, domain tokenizer 8k, KD + augmented transfer set (x1)", "distill", 3, "8000",
                          {"transfer_data": "augment", "transfer_ratio": "1"}),
    "s2-dom16k-kd": ("2 layers, domain tokenizer 16k (filled), KD", "distill", 2, "16000", {}),
    "s3-dom-kd-hidden": ("3 layers, domain tokenizer 8k, KD + hidden MSE", "distill", 3, "8000",
                         {"hidden_weight": "1"}),
}
DEFAULT_VARIANTS = "s3-same-nokd,s3-same-kd,s3-dom-nokd,s3-dom-kd,s2-dom-kd,s1-dom-kd"
TARGET = {"f1_ratio": 0.97, "params_ratio": 0.35, "speedup_b1": 3.0}
COST_KEYS = ("params_total", "params_embedding", "model_size_mb", "latency_cpu_b1_ms_p50", "latency_cpu_b32_ms_p50",
             "throughput_cpu_words_per_s", "tokens_per_word", "peak_rss_mb")


def _mlflow():
    import mlflow

    return mlflow


def mlflow_run(entry: str, experiment: str, name: str, params: dict[str, str], threads: int | None = None, *,
               reuse_only: bool = False) -> str:
    """``mlflow run . -e entry`` as run ``name`` unless a finished run with the same cache key (stage,
    parameters, input files, code) exists; returns the run id. A run of that key still RUNNING elsewhere
    is waited for (see :func:`stage_runs.wait_while_running`). ``reuse_only``: never run, raise
    LookupError when there is no finished run."""
    key = stage_key(entry, params)
    if not reuse_only:
        wait_while_running(experiment, key)
    done = finished_run(experiment, key)
    if done is not None:
        print(f"[reuse] {experiment}/{name}: {done.info.run_id}", flush=True)
        return done.info.run_id
    if reuse_only:
        raise LookupError(f"{experiment}/{name}: no finished {entry} run with these parameters and this code "
                          f"(cache key {key}); run the benchmark without --collect-only first")
    log = RESULTS / "logs" / f"{experiment}-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"[run] {experiment}/{name} (log: {log.relative_to(REPO)})", flush=True)
    return launch(entry, experiment, name, params, key, log=log, threads=threads)


def prepare_corpus(corpus: str, teacher: str | None, variants: list[str], reuse_only: bool = False) -> dict[str, str]:
    """Teacher model URI (fine-tuned here unless given), its test F1 run, and the domain tokenizers' URIs
    (``trim`` from the corpus's train split, filled with the teacher's pieces when the text runs out).
    ``reuse_only``: only finished runs (LookupError if one is missing)."""
    experiment, data = f"distill-{corpus}", str(SHARED / corpus)
    if teacher is None:
        run_id = mlflow_run("finetune", experiment, "teacher-s42",
                            {"data": data, "seed": "42", "epochs": "6", "learning_rate": "1e-4", "patience": "2",
                             "measure_resources": "false"}, reuse_only=reuse_only)
        teacher = f"runs:/{run_id}/model"
        teacher_eval = run_id
    else:
        teacher_eval = mlflow_run("evaluate", experiment, "teacher-eval",
                                  {"model": teacher, "data": data, "measure_resources": "false"}, reuse_only=reuse_only)
    refs = {"teacher": teacher, "teacher_run": teacher_eval}
    for size in sorted({VARIANTS[key][3] for key in variants} - {""}, key=int):
        run_id = mlflow_run("train_tokenizer", experiment, f"tokenizer-trim{int(size) // 1000}k",
                            {"data": data, "method": "trim", "vocab_size": size}, reuse_only=reuse_only)
        refs[f"tokenizer-{size}"] = f"runs:/{run_id}/tokenizer"
    return refs


def variant_params(key: str, corpus: str, refs: dict[str, str], seed: int, budget: dict[str, str]) -> tuple[str, dict]:
    _, stage, layers, domain, extra = VARIANTS[key]
    params = {"data": str(SHARED / corpus), "seed": str(seed), "student_layers": str(layers),
              "measure_resources": "false", **budget, **extra}
    if domain:
        params["tokenizer"] = refs[f"tokenizer-{domain}"]
    params["model" if stage == "finetune" else "teacher"] = refs["teacher"]
    return stage, params


#: the figures of the reference model kept beside each model measured in the same process as it
PAIRED = ("latency_cpu_b1_ms_p50", "latency_cpu_b32_ms_p50")


def measure_costs(corpus: str, model_uris: dict[str, str], max_sentences: int = 256, *, data: str | None = None,
                  rounds: int = 3, cache_name: str = "distill-costs.json",
                  reference: str | None = None) -> dict[str, dict[str, float]]:
    """Resource metrics of the models not yet in ``distill-costs.json``, measured side by side in one
    fresh process (``measure_saved_models``: one model at a time, ``rounds`` rounds in alternating
    order, medians) on the same sentences: the first ``max_sentences`` of the test split of ``data``,
    by default the shared ``corpus``. Measured costs are kept in ``results/<cache_name>``.

    ``reference`` (a key of ``model_uris``, e.g. the teacher) is measured again beside any model that is
    missing, and its latencies of that process are kept in the model's entry as ``reference_<metric>``
    (:data:`PAIRED`), so a ratio to the reference compares figures of one process however late the model
    came; the reference's own entry stays its first measurement."""
    sys.path.insert(0, str(REPO))
    from findistill.costs.fresh_process import measure_saved_models
    from findistill.data.splits import load_ner_data
    from findistill.tracking.runs import localize_model

    cache_file = RESULTS / cache_name
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    missing = {key: uri for key, uri in model_uris.items() if f"{corpus}|{uri}" not in cache}
    if missing:
        sentences = [s.tokens for s in load_ner_data(data or str(SHARED / corpus)).splits["test"][:max_sentences]]
        measured_uris = {**missing, **({reference: model_uris[reference]} if reference else {})}
        measured = measure_saved_models({key: localize_model(uri) for key, uri in measured_uris.items()}, sentences,
                                        max_length=256, rounds=rounds)
        for key, uri in missing.items():
            entry = dict(measured[key])
            if reference and key != reference:
                entry.update({f"reference_{metric}": measured[reference][metric] for metric in PAIRED})
            cache[f"{corpus}|{uri}"] = entry
            print(f"[cost] {corpus} {key}: b1 {measured[key]['latency_cpu_b1_ms_p50']:.1f} ms, "
                  f"params {measured[key]['params_total'] / 1e6:.2f}M", flush=True)
        cache_file.write_text(json.dumps(cache, indent=1))
    return {key: cache[f"{corpus}|{uri}"] for key, uri in model_uris.items()}


def vocabulary_only(corpus: str, refs: dict[str, str]) -> dict[str, float]:
    """Test F1 of the teacher with only its vocabulary replaced by each domain tokenizer (all layers, no
    training): how much of a domain-vocabulary student's loss the vocabulary alone explains."""
    sys.path.insert(0, str(REPO))
    from findistill.data.splits import load_ner_data
    from findistill.evaluation.predict import evaluate_ner
    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.models.students import build_student
    from findistill.stages.common import load_tokenizer_ref
    from findistill.tracking.runs import localize_model

    test = load_ner_data(str(SHARED / corpus)).splits["test"]
    folder = localize_model(refs["teacher"])
    teacher, tokenizer = load_token_classifier(folder), load_tokenizer(folder)
    scores = {}
    for key, uri in refs.items():
        if key.startswith("tokenizer-"):
            model, domain, _ = build_student(teacher, tokenizer, tokenizer=load_tokenizer_ref(uri))
            scores[key.split("-")[1]] = evaluate_ner(model, domain, test).scores["f1"]
    return scores


def collect(corpus: str, refs: dict[str, str], variants: list[str], seeds: list[int], budget: dict[str, str]) -> dict:
    """Per variant, the finished runs of its seeds (found by the cache key of the parameters they were run with)."""
    mlflow = _mlflow()
    teacher_run = mlflow.get_run(refs["teacher_run"])
    result = {"corpus": corpus, "teacher": refs["teacher"],
              "tokenizers": {k: v for k, v in refs.items() if k.startswith("tokenizer-")},
              "tokenizer_entries": {k.split("-")[1]: mlflow.get_run(v.split("/")[1]).data.metrics.get("vocab_size")
                                    for k, v in refs.items() if k.startswith("tokenizer-")},
              "teacher_test_f1": teacher_run.data.metrics["test_f1"], "variants": {}}
    for key in variants:
        runs = {seed: finished_run(f"distill-{corpus}", stage_key(*variant_params(key, corpus, refs, seed, budget)))
                for seed in seeds}
        runs = {seed: run for seed, run in runs.items() if run is not None}
        if not runs:
            continue
        result["variants"][key] = {
            "description": VARIANTS[key][0],
            "runs": {str(seed): run.info.run_id for seed, run in runs.items()},
            "test_f1": {str(seed): run.data.metrics["test_f1"] for seed, run in runs.items()},
            "best_val_f1": {str(seed): run.data.metrics.get("best_val_f1") for seed, run in runs.items()},
            "train_seconds": {str(seed): run.data.metrics.get("train_seconds") for seed, run in runs.items()},
        }
    return result


def summarise(result: dict) -> None:
    """Add means, spreads and the ratios to the teacher (costs measured side by side)."""
    teacher_f1 = result["teacher_test_f1"]
    teacher_cost = result["costs"].get("teacher", {})
    for key, row in result["variants"].items():
        f1s = list(row["test_f1"].values())
        row["f1_mean"], row["f1_sd"] = float(np.mean(f1s)), float(np.std(f1s))
        row["f1_ratio"] = row["f1_mean"] / teacher_f1
        cost = result["costs"].get(key)
        if cost and teacher_cost:
            row["cost"] = cost
            row["params_ratio"] = cost["params_total"] / teacher_cost["params_total"]
            row["size_ratio"] = cost["model_size_mb"] / teacher_cost["model_size_mb"]
            row["speedup_b1"] = teacher_cost["latency_cpu_b1_ms_p50"] / cost["latency_cpu_b1_ms_p50"]
            row["speedup_b32"] = teacher_cost["latency_cpu_b32_ms_p50"] / cost["latency_cpu_b32_ms_p50"]
            row["meets_target"] = (row["f1_ratio"] >= TARGET["f1_ratio"] and row["params_ratio"] <= TARGET[
                "params_ratio"] and row["speedup_b1"] >= TARGET["speedup_b1"])


def plot(result: dict, path: Path) -> None:
    """Quality vs cost: test F1 (mean, bar = spread over seeds) against batch-1 CPU latency and parameters."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher = result["costs"].get("teacher")
    rows = [(key, row) for key, row in result["variants"].items() if row.get("cost")]
    if not teacher or not rows:
        return
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, cost_key, label in ((axes[0], "latency_cpu_b1_ms_p50", "CPU latency, batch 1, p50 (ms)"),
                                (axes[1], "params_total", "parameters (millions)")):
        scale = 1e-6 if cost_key == "params_total" else 1.0
        ax.scatter([teacher[cost_key] * scale], [result["teacher_test_f1"]], marker="*", s=200, color="black",
                   label="teacher")
        for key, row in rows:
            ax.errorbar(row["cost"][cost_key] * scale, row["f1_mean"], yerr=row["f1_sd"], fmt="o", capsize=3,
                        label=row["description"])
        ax.axhline(TARGET["f1_ratio"] * result["teacher_test_f1"], color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("test entity F1")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    figure.suptitle(f"{result['corpus']}: students vs teacher (dashed: {TARGET['f1_ratio']:.0%} of the teacher's F1)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: list[dict], budget: dict[str, str]) -> str:
    lines = [f"Target: >= {TARGET['f1_ratio']:.0%} of the teacher's test F1 with <= {TARGET['params_ratio']:.0%} of "
             f"its parameters and >= {TARGET['speedup_b1']:.0f}x its CPU speed at batch 1.",
             f"Student budget (all variants): {', '.join(f'{k}={v}' for k, v in budget.items())}.", ""]
    for result in results:
        teacher = result["costs"].get("teacher", {})
        lines += [f"### {result['corpus']}", "",
                  f"Teacher `{result['teacher']}`: test F1 {result['teacher_test_f1']:.4f}; domain tokenizers "
                  "(trim of the teacher's vocabulary from the train split): "
                  + ", ".join(f"{k.split('-')[1]} asked, {result['tokenizer_entries'].get(k.split('-')[1]) or 0:,.0f} "
                              f"entries built: `{v}`" for k, v in result["tokenizers"].items()) + ".", "",
                  "| model | test F1 mean ± sd | per seed | F1 vs teacher | params | vs teacher | size MB | "
                  "CPU b1 p50 ms | b1 speed-up | CPU b32 p50 ms | b32 speed-up | target |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
        if teacher:
            lines.append(f"| teacher (6 layers) | {result['teacher_test_f1']:.4f} | – | 100% | "
                         f"{teacher['params_total'] / 1e6:.2f}M | 100% | {teacher['model_size_mb']:.1f} | "
                         f"{teacher['latency_cpu_b1_ms_p50']:.1f} | 1.0x | {teacher['latency_cpu_b32_ms_p50']:.0f} | "
                         "1.0x | |")
        for key, row in result["variants"].items():
            seeds = ", ".join(f"{v:.3f}" for v in row["test_f1"].values())
            cost = row.get("cost")
            cells = ["–"] * 7
            if cost:
                cells = [f"{cost['params_total'] / 1e6:.2f}M", f"{row['params_ratio']:.0%}",
                         f"{cost['model_size_mb']:.1f}", f"{cost['latency_cpu_b1_ms_p50']:.1f}",
                         f"{row['speedup_b1']:.1f}x", f"{cost['latency_cpu_b32_ms_p50']:.0f}",
                         f"{row['speedup_b32']:.1f}x"]
            mark = "–" if "meets_target" not in row else "yes" if row["meets_target"] else "no"
            lines.append(f"| {row['description']} | {row['f1_mean']:.4f} ± {row['f1_sd']:.4f} | {seeds} | "
                         f"{row['f1_ratio']:.1%} | " + " | ".join(cells) + f" | {mark} |")
        if result.get("vocabulary_only_f1"):
            scores = ", ".join(f"{int(size) // 1000}k {f1:.4f} ({f1 / result['teacher_test_f1']:.1%})"
                               for size, f1 in result["vocabulary_only_f1"].items())
            lines += ["", "The teacher with only its vocabulary replaced (all 6 layers, no training), "
                          f"test F1: {scores}."]
        if teacher:
            lines += ["", f"Costs measured side by side in one process ({teacher.get('cpu_threads', 0):.0f} threads, "
                          "first 256 test sentences, max_length 256)."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--teacher", action="append", default=[], metavar="CORPUS=REF",
                        help="use this fine-tuned teacher for CORPUS instead of fine-tuning one (repeatable)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--epochs", default="6")
    parser.add_argument("--learning-rate", default="2e-4")
    parser.add_argument("--patience", default="2")
    parser.add_argument("--workers", type=int, default=1, help="runs trained at once (each gets 2/workers threads)")
    parser.add_argument("--collect-only", action="store_true", help="no training; tables from finished runs")
    parser.add_argument("--skip-costs", action="store_true", help="no resource measurement")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{RESULTS / 'distill.db'}")
    corpora = [c for c in args.corpora.split(",") if c]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    teachers = dict(item.split("=", 1) for item in args.teacher)
    budget = {"epochs": args.epochs, "learning_rate": args.learning_rate, "patience": args.patience}
    refs = {corpus: prepare_corpus(corpus, teachers.get(corpus), variants, reuse_only=args.collect_only)
            for corpus in corpora}
    if not args.collect_only:
        main_keys = [k for k in variants if k in DEFAULT_VARIANTS.split(",")]
        lever_keys = [k for k in variants if k not in main_keys]  # the main variants' rows first, levers after
        jobs = [(corpus, key, seed) for keys in (main_keys, lever_keys) for seed in seeds for corpus in corpora
                for key in keys]
        threads = max(1, 2 // args.workers) if args.workers > 1 else None

        def work(job: tuple[str, str, int]) -> str:
            corpus, key, seed = job
            stage, params = variant_params(key, corpus, refs[corpus], seed, budget)
            return mlflow_run(stage, f"distill-{corpus}", f"{key}-s{seed}", params, threads)

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for _ in pool.map(work, jobs):
                pass
    results = []
    for corpus in corpora:
        result = collect(corpus, refs[corpus], variants, seeds, budget)
        # one model per architecture (depth, vocabulary): variants that differ only in training share it
        models, architecture = {"teacher": refs[corpus]["teacher"]}, {}
        for key, row in result["variants"].items():
            shape = VARIANTS[key][2:4]
            architecture[key] = next((k for k in architecture if VARIANTS[k][2:4] == shape), key)
            if architecture[key] == key:
                models[key] = f"runs:/{next(iter(row['runs'].values()))}/model"
        costs = {} if args.skip_costs else measure_costs(corpus, models)
        result["costs"] = {key: costs[architecture.get(key, key)] for key in ["teacher", *architecture]
                           if architecture.get(key, key) in costs}
        result["vocabulary_only_f1"] = vocabulary_only(corpus, refs[corpus])
        summarise(result)
        plot(result, RESULTS / f"distill-{corpus}.png")
        results.append(result)
    (RESULTS / "distill.json").write_text(json.dumps(results, indent=2, default=str))
    table = markdown(results, budget)
    (RESULTS / "distill.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
