"""Which kernel settings change a training's numbers: the same computation under each setting, in fresh processes.

    .venv/bin/python benchmarks/numerics.py --data ../shared/data/finer-ord      # about 5 min on 2 cores

Each setting runs in its own process the three computations a distilled student's numbers pass through:
the truncated SVD of the teacher's word embeddings (LAPACK, from oneMKL), the teacher's logits on 32
training sentences (torch's own kernels and oneMKL's/oneDNN's matrix products), and 4 steps of
fine-tuning the teacher on them (forward, backward, AdamW). Each result is compared with the first
process under torch's native settings: ``identical`` bit for bit, else the largest absolute difference.
The settings are the variables that choose the CPU kernels: ``ATEN_CPU_CAPABILITY`` (torch's vectorised
kernels: ``avx2``, ``default``...), ``MKL_CBWR`` (oneMKL's conditional numerical reproducibility: the same
code path on every CPU that has the named instruction set) and ``ONEDNN_MAX_CPU_ISA`` (oneDNN's).
The native setting runs twice to show that one process repeats another; so does the portable one (all
three at AVX2): the setting for two x86 machines that should compute alike (oneMKL documents the same
results on any CPU with the named instruction set; torch's and oneDNN's kernels at one instruction set
are the same code). The JSON keeps the SHA-256 of each setting's three results and its losses, so that
``--against`` an earlier JSON, from another machine, says setting by setting whether the two machines
computed alike, bit for bit (a JSON without digests compares by its losses alone). The timings (in the
JSON) are only indicative: the processes run one after another, on whatever else the machine is doing.
Writes ``benchmarks/results/numerics.{json,md}`` (``--out``).

    .venv/bin/python benchmarks/numerics.py --against other-machine/numerics.json --out /tmp/numerics
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PORTABLE = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: name -> the variables set (on top of an environment where none of them is set)
SETTINGS = {
    "native": {},
    "native, again": {},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "portable (all three at AVX2)": PORTABLE,
    "portable, again": PORTABLE,
}
STEPS, SENTENCES, BATCH, RANK = 4, 32, 8, 48
RESULTS_COMPARED = ("svd", "logits", "weights")


def work(teacher: str, data: str, out: Path) -> dict:
    """The three computations, in this process; arrays saved under ``out``, timings and tags returned."""
    import torch
    from transformers import DataCollatorForTokenClassification, set_seed

    from findistill.data.splits import load_ner_data
    from findistill.models.factorised import svd_factors
    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.tracking.environment import environment_tags
    from findistill.tracking.runs import localize_model
    from findistill.training.trainer import encode_split

    corpus = load_ner_data(data)
    sentences = corpus.splits["train"][:SENTENCES]
    folder = localize_model(teacher)
    tokenizer = load_tokenizer(folder)
    set_seed(0)  # the classifier head is drawn here, the same in every process
    model = load_token_classifier(folder, corpus.labels)
    started = time.perf_counter()
    a, b, _ = svd_factors(model.get_input_embeddings().weight, RANK)
    svd_seconds = time.perf_counter() - started
    features = [c.features for c in encode_split(tokenizer, sentences, corpus.labels, 128)]
    collate = DataCollatorForTokenClassification(tokenizer)
    batches = [collate(features[i:i + BATCH]) for i in range(0, len(features), BATCH)]
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(**batch).logits.flatten(0, 1) for batch in batches])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    started, losses = time.perf_counter(), []
    for step in range(STEPS):
        loss = model(**batches[step % len(batches)]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    train_seconds = time.perf_counter() - started
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"svd": torch.cat([a.flatten(), b.flatten()]), "logits": logits, "weights": weights}, out)
    return {"svd_seconds": svd_seconds, "train_seconds": train_seconds, "losses": losses,
            "environment": environment_tags()}


def difference(x, y) -> float:  # noqa: ANN001 - tensors
    """0.0 when bit for bit equal, else the largest absolute difference (never 0.0 for unequal tensors)."""
    import torch

    if torch.equal(x, y):
        return 0.0
    return max(float((x - y).abs().max()), float(torch.finfo(x.dtype).tiny))


def digest(x) -> str:  # noqa: ANN001 - tensors
    """The SHA-256 of a tensor's bytes: equal on two machines when they computed it bit for bit alike."""
    return hashlib.sha256(x.detach().contiguous().numpy().tobytes()).hexdigest()


def against(rows: dict, earlier: dict) -> dict[str, str]:
    """Setting by setting, this machine's results against ``earlier`` (a numerics JSON from elsewhere):
    ``identical`` (every digest equal), ``differs: svd, logits`` (the results whose digests differ),
    ``same losses`` / ``other losses`` when ``earlier`` has no digests; settings it lacks are left out."""
    verdicts = {}
    for name, row in rows.items():
        old = earlier["rows"].get(name)
        if old is None:
            continue
        if "sha256" in old:
            differ = [k for k in RESULTS_COMPARED if row["sha256"][k] != old["sha256"].get(k)]
            verdicts[name] = "identical" if not differ else "differs: " + ", ".join(differ)
        else:
            verdicts[name] = "same losses" if row["losses"] == old["losses"] else "other losses"
    return verdicts


