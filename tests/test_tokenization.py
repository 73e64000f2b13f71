"""Tokenization analysis on hand-built cases with known answers, domain text streaming, and the
three ways of building a domain tokenizer (train / trim / extend), with their errors."""

import gzip
import json

import pytest
from transformers import AutoTokenizer

from findistill import tokenization as tok
from findistill.config import ConfigError, parse_params
from findistill.data import DataError, Sentence, load_ner_data

from conftest import SPECIALS, wordpiece_tokenizer

FINANCE = [
    "The Borrower shall repay the Loans in full on the Maturity Date .",
    "Harbor Point Capital agreed to buy Lindqvist Freight AB for $ 1.2 billion .",
    "Quarterly revenue rose 12 % while EBITDA margins narrowed , the company said .",
    "The Lenders may declare all outstanding Obligations immediately due and payable .",
    "Shares of Calloway Foods Inc. fell 3 % on the Nasdaq after the earnings release .",
] * 4


TINY = ["the", "bank", "fin", "##ance", "##s", "x", "##y"]
SENTENCES = [Sentence(["The", "finances", "bank"], ["O", "B-ORG", "I-ORG"]),
             Sentence(["xyz", "bank"], ["B-PER", "O"])]


# ------------------------------------------------------------------------------------------ analysis


def test_fertility_and_friends_on_a_hand_built_case():
    tokenizer = wordpiece_tokenizer(TINY)
    seg = tok.segment(tokenizer, SENTENCES)
    # the | fin ##ance ##s | bank ; xyz -> [UNK] (no ##z) | bank
    assert seg.pieces == [[["the"], ["fin", "##ance", "##s"], ["bank"]], [["[UNK]"], ["bank"]]]
    stats = tok.segmentation_stats(SENTENCES, seg, min_count=1)
    assert stats["words"] == 5 and stats["subtokens"] == 7
    assert stats["fertility_mean"] == pytest.approx(7 / 5)
    assert stats["split_share"] == pytest.approx(1 / 5)
    assert stats["fertility_hist"]["1"] == pytest.approx(4 / 5) and stats["fertility_hist"]["3"] == pytest.approx(1 / 5)
    assert stats["unk_rate"] == pytest.approx(1 / 7) and stats["unk_word_rate"] == pytest.approx(1 / 5)
    assert stats["seq_lengths"] == [7, 4]  # with [CLS] and [SEP]
    assert stats["seq_len_mean"] == pytest.approx(5.5) and stats["seq_len_p95"] == pytest.approx(4 + 0.95 * 3)
    assert stats["seq_over_128"] == 0.0
    assert stats["fertility_entity"] == pytest.approx(5 / 3) and stats["fertility_non_entity"] == pytest.approx(1.0)
    assert stats["fertility_by_type"] == {"ORG": pytest.approx(2.0), "PER": pytest.approx(1.0)}
    assert stats["vocab_used"] == 6 and stats["vocab_size"] == len(SPECIALS) + len(TINY)
    assert stats["fragmented_words"] == [
        {"word": "finances", "count": 1, "pieces": ["fin", "##ance", "##s"], "extra_tokens": 2}]
    json.dumps(stats)  # loggable as is


def test_plain_word_lists_have_no_entity_statistics():
    stats = tok.tokenization_stats(wordpiece_tokenizer(TINY), [s.tokens for s in SENTENCES])
    assert stats["fertility_mean"] == pytest.approx(7 / 5) and "fertility_entity" not in stats


def test_same_pieces_and_vocabulary_overlap():
    a = wordpiece_tokenizer(TINY)
    b = wordpiece_tokenizer(TINY + ["finances"])  # splits "finances" whole, the rest as a does
    assert tok.same_pieces_share(tok.segment(a, SENTENCES), tok.segment(b, SENTENCES)) == pytest.approx(4 / 5)
    overlap = tok.vocab_overlap(["a", "b", "c"], ["b", "c", "d", "e"])
    assert overlap == {"shared": 2, "size_a": 3, "size_b": 4, "share_of_a": pytest.approx(2 / 3),
                       "share_of_b": 0.5, "jaccard": pytest.approx(2 / 5)}
    assert tok.embedding_params(8000, 384) == 3_072_000


