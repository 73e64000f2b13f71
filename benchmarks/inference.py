"""Inference benchmark: what serving a FiNER-ORD model costs in each runtime, against what a user deploys
without findistill (the fine-tuned teacher through ``transformers.pipeline``), in one process.

    export MLFLOW_TRACKING_URI=sqlite:////work/bench/mlflow.db
    .venv/bin/python benchmarks/inference.py --teacher runs:/<teacher>/model \\
        --student "3 layers, teacher tokenizer=runs:/<id>/model" \\
        --student "2 layers, domain vocabulary 16k=runs:/<id>/model"

Rows: (1) the teacher through ``pipeline("token-classification", aggregation_strategy="first")``,
PyTorch fp32; then the teacher and each student through findistill's pyfunc (``mlflow.pyfunc``,
saved and loaded as ``mlflow models serve`` loads it) in every runtime: PyTorch fp32, ONNX Runtime
fp32, ONNX Runtime dynamic int8 and PyTorch dynamic int8. The variants are written by the library
code of the ``quantize`` stage (``findistill.runtimes.variants.write_variant``).

Every row answers raw text: each test sentence's words joined by spaces. Entity F1 is scored on the
whole test split from the spans each row returns (a word is tagged when a span covers it), so it
measures the served path end to end. Latency: the first ``--sentences`` test sentences, one request
per sentence (batch 1) and 32 per request (batch 32), after warm-up, ``--threads`` threads for both
torch and ONNX Runtime, every row measured ``--rounds`` times in alternating order (median of the
rounds' p50s). Peak memory: the increase of this process's resident memory while the row loads and
runs (RSS after freeing the previous row as the baseline). Phase shares at batch 1 come from timing
wrappers around word splitting, tokenisation (``encode`` + ``collate_inputs``), the forward pass,
decoding (word pooling, labels, spans) and the rest (MLflow's pyfunc wrapper, DataFrame handling).

Output: ``benchmarks/results/inference.{json,md}``; the variant folders are kept under
``benchmarks/results/inference-variants/`` (ignored by git) and reused.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = REPO.parent / "shared" / "data"
RUNTIMES = ("pytorch", "onnx", "onnx-int8", "torch-int8")  # "pytorch": the model as trained
TARGET_SPEEDUP, TARGET_F1_DROP = 10.0, 0.01


def sentence_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the space-separated words of ``text``."""
    spans, start = [], 0
    for word in text.split(" "):
        spans.append((start, start + len(word)))
        start += len(word) + 1
    return spans


def spans_to_tags(text: str, spans: list[dict], entity_key: str) -> list[str]:
    """IOB2 tags of the space-separated words of ``text`` from predicted character spans."""
    words = sentence_words(text)
    tags = ["O"] * len(words)
    for span in sorted(spans, key=lambda s: s["start"]):
        covered = [i for i, (a, b) in enumerate(words) if a < span["end"] and b > span["start"]]
        for k, i in enumerate(covered):
            tags[i] = ("B-" if k == 0 else "I-") + span[entity_key]
    return tags


class Row:
    """One serving path: ``predict(texts) -> spans per text``, its F1 key, its folder on disk."""

    def __init__(self, name: str, model_name: str, runtime: str, folder: Path, load):
        self.name, self.model_name, self.runtime, self.folder, self._load = name, model_name, runtime, folder, load
        self.predict = None

    def load(self) -> None:
        self.predict, self.entity_key, self.module = self._load()

    def free(self) -> None:
        self.predict = self.module = None
        gc.collect()


def pipeline_row(model_name: str, folder: Path) -> Row:
    def load():
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        model = AutoModelForTokenClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="first",
                       device=-1)
        return (lambda texts: ner(texts, batch_size=len(texts)) if len(texts) > 1 else [ner(texts[0])]), \
            "entity_group", model

    return Row("transformers.pipeline, PyTorch fp32", model_name, "pipeline", folder, load)


def pyfunc_row(model_name: str, runtime: str, folder: Path, pyfunc_dir: Path, threads: int) -> Row:
    def load():
        import mlflow.pyfunc

        from findistill.tracking.pyfunc import NerPyfunc

        if not (pyfunc_dir / "MLmodel").is_file():
            mlflow.pyfunc.save_model(pyfunc_dir, python_model=NerPyfunc(), artifacts={"hf_model": str(folder)},
                                     model_config={"max_length": 256, "threads": threads})
        served = mlflow.pyfunc.load_model(str(pyfunc_dir))
        return (lambda texts: served.predict(pd.DataFrame({"text": texts}))), "entity", \
            served.unwrap_python_model().model

    label = {"pytorch": "PyTorch fp32", "onnx": "ONNX Runtime fp32", "onnx-int8": "ONNX Runtime int8",
             "torch-int8": "PyTorch int8"}[runtime]
    return Row(f"findistill pyfunc, {label}", model_name, runtime, folder, load)