def markdown(result: dict) -> str:
    lines = ["# Kernel settings and a training's numbers", "",
             f"Machine: {result['cpu_model']} (torch picks {result['native_capability']} kernels), torch "
             f"{result['torch']}, {result['blas']}, {result.get('platform', '?')}. Teacher `{result['teacher']}`, "
             f"{SENTENCES} training sentences of `{result['data']}`. Each setting ran in a fresh process; each "
             "column compares its result with the first native process: `identical` bit for bit, else the largest "
             "absolute difference. Training: "
             f"{STEPS} AdamW steps (lr 1e-4, batches of {BATCH}) from the same weights.", "",
             "| setting | torch kernels | SVD factors (rank 48) | teacher logits | weights after training | "
             "last loss | an earlier process with the same setting |", "|---|---|---|---|---|---:|---|"]
    reference = result.get("against")
    if reference:
        lines[2] += (f" The last column compares each setting with the same setting run on {reference['machine']} "
                     f"(`{reference['path']}`): `identical` when the SHA-256 of all three results agree; `same "
                     "losses` where that run kept only its losses (the four training losses equal as floats).")
        lines[4] += " the reference machine |"
        lines[5] += "---|"
    for name, row in result["rows"].items():
        cells = ["identical" if row[k] == 0 else f"{row[k]:.1e}" for k in ("svd", "logits", "weights")]
        repeat = row.get("repeat")
        repeat = "–" if repeat is None else "identical in all three" if repeat == 0 else f"differs ({repeat:.1e})"
        line = f"| {name} | {row['capability']} | {' | '.join(cells)} | {row['losses'][-1]:.6f} | {repeat} |"
        if reference:
            line += f" {reference['verdicts'].get(name, '–')} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="packaged:all-MiniLM-L6-v2", help="a model folder or runs:/ URI")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "finer-ord"))
    parser.add_argument("--out", default=str(RESULTS / "numerics"), help="path without suffix (.json and .md)")
    parser.add_argument("--against", default="", help="a numerics JSON from another machine to compare with")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the file a worker process saves its arrays to
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(work(args.teacher, args.data, Path(args.worker))))
        return
    import torch

    earlier = None
    if args.against:
        try:
            earlier = json.loads(Path(args.against).read_text())
        except (OSError, ValueError) as exc:
            sys.exit(f"--against {args.against}: not a numerics JSON ({exc})")
        if not isinstance(earlier, dict) or not isinstance(earlier.get("rows"), dict):
            sys.exit(f"--against {args.against}: not a numerics JSON (no 'rows')")
    clean = {k: v for k, v in os.environ.items() if k not in PORTABLE}
    rows, arrays = {}, {}
    with tempfile.TemporaryDirectory(prefix="numerics-") as tmp:
        for i, (name, variables) in enumerate(SETTINGS.items()):
            path = Path(tmp) / f"{i}.pt"
            print(f"[{i + 1}/{len(SETTINGS)}] {name}", flush=True)
            done = subprocess.run([sys.executable, __file__, "--worker", str(path), "--teacher", args.teacher,
                                   "--data", args.data], env={**clean, **variables}, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"the worker for {name!r} failed:\n{done.stderr[-3000:]}")
            rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
            arrays[name] = torch.load(path)
    reference = arrays["native"]
    for name, row in rows.items():
        row.update({k: difference(arrays[name][k], reference[k]) for k in RESULTS_COMPARED})
        row["sha256"] = {k: digest(arrays[name][k]) for k in RESULTS_COMPARED}
        first = next((e for e in rows if e != name and SETTINGS[e] == SETTINGS[name]), name)
        if first != name and list(rows).index(first) < list(rows).index(name):
            row["repeat"] = max(difference(arrays[name][k], arrays[first][k]) for k in RESULTS_COMPARED)
        row["capability"] = row["environment"].get("env.cpu_capability", "?")
    env = rows["native"]["environment"]
    result = {"teacher": args.teacher, "data": args.data, "cpu_model": env.get("env.cpu_model"),
              "native_capability": env.get("env.cpu_capability"), "torch": env.get("env.torch"),
              "blas": env.get("env.blas"), "platform": env.get("env.platform"), "rows": rows}
    if earlier is not None:
        platform = earlier["rows"].get("native", {}).get("environment", {}).get("env.platform", "?")
        result["against"] = {"path": args.against, "machine": f"{earlier.get('cpu_model')} "
                             f"({earlier.get('native_capability')}, {earlier.get('blas')}, {platform})",
                             "verdicts": against(rows, earlier)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