def test_markdown_table_prints_missing_values_as_dashes():
    table = tok.format_markdown_table([{"a": 1.23456, "b": None}], [("a", "A", "{:.2f}"), ("b", "B", "{}")])
    assert table.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | - |"]


def test_plots_are_figures_with_one_panel_per_tokenizer():
    tokenizer = wordpiece_tokenizer(TINY)
    stats = tok.tokenization_stats(tokenizer, SENTENCES)
    results = {"tiny": {"a": stats, "b": stats}, "again": {"a": stats, "b": stats}}
    for plot in (tok.plot_fertility_hist, tok.plot_seq_lengths):
        figure = plot(results, {"a": "general"})
        assert len(figure.axes) == 2 and "tiny" in figure.axes[0].get_title()
    assert len(tok.plot_fertility_summary(results).axes) == 2


# ------------------------------------------------------------------------------------------ domain text


def test_text_sources_are_streamed(tmp_path):
    (tmp_path / "a.txt").write_text("First line .\n\n  \nSecond line\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("zipped text\n")
    (tmp_path / "c.jsonl").write_text('{"text": "from json"}\n{"tokens": ["pre", "split"], "tags": ["O", "O"]}\n')
    (tmp_path / "test.txt").write_text("held-out text must not be read\n")
    (tmp_path / "README.md").write_text("not data\n")
    texts = tok.iter_text(tmp_path)
    assert iter(texts) is texts  # a generator, not a list
    assert list(texts) == ["First line .", "Second line", "zipped text", "from json", "pre split"]
    assert list(tok.iter_text(tmp_path / "a.txt", max_lines=1)) == ["First line ."]


def test_parquet_and_saved_dataset_text(tmp_path):
    import datasets

    frame = datasets.Dataset.from_dict({"body": ["one text", "two text"], "id": [1, 2]})
    frame.to_parquet(str(tmp_path / "corpus.parquet"))
    assert list(tok.iter_text(tmp_path / "corpus.parquet", text_field="body")) == ["one text", "two text"]
    datasets.DatasetDict({"train": frame, "test": frame.select([0])}).save_to_disk(str(tmp_path / "saved"))
    assert list(tok.iter_text(tmp_path / "saved", text_field="body")) == ["one text", "two text"]
    with pytest.raises(DataError, match="no column 'text'"):
        list(tok.iter_text(tmp_path / "corpus.parquet"))


def test_bad_text_sources_name_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError) as err:
        list(tok.iter_text(missing))
    assert str(missing) in str(err.value) and "no such file" in str(err.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="contains no text") as err:
        list(tok.iter_text(empty))
    assert str(empty) in str(err.value)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: no text field 'text'"):
        list(tok.iter_text(bad))


def test_words_are_counted_as_the_tokenizer_sees_them(packaged_tokenizer):
    counts = tok.count_words(packaged_tokenizer, ["The U.S. Borrower", "the borrower"])
    assert counts == {"the": 2, "borrower": 2, "u": 1, ".": 2, "s": 1}


# ------------------------------------------------------------------------------------------ building


@pytest.mark.parametrize("model_type", ["wordpiece", "bpe", "unigram"])
def test_trained_tokenizer_round_trips_through_autotokenizer(packaged_tokenizer, tmp_path, model_type):
    built = tok.train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 200, model_type=model_type, min_frequency=1)
    tokenizer = built.tokenizer
    assert len(tokenizer) <= 200 and built.info["vocab_size"] == len(tokenizer)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "The BORROWER shall repay the revenue ."
    assert loaded.is_fast and loaded(text).input_ids == tokenizer(text).input_ids
    ids = loaded(text).input_ids
    assert loaded.convert_ids_to_tokens([ids[0], ids[-1]]) == ["[CLS]", "[SEP]"]  # teacher's post-processor
    assert [loaded.convert_ids_to_tokens(i) for i in range(5)] == SPECIALS  # teacher's specials, in its id order
    assert loaded.tokenize("BORROWER") == loaded.tokenize("borrower")  # teacher's lower-casing kept
    assert loaded.pad_token == "[PAD]" and loaded.mask_token == "[MASK]" and loaded.model_max_length == 512
    assert tok.load_tokenizer_any(str(tmp_path))(text).input_ids == ids


