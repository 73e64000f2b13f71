"""``train_tokenizer``: Build a domain tokenizer (method train/trim/extend, vocab_size) from domain
text; logs tokenizer/ (runs:/<id>/tokenizer) and its held-out analysis vs the teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import mlflow

from findistill.config import require
from findistill.data.text import iter_text, sentence_texts
from findistill.models.loading import DEFAULT_TEACHER, load_tokenizer, resolve_model_path
from findistill.stages.common import (
    DataParams,
    load_stage_data,
    load_tokenizer_ref,
    print_tracking_location,
    scalar_row,
)
from findistill.tracking.runs import (
    describe_run,
    is_mlflow_uri,
    localize,
    localize_model,
    log_artifacts,
    log_json,
    log_metrics,
    log_text,
    scratch_dir,
    stage_run,
)
from findistill.vocab.analysis import (
    embedding_params,
    format_markdown_table,
    same_pieces_share,
    segment,
    segmentation_stats,
    vocab_overlap,
    word_normaliser,
)
from findistill.vocab.build import BUILD_METHODS, MODEL_TYPES, build_tokenizer
from findistill.vocab.plots import plot_fertility_hist, plot_seq_lengths


@dataclass
class Config(DataParams):
    """``train_tokenizer``: build a domain tokenizer (``method`` train / trim / extend) of ``vocab_size`` entries.

    Domain text: the train split of ``data`` (``use_train_split``) and/or ``text_data`` (a text,
    JSONL or parquet file, a folder of them, a save_to_disk dataset; ``none`` for no such corpus),
    streamed. Never the test split; the validation split of ``data`` is the held-out text on which
    the tokenizer is compared with the teacher's. ``vocab_size`` is the size of the result (for
    ``extend`` it must exceed the teacher's 30,522). ``model_type`` (wordpiece, bpe, unigram) and
    ``min_frequency`` apply to ``train``; ``min_frequency`` also to the words ``extend`` adds.
    """

    method: str = "train"
    vocab_size: int = 8000
    model_type: str = "wordpiece"
    min_frequency: int = 2
    teacher: str = DEFAULT_TEACHER
    use_train_split: bool = True
    text_data: str = "none"
    text_field: str = "text"
    max_text_lines: int = 0
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.method in BUILD_METHODS, "method", f"one of {', '.join(BUILD_METHODS)}", self.method)
        require(self.model_type in MODEL_TYPES, "model_type", f"one of {', '.join(MODEL_TYPES)}",
                self.model_type)
        require(self.vocab_size >= 2, "vocab_size", "a vocabulary size (entries, special tokens included)",
                self.vocab_size)
        require(self.min_frequency >= 1, "min_frequency", "an integer >= 1", self.min_frequency)
        require(self.max_text_lines >= 0, "max_text_lines", "0 (all) or a positive count", self.max_text_lines)
        require(bool(self.teacher.strip()), "teacher", "a tokenizer/model reference", self.teacher)
        require(bool(self.text_data.strip()), "text_data", "'none' or a text corpus (file, folder, dataset)",
                self.text_data)
        require(self.use_train_split or self.text_data != "none", "text_data",
                "a text corpus when use_train_split is false (there is no domain text otherwise)", self.text_data)


def _size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n / 1000:.1f}k"


def _hidden_size(ref: str) -> int | None:
    """The teacher model's hidden size (for embedding parameter counts), or None for a tokenizer-only ref."""
    from transformers import AutoConfig

    try:
        path = localize_model(ref) if is_mlflow_uri(ref) else resolve_model_path(ref)
        return int(AutoConfig.from_pretrained(path).hidden_size)
    except Exception:  # a tokenizer-only folder or an unreachable id: the counts are left out
        return None


_HELDOUT_KEYS = ("fertility_mean", "split_share", "unk_rate", "seq_len_mean", "seq_len_p95", "seq_over_128",
                 "vocab_used")


