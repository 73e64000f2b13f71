"""Tests for findistill.data: readers, schemes, split rules, the shared corpora, errors, stats."""

from __future__ import annotations

import json

import pytest
from conftest import write

from findistill.data.corpus import SPLITS, DataError, Sentence
from findistill.data.readers import read_conll, read_file, read_file_located, read_hf_dataset, read_jsonl
from findistill.data.splits import load_ner_data


def test_read_conll_four_columns_docstart_blank_lines_crlf(tmp_path):
    text = ("-DOCSTART- -X- O O\r\n\r\n"
            "Silicon NNP - I-ORG\r\nValley NNP - I-ORG  \r\nlends VBZ - O\r\n\r\n\r\n\r\n"
            "Bank NNP - I-ORG\r\n"
            "-DOCSTART- -X- O O\r\n"
            "Smith NNP - I-PER\t\r\n")
    sentences = read_conll(write(tmp_path, "train.txt", text))
    assert sentences == [
        Sentence(["Silicon", "Valley", "lends"], ["I-ORG", "I-ORG", "O"]),
        Sentence(["Bank"], ["I-ORG"]),  # -DOCSTART- ends the sentence even without a blank line
        Sentence(["Smith"], ["I-PER"]),
    ]


def test_located_conll_numbers_documents_by_docstart_lines(tmp_path):
    text = ("Intro O\n\n"
            "-DOCSTART- -X- O O\n\nA O\n\nB O\n\n"
            "-DOCSTART- -X- O O\n-DOCSTART- -X- O O\n\nC O\n")
    located = read_file_located(write(tmp_path, "train.txt", text))
    assert [s.tokens[0] for s in located.sentences] == ["Intro", "A", "B", "C"]
    assert located.lines == [1, 5, 7, 12]
    # a sentence before the first -DOCSTART- is document 0; an empty document still counts
    assert located.documents == [0, 1, 1, 3]


def test_located_file_without_docstart_has_no_documents(tmp_path):
    assert read_file_located(write(tmp_path, "a.conll", "A O\n\nB O\n")).documents is None
    assert read_file_located(write(tmp_path, "a.jsonl", '{"tokens": ["A"], "tags": ["O"]}\n')).documents is None


def test_read_conll_two_columns_keeps_tags_and_unicode(tmp_path):
    path = write(tmp_path, "x.conll", "Société B-ORG\nGénérale I-ORG\n’s O\n\nH B-PER\nave O\n")
    assert read_conll(path) == [
        Sentence(["Société", "Générale", "’s"], ["B-ORG", "I-ORG", "O"]),
        Sentence(["H", "ave"], ["B-PER", "O"]),
    ]


def test_read_jsonl_tags_and_string_ner_tags(tmp_path):
    lines = [json.dumps({"tokens": ["Apple", "rose"], "tags": ["B-ORG", "O"]}), "",
             json.dumps({"tokens": ["Tim"], "ner_tags": ["S-PER"], "id": 7})]
    path = write(tmp_path, "train.jsonl", "\n".join(lines) + "\n")
    expected = [Sentence(["Apple", "rose"], ["B-ORG", "O"]), Sentence(["Tim"], ["S-PER"])]
    assert read_jsonl(path) == expected
    assert read_file(path) == expected


def test_read_file_dispatches_json_array_to_datasets(tmp_path):
    records = [{"tokens": ["ACME", "Corp"], "tags": ["B-ORG", "I-ORG"]}, {"tokens": ["ok"], "tags": ["O"]}]
    path = write(tmp_path, "data.json", json.dumps(records, indent=2))
    assert read_file(path) == [Sentence(["ACME", "Corp"], ["B-ORG", "I-ORG"]), Sentence(["ok"], ["O"])]


def _classlabel_dataset(tokens, tags):
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features({"tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]))})
    return Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features=features)


def test_read_hf_save_to_disk_datasetdict_maps_classlabels_and_dev(tmp_path):
    from datasets import DatasetDict

    train = _classlabel_dataset([["John", "Smith", "joined", "Acme"], ["no", "entity"]] * 10,
                                [[1, 2, 0, 3], [0, 0]] * 10)
    dev = _classlabel_dataset([["Acme", "Bank", "Ltd"]], [[3, 4, 4]])
    test = _classlabel_dataset([["Mary"]], [[1]])
    DatasetDict({"train": train, "dev": dev, "test": test}).save_to_disk(tmp_path / "saved")

    splits = read_hf_dataset(str(tmp_path / "saved"))
    assert set(splits) == set(SPLITS)
    assert splits["validation"] == [Sentence(["Acme", "Bank", "Ltd"], ["B-ORG", "I-ORG", "I-ORG"])]
    assert splits["train"][0] == Sentence(["John", "Smith", "joined", "Acme"], ["B-PER", "I-PER", "O", "B-ORG"])

    data = load_ner_data(tmp_path / "saved")
    assert data.scheme == "IOB2"
    assert data.labels == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert [len(data.splits[s]) for s in SPLITS] == [20, 1, 1]


def test_read_hf_missing_columns_lists_columns_found(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"words": [["a"]], "labels": [["O"]]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(DataError) as err:
        read_hf_dataset(str(tmp_path / "bad"))
    assert "bad" in str(err.value) and "found: words, labels" in str(err.value)


def test_read_parquet_file_and_folder(tmp_path):
    _classlabel_dataset([["Acme", "hired", "Bob"]] * 30, [[3, 0, 1]] * 30).to_parquet(tmp_path / "train.parquet")
    _classlabel_dataset([["Bob", "Lee"]], [[1, 2]]).to_parquet(tmp_path / "test.parquet")
    assert read_file(tmp_path / "test.parquet") == [Sentence(["Bob", "Lee"], ["B-PER", "I-PER"])]

    data = load_ner_data(tmp_path)
    assert [len(data.splits[s]) for s in SPLITS] == [27, 3, 1]
    assert data.files["test"].endswith("test.parquet")
    assert data.files["validation"] == f"split from {tmp_path / 'train.parquet'} (seed 42, 10%)"


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        call(*args, **kwargs)
    return str(err.value)


def test_hub_id_unreachable_names_offline_ways(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = _error(load_ner_data, "someorg/fin-ner-does-not-exist")
    assert message.startswith("someorg/fin-ner-does-not-exist: ")
    assert "hub is unreachable" in message
    assert "CoNLL/JSONL" in message and "save_to_disk" in message and "parquet" in message