def test_trim_keeps_the_teacher_segmentation_of_covered_words(packaged_tokenizer):
    counts = tok.count_words(packaged_tokenizer, FINANCE)
    built = tok.trim_vocabulary(packaged_tokenizer, counts, 2100)
    trimmed = built.tokenizer
    vocab = trimmed.get_vocab()
    assert built.info["covered_word_share"] == 1.0
    # every piece the text uses is kept; the room left is filled with the teacher's lowest-id pieces
    assert len(trimmed) == 2100 and built.info["general_pieces_added"] == 2100 - 1999 - built.info[
        "frequent_pieces_kept"] > 0
    assert "the" in vocab and not any(p.startswith("[unused") for p in vocab)
    assert {"a", "##a", "z", "##z", "[CLS]"} <= set(vocab)  # every single character, so any word tokenizes
    for text in FINANCE[:5]:
        assert trimmed.tokenize(text) == packaged_tokenizer.tokenize(text)
    assert trimmed.tokenize("zebra")  # not in the text: still tokenizes, from characters, no UNK
    assert "[UNK]" not in trimmed.tokenize("zebra quokka")
    order = [packaged_tokenizer.convert_tokens_to_ids(t) for t in trimmed.convert_ids_to_tokens(range(len(trimmed)))]
    assert order == sorted(order)  # the teacher's order is kept


def test_extend_adds_whole_words_after_the_teacher_ids(packaged_tokenizer):
    counts = tok.count_words(packaged_tokenizer, FINANCE)
    assert len(packaged_tokenizer.tokenize("Lindqvist")) > 1
    built = tok.extend_vocabulary(packaged_tokenizer, counts, len(packaged_tokenizer) + 3, min_frequency=2)
    extended = built.tokenizer
    assert len(extended) == len(packaged_tokenizer) + 3 and built.info["added_words"] == 3
    teacher_vocab = packaged_tokenizer.get_vocab()
    extended_vocab = extended.get_vocab()
    assert all(extended_vocab[t] == i for t, i in teacher_vocab.items())  # teacher ids unchanged
    added = extended.convert_ids_to_tokens(range(len(packaged_tokenizer), len(extended)))
    assert built.info["first_added"] == added
    for word in added:
        assert extended.tokenize(word) == [word]


def test_build_reads_a_fresh_stream_per_pass(packaged_tokenizer):
    calls = []

    def texts():
        calls.append(1)
        return iter(FINANCE)

    built = tok.build_tokenizer("train", packaged_tokenizer, texts, 300, min_frequency=1)
    assert len(calls) == 2 and built.info["text_words"] > 0 and built.info["teacher_pieces_used"] > 0


def test_bad_builds_name_the_parameter(packaged_tokenizer):
    with pytest.raises(DataError, match="domain text is empty"):
        tok.build_tokenizer("train", packaged_tokenizer, lambda: iter([]), 8000)
    with pytest.raises(ConfigError, match=r"parameter 'vocab_size': expected at least \d+ for this text"):
        tok.train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 20)
    with pytest.raises(ConfigError, match=r"parameter 'vocab_size': expected at least 1999 for trim"):
        tok.trim_vocabulary(packaged_tokenizer, tok.count_words(packaged_tokenizer, FINANCE), 1000)
    with pytest.raises(ConfigError, match=r"parameter 'vocab_size': for extend expected more than the teacher's 30522"):
        tok.extend_vocabulary(packaged_tokenizer, tok.count_words(packaged_tokenizer, FINANCE), 8000)
    with pytest.raises(ConfigError, match="parameter 'method'"):
        tok.build_tokenizer("chop", packaged_tokenizer, lambda: iter(FINANCE), 8000)
    with pytest.raises(ConfigError, match="parameter 'model_type'"):
        tok.train_new_tokenizer(packaged_tokenizer, iter(FINANCE), 8000, model_type="sentencepiece")


