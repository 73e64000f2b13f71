"""Regenerate MLproject from the stage configs (tests/test_config.py checks they agree): python scripts/gen_mlproject.py"""
import dataclasses
import typing
from pathlib import Path

from findistill.cli import STAGES
docs = {
 "prepare": "Read NER data (CoNLL/JSONL/HF dataset), normalise to IOB2, split; logs data/ (runs:/<id>/data) and dataset statistics.",
 "distill": "Distil a fine-tuned teacher into a student (fewer layers, same or domain tokenizer) word against word: KD/CE/hidden/attention losses, optional transfer set; logs per-epoch loss components, the student and its evaluation with resource metrics.",
 "finetune": "Fine-tune an encoder for NER (the teacher; with student_layers/tokenizer the no-KD student baseline); logs per-epoch curves, the model (runs:/<id>/model), entity F1 and resource metrics.",
 "adapt": "Masked-LM continued pre-training (DAPT, whole-word masking) of a teacher or student on domain text, or with teacher= general distillation on general_data; logs held-out MLM loss and pseudo-perplexity before/after and the adapted encoder (runs:/<id>/model).",
 "evaluate": "Entity-level P/R/F1 (seqeval, strict IOB2) of a model on a split, with resource metrics.",
 "main": "The whole study as child runs in the order a strategy names (finetune-distill, adapt-finetune-distill, distill-adapt-finetune, distill-adapt-distill): prepare -> analyze_tokenization -> train_tokenizer -> [adapt] -> finetune teacher -> distill/adapt student -> evaluate; finished stages with the same inputs and code are reused.",
 "analyze_tokenization": "Fertility, UNK rate, sequence lengths, per-entity-type fertility, vocabulary use/overlap of tokenizers over corpora (general vs financial); tables and plots.",
 "train_tokenizer": "Build a domain tokenizer (method train/trim/extend, vocab_size) from domain text; logs tokenizer/ (runs:/<id>/tokenizer) and its held-out analysis vs the teacher.",
}
REQUIRED = {("evaluate", "model"), ("distill", "teacher")}  # no default: MLflow makes them required
out = ["# findistill: one entry point per stage. Every parameter arrives as a string and is validated",
       "# into the stage's typed config (findistill/stages.py); tests/test_config.py keeps this file in sync.",
       "# Example: mlflow run . -e finetune -P data=../shared/data/sec-filings -P epochs=5 --env-manager local",
       "name: findistill", "", "python_env: python_env.yaml", "", "entry_points:"]
for name, (fn, cls) in STAGES.items():
    out += [f"  # {docs[name]}", f"  {name}:", "    parameters:"]
    hints = typing.get_type_hints(cls)
    args = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        typ = "float" if t in (int, float) else "string"
        if (name, f.name) in REQUIRED:
            out.append(f"      {f.name}: {{type: string}}")
        else:
            d = f.default
            d = str(d).lower() if isinstance(d, bool) else d
            d = '""' if d == "" else d
            out.append(f"      {f.name}: {{type: {typ}, default: {d}}}")
        args.append(f"--{f.name} {{{f.name}}}")
    out.append(f'    command: "python entrypoints/{name}.py ' + " ".join(args) + '"')
    out.append("")
open(Path(__file__).resolve().parents[1] / "MLproject", "w").write("\n".join(out))