def variant_folders(name: str, ref: str, out: Path) -> dict[str, Path]:
    """The model's folder and its variants (written once, reused)."""
    from findistill.costs.size import count_parameters
    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.runtimes.variants import write_variant
    from findistill.tracking.runs import localize_model

    source = Path(localize_model(ref))
    folders = {"pytorch": source}
    for variant in RUNTIMES[1:]:
        folder = out / name / variant
        if not (folder / "runtime.json").is_file():
            print(f"[inference] writing {variant} of {name}")
            model = load_token_classifier(str(source))
            write_variant(model, load_tokenizer(str(source)), variant, folder, source=ref,
                          parameters=count_parameters(model), per_channel=True)
        folders[variant] = folder
    return folders


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def latencies(predict, batches: list[list[str]], warmup: int = 5) -> list[float]:
    for batch in batches[:warmup]:
        predict(batch)
    times = []
    for batch in batches:
        start = time.perf_counter()
        predict(batch)
        times.append((time.perf_counter() - start) * 1000)
    return times


@contextmanager
def phase_timer(model_holder: dict):
    """Time word splitting, tokenisation, forward pass and decoding inside findistill's tag_texts."""
    import findistill.evaluation.predict as predict_module
    import findistill.models.words as words_module

    totals: dict[str, float] = defaultdict(float)

    def timed(module, name, phase):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[phase] += time.perf_counter() - start

        setattr(module, name, wrapper)
        return module, name, original

    patched = [
        timed(predict_module, "split_words", "word splitting"),
        timed(words_module, "encode", "tokenizer"),
        timed(words_module, "collate_inputs", "tokenizer"),
        timed(words_module, "pool_words", "decoding"),
        timed(predict_module, "decode", "decoding"),
        timed(predict_module, "spans_from_tags", "decoding"),
    ]
    model = model_holder.get("model")
    if model is not None:
        original_forward = model.forward

        def forward(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original_forward(*args, **kwargs)
            finally:
                totals["forward"] += time.perf_counter() - start

        model.forward = forward
    try:
        yield totals
    finally:
        for module, name, original in patched:
            setattr(module, name, original)
        if model is not None:
            del model.forward


def phase_shares(row: Row, texts: list[str]) -> dict[str, float]:
    """ms per request of each phase at batch 1 (the rest: everything around findistill's tagging)."""
    with phase_timer({"model": row.module}) as totals:
        start = time.perf_counter()
        for text in texts:
            row.predict([text])
        total = time.perf_counter() - start
    shares = {k: 1000 * v / len(texts) for k, v in totals.items()}
    shares["forward"] = shares.get("forward", 0.0)
    shares["other (MLflow wrapper, DataFrame)"] = 1000 * total / len(texts) - sum(shares.values())
    shares["total"] = 1000 * total / len(texts)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="the fine-tuned teacher (runs:/<id>/model or a folder)")
    parser.add_argument("--student", action="append", default=[], metavar="NAME=REF")
    parser.add_argument("--data", default=str(SHARED / "finer-ord"))
    parser.add_argument("--sentences", type=int, default=500, help="test sentences timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    from findistill.costs.size import model_size_mb
    from findistill.data.splits import load_ner_data
    from findistill.data.text import sentence_texts
    from findistill.evaluation.scoring import entity_scores

    test = load_ner_data(args.data).splits["test"]
    texts = list(sentence_texts(test))
    gold = [list(s.tags) for s in test]
    timed = texts[: args.sentences]
    b1 = [[t] for t in timed]
    b32 = [timed[i : i + 32] for i in range(0, len(timed) - 31, 32)]
    words_b32 = sum(len(t.split(" ")) for batch in b32 for t in batch)

    models = {"teacher": args.teacher, **dict(s.split("=", 1) for s in args.student)}
    out = RESULTS / "inference-variants"
    rows: list[Row] = []
    for name, ref in models.items():
        folders = variant_folders(name, ref, out)
        if name == "teacher":
            rows.append(pipeline_row(name, folders["pytorch"]))
        for runtime in RUNTIMES:
            rows.append(pyfunc_row(name, runtime, folders[runtime], out / name / f"pyfunc-{runtime}", args.threads))

    measured: dict[str, dict] = {f"{r.model_name} | {r.name}": defaultdict(list) for r in rows}
    for round_index in range(args.rounds):
        order = rows if round_index % 2 == 0 else rows[::-1]
        for row in order:
            key = f"{row.model_name} | {row.name}"
            gc.collect()
            baseline = rss_mb()
            peak = [baseline]
            row.load()
            if round_index == 0:  # F1 on the whole test split, from the spans of the served path
                predicted = []
                for i in range(0, len(texts), 32):
                    batch = texts[i : i + 32]
                    predicted += [spans_to_tags(t, s, row.entity_key) for t, s in zip(batch, row.predict(batch))]
                measured[key]["f1"] = entity_scores(gold, predicted)["f1"]
                measured[key]["phases"] = phase_shares(row, timed[:200]) if row.runtime != "pipeline" else {}
            measured[key]["b1"].append(latencies(row.predict, b1))
            peak.append(rss_mb())
            measured[key]["b32"].append(latencies(row.predict, b32, warmup=2))
            peak.append(rss_mb())
            measured[key]["rss"].append(max(peak) - baseline)
            row.free()
            print(f"[inference] round {round_index + 1}: {key}: b1 p50 {np.median(measured[key]['b1'][-1]):.2f} ms, "
                  f"F1 {measured[key]['f1']:.4f}", flush=True)

    table = []
    for row in rows:
        key = f"{row.model_name} | {row.name}"
        m = measured[key]
        table.append({
            "model": row.model_name, "path": row.name, "runtime": row.runtime, "f1": m["f1"],
            "b1_p50_ms": statistics.median(float(np.percentile(r, 50)) for r in m["b1"]),
            "b1_p95_ms": statistics.median(float(np.percentile(r, 95)) for r in m["b1"]),
            "b32_p50_ms": statistics.median(float(np.percentile(r, 50)) for r in m["b32"]),
            "words_per_s_b32": statistics.median(words_b32 / (sum(r) / 1000) for r in m["b32"]),
            "peak_rss_increase_mb": statistics.median(m["rss"]), "size_mb": model_size_mb(row.folder),
            "phases_b1_ms": m["phases"],
        })
    base = table[0]
    for entry in table:
        entry["speedup_b1"] = base["b1_p50_ms"] / entry["b1_p50_ms"]
        entry["speedup_b32"] = base["b32_p50_ms"] / entry["b32_p50_ms"]
    result = {"models": models, "data": args.data, "test_sentences": len(texts), "timed_sentences": len(timed),
              "threads": args.threads, "rounds": args.rounds, "rows": table}
    (RESULTS / "inference.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "inference.md").write_text(markdown(result, sys.argv[1:]))
    print((RESULTS / "inference.md").read_text())


def markdown(result: dict, argv: list[str]) -> str:
    rows = result["rows"]
    lines = [
        "# Serving cost on FiNER-ORD: runtimes and students against `transformers.pipeline`", "",
        f"Command: `.venv/bin/python benchmarks/inference.py {' '.join(argv)}`", "",
        f"One process, {result['threads']} threads (torch and ONNX Runtime), {result['timed_sentences']} test "
        f"sentences as raw text, batch 1 (one request per sentence) and batch 32, after warm-up; median of "
        f"{result['rounds']} rounds in alternating order. F1: strict entity F1 on all {result['test_sentences']} "
        "test sentences from the returned spans. Memory: increase of the process's resident memory while the row "
        "loads and runs. Speed-ups are over the first row.", "",
        "| model | serving path | entity F1 | b1 p50 ms | b1 p95 ms | b32 p50 ms | words/s (b32) | peak RSS + MB "
        "| size MB | b1 speed-up | b32 speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['path']} | {r['f1']:.4f} | {r['b1_p50_ms']:.2f} | {r['b1_p95_ms']:.2f} | "
            f"{r['b32_p50_ms']:.1f} | {r['words_per_s_b32']:,.0f} | {r['peak_rss_increase_mb']:.0f} | "
            f"{r['size_mb']:.1f} | {r['speedup_b1']:.1f}x | {r['speedup_b32']:.1f}x |")
    fp32 = {r["model"]: r["f1"] for r in rows if r["runtime"] == "pytorch"}
    kept = [r for r in rows if r["model"] != "teacher" and r["runtime"] != "pipeline"
            and fp32[r["model"]] - r["f1"] <= TARGET_F1_DROP]
    lines += ["", f"Target: the fastest student within {100 * TARGET_F1_DROP:.0f} F1 point of its fp32 self at least "
              f"{TARGET_SPEEDUP:.0f}x faster than row 1 at batch 1."]
    if kept:
        best = max(kept, key=lambda r: r["speedup_b1"])
        verdict = "met" if best["speedup_b1"] >= TARGET_SPEEDUP else "not met"
        lines.append(f"Fastest such student: {best['model']}, {best['path']}: {best['speedup_b1']:.1f}x at batch 1, "
                     f"{best['speedup_b32']:.1f}x at batch 32, F1 {best['f1']:.4f} ({verdict}).")
    lines += ["", "## Where a batch-1 request spends its time (ms)", "",
              "| model | serving path | word splitting | tokenizer | forward | decoding | other (MLflow wrapper, "
              "DataFrame) | total |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r["phases_b1_ms"]
        if p:
            cells = [p.get(k, 0.0) for k in ("word splitting", "tokenizer", "forward", "decoding",
                                             "other (MLflow wrapper, DataFrame)", "total")]
            lines.append(f"| {r['model']} | {r['path']} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
