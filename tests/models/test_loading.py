"""Model references: packaged, local folders, Hub ids (offline here), MLflow URIs."""

import pytest
from conftest import LABELS

from findistill.models.loading import (
    ModelLoadError,
    load_token_classifier,
    load_tokenizer,
    model_labels,
    resolve_model_path,
)


def test_packaged_teacher_resolves_to_safetensors_folder():
    from pathlib import Path

    path = Path(resolve_model_path("packaged:all-MiniLM-L6-v2"))
    assert (path / "model.safetensors").exists() and (path / "config.json").exists()
    with pytest.raises(ModelLoadError, match="packaged models: all-MiniLM-L6-v2"):
        resolve_model_path("packaged:bert-huge")


def test_unreachable_hub_names_the_offline_way():
    with pytest.raises(ModelLoadError) as err:
        load_tokenizer("someone/not-on-this-machine")
    assert "packaged:all-MiniLM-L6-v2" in str(err.value) and "Hub" in str(err.value)


def test_missing_local_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_path(str(tmp_path))


def test_head_is_built_for_the_label_list_and_kept_on_reload(tiny_encoder_dir, tmp_path):
    model = load_token_classifier(str(tiny_encoder_dir), LABELS)
    assert model_labels(model) == LABELS and model.classifier.out_features == len(LABELS)
    model.save_pretrained(tmp_path / "m")
    reloaded = load_token_classifier(str(tmp_path / "m"))
    assert model_labels(reloaded) == LABELS
    import torch

    assert torch.equal(reloaded.classifier.weight, model.classifier.weight)
    # asking for the same labels keeps the trained head instead of re-initialising it
    again = load_token_classifier(str(tmp_path / "m"), LABELS)
    assert torch.equal(again.classifier.weight, model.classifier.weight)


def test_weights_load_only_from_safetensors(tiny_encoder_dir, tmp_path):
    import shutil

    import torch
    from transformers import BertModel

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_encoder_dir, folder)
    model = BertModel.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError):
        load_token_classifier(str(folder), LABELS)


def test_expected_head_changes_load_quietly_and_a_missing_encoder_weight_warns(tiny_encoder_dir, tmp_path):
    import json
    import shutil
    import warnings

    from findistill.models.loading import load_masked_lm, load_token_classifier

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_token_classifier(str(tiny_encoder_dir), ["O", "B-ORG", "I-ORG"])  # a fresh NER head
        load_masked_lm(str(tiny_encoder_dir))  # a fresh masked-LM head
    assert [str(w.message) for w in caught if "weight(s)" in str(w.message)] == []

    deeper = tmp_path / "deeper"
    shutil.copytree(tiny_encoder_dir, deeper)
    config = json.loads((deeper / "config.json").read_text())
    config["num_hidden_layers"] += 1  # the checkpoint lacks the last layer
    (deeper / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match=r"missing from the checkpoint.*encoder\.layer\.2\."):
        load_token_classifier(str(deeper), ["O", "B-ORG", "I-ORG"])