def test_stage_configs_validate_their_parameters():
    from findistill.tokenization_stages import AnalyzeTokenizationConfig, TrainTokenizerConfig

    with pytest.raises(ConfigError, match="parameter 'text_data'"):
        parse_params(TrainTokenizerConfig, {"use_train_split": "false"})
    with pytest.raises(ConfigError, match="parameter 'method'"):
        parse_params(TrainTokenizerConfig, {"method": "chop"})
    with pytest.raises(ConfigError, match="parameter 'vocab_size'"):
        parse_params(TrainTokenizerConfig, {"vocab_size": "1"})
    with pytest.raises(ConfigError, match="parameter 'split'"):
        parse_params(AnalyzeTokenizationConfig, {"split": "dev"})
    with pytest.raises(ConfigError, match="parameter 'tokenizers'"):
        parse_params(AnalyzeTokenizationConfig, {"tokenizers": " , "})
    assert parse_params(TrainTokenizerConfig, {"vocab_size": "4000.0"}).vocab_size == 4000


# ------------------------------------------------------------------------------------------ stages


@pytest.mark.integration  # about 10-15 s on 2 busy cores (two stages, five plots)
def test_train_then_analyze_through_mlflow(mlflow_store, tmp_path):
    """train_tokenizer logs runs:/<id>/tokenizer; analyze_tokenization reads it back beside the teacher."""
    import mlflow

    from findistill import tracking
    from findistill.tokenization_stages import (
        AnalyzeTokenizationConfig,
        TrainTokenizerConfig,
        analyze_tokenization,
        train_tokenizer,
    )

    text = tmp_path / "domain.txt"
    text.write_text("\n".join(FINANCE) + "\n", encoding="utf-8")
    trained = train_tokenizer(TrainTokenizerConfig(method="trim", vocab_size=2500, text_data=str(text)))
    run = mlflow.get_run(trained)
    assert run.data.tags["findistill.tokenizer_name"].startswith("trim-")
    assert run.data.metrics["heldout_same_pieces_as_teacher"] <= 1.0
    assert run.data.metrics["embedding_params"] == run.data.metrics["vocab_size"] * 384
    folder = tracking.localize(f"runs:/{trained}/tokenizer")
    assert len(AutoTokenizer.from_pretrained(folder)) == run.data.metrics["vocab_size"]

    analysed = analyze_tokenization(AnalyzeTokenizationConfig(
        tokenizers=f"packaged:all-MiniLM-L6-v2,runs:/{trained}/tokenizer", corpora="sample", max_sentences=40))
    metrics = mlflow.get_run(analysed).data.metrics
    name = run.data.tags["findistill.tokenizer_name"].replace(".", "_")
    assert metrics["same_pieces.sample.teacher"] == 1.0
    assert metrics[f"fertility_mean.sample.{name}"] >= metrics["fertility_mean.sample.teacher"] > 1.0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(analysed, "plots")}
    assert artifacts == {"plots/fertility_hist.png", "plots/fertility_summary.png", "plots/seq_len_hist.png"}
    summary = mlflow.artifacts.load_dict(f"runs:/{analysed}/tokenization/summary.json")
    assert set(summary["results"]) == {"teacher", name}


def test_domain_text_never_comes_from_the_test_split(mlflow_store, packaged_tokenizer):
    """extend with min_frequency=1 adds words seen once: none of them may be a word only the test split has."""
    import mlflow

    from findistill.tokenization_stages import TrainTokenizerConfig, train_tokenizer

    run_id = train_tokenizer(TrainTokenizerConfig(method="extend", vocab_size=30522 + 200, min_frequency=1))
    added = mlflow.artifacts.load_dict(f"runs:/{run_id}/tokenizer_report.json")["build"]["first_added"]
    data = load_ner_data("sample")
    words = {split: set(tok.count_words(packaged_tokenizer, tok.sentence_texts(data.splits[split])))
             for split in ("train", "test")}
    assert added and set(added) <= words["train"]
    assert words["test"] - words["train"]  # the check above could fail