def run(config: Config) -> str:
    """Build the tokenizer, log it as ``tokenizer/`` (``runs:/<id>/tokenizer``), its build info and its
    analysis against the teacher's on the validation split (``tokenizer_report.{json,md}``, plots)."""
    data = load_stage_data(config)
    teacher = load_tokenizer_ref(config.teacher, config.trust_remote_code)
    if config.text_data != "none":
        text_source = localize(config.text_data)
        next(iter_text(text_source, text_field=config.text_field), None)  # a bad path fails here, before the run

    def texts():
        train_texts = sentence_texts(data.splits["train"]) if config.use_train_split else iter(())
        extra = (iter_text(text_source, text_field=config.text_field, max_lines=config.max_text_lines)
                 if config.text_data != "none" else iter(()))
        return chain(train_texts, extra)

    built = build_tokenizer(config.method, teacher, texts, config.vocab_size, model_type=config.model_type,
                                min_frequency=config.min_frequency)
    name = (f"{config.method}-{config.model_type}-{_size_label(len(built.tokenizer))}" if config.method == "train"
            else f"{config.method}-{_size_label(len(built.tokenizer))}")
    with stage_run("train_tokenizer", config, run_name=f"train_tokenizer {name}") as run:
        with scratch_dir("tokenizer") as tmp:
            folder = Path(tmp) / "tokenizer"
            built.tokenizer.save_pretrained(folder)
            new = load_tokenizer(str(folder))  # analyse what was saved, as users will load it
            log_artifacts(folder, "tokenizer")
        heldout = data.splits["validation"]
        seg_new, seg_teacher = segment(new, heldout), segment(teacher, heldout)
        stats = {
            name: segmentation_stats(heldout, seg_new, normalize=word_normaliser(new)),
            "teacher": segmentation_stats(heldout, seg_teacher, normalize=word_normaliser(teacher)),
        }
        stats[name]["same_pieces"] = same_pieces_share(seg_new, seg_teacher)
        stats["teacher"]["same_pieces"] = 1.0
        hidden = _hidden_size(config.teacher)
        overlap = vocab_overlap(new.get_vocab(), teacher.get_vocab())
        metrics = {k: v for k, v in built.info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and k not in ("min_frequency", "requested_vocab_size")}  # those are parameters
        metrics.update(vocab_size=len(new), teacher_vocab_size=len(teacher),
                       vocab_shared_with_teacher=overlap["shared"],
                       heldout_same_pieces_as_teacher=stats[name]["same_pieces"])
        if hidden:
            metrics.update(embedding_params=embedding_params(len(new), hidden),
                           teacher_embedding_params=embedding_params(len(teacher), hidden))
        for key in _HELDOUT_KEYS:
            metrics[f"heldout_{key}"] = stats[name][key]
            metrics[f"teacher_heldout_{key}"] = stats["teacher"][key]
        log_metrics(metrics)
        uri = f"runs:/{run.info.run_id}/tokenizer"
        mlflow.set_tags({"findistill.tokenizer_uri": uri, "findistill.tokenizer_name": name})
        describe_run(f"Built the {config.method} tokenizer {name} ({len(new):,} entries) on {data.name}: "
                     f"{stats[name]['fertility_mean']:.3f} sub-tokens per held-out word against the teacher's "
                     f"{stats['teacher']['fertility_mean']:.3f}.")
        rows = [{"tokenizer": n, "vocab": len(t), "embedding_params": embedding_params(len(t), hidden) if hidden
                 else None, **scalar_row(stats[n])} for n, t in ((name, new), ("teacher", teacher))]
        report = (f"## {name} vs the teacher on held-out text (validation split, {len(heldout)} sentences)\n\n"
                  + format_markdown_table(rows, [
                      ("tokenizer", "tokenizer", "{}"), ("vocab", "vocab", "{:,}"),
                      ("embedding_params", "embedding params", "{:,}"), ("seq_len_mean", "tokens/sentence", "{:.2f}"),
                      ("fertility_mean", "sub-tokens/word", "{:.3f}"), ("split_share", "words split 2+", "{:.1%}"),
                      ("same_pieces", "same pieces as teacher", "{:.1%}"), ("unk_rate", "UNK", "{:.2%}"),
                      ("seq_over_128", ">128", "{:.1%}")]))
        log_json({"name": name, "uri": uri, "build": built.info, "data_files": data.files,
                           "overlap_with_teacher": overlap,
                           "heldout": {n: {k: v for k, v in s.items() if k != "seq_lengths"}
                                       for n, s in stats.items()}},
                          "tokenizer_report.json")
        log_text(report, "tokenizer_report.md")
        results = {"held-out validation split": stats}  # one panel, the two tokenizers side by side
        mlflow.log_figure(plot_fertility_hist(results), "plots/heldout_fertility_hist.png")
        mlflow.log_figure(plot_seq_lengths(results), "plots/heldout_seq_len_hist.png")
        for note in data.notes:
            print(f"note: {note}")
        print(f"{report}\nbuild: {json.dumps({k: v for k, v in built.info.items() if k != 'first_added'})}\n"
              f"tokenizer URI: {uri}")
        print_tracking_location()
        return run.info.run_id
