"""The pip requirements a logged model carries: the versions installed here, installable by pip."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow

from findistill.tracking.pyfunc import model_requirements


def _public(package: str) -> str:
    return version(package).split("+", 1)[0]


def test_requirements_pin_the_installed_versions():
    requirements = model_requirements()
    assert f"torch=={_public('torch')}" in requirements
    assert f"transformers=={_public('transformers')}" in requirements
    assert f"mlflow=={mlflow.__version__}" in requirements
    assert f"seqeval=={_public('seqeval')}" in requirements
    assert {"pandas", "numpy"} <= set(requirements)


def test_requirements_have_no_local_version_label():
    # a CPU or CUDA build of torch reports e.g. 2.13.0+cpu; PyPI has no such version
    assert not [r for r in model_requirements() if "+" in r]


def test_requirements_follow_the_installed_torch(monkeypatch):
    # read at call time, so a CUDA build installed instead is what the model asks for
    monkeypatch.setattr("importlib.metadata.version",
                        lambda name: "9.9.1+cu130" if name == "torch" else version(name))
    assert "torch==9.9.1" in model_requirements()


def test_logged_model_carries_the_requirements(mlflow_store, tiny_encoder_dir, tmp_path):
    from conftest import LABELS

    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.tracking.pyfunc import log_ner_model

    model_dir = tmp_path / "ner"
    load_token_classifier(str(tiny_encoder_dir), LABELS).save_pretrained(model_dir)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(model_dir)
    with mlflow.start_run():
        uri = log_ner_model(model_dir, max_length=32, example_texts=["Shares of Acme Corp rose ."])
    folder = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    written = (Path(folder) / "requirements.txt").read_text().split()
    assert f"torch=={_public('torch')}" in written
    assert f"transformers=={_public('transformers')}" in written


def test_texts_are_read_from_every_input_shape():
    import pandas as pd

    from findistill.tracking.pyfunc import _texts

    assert _texts("one") == ["one"]
    assert _texts(["a", "b"]) == ["a", "b"]
    assert _texts(pd.DataFrame({"text": ["a", ""]})) == ["a", ""]
    # what MLflow makes of {"text": ["a", ""]}: one row holding the list
    assert _texts(pd.DataFrame([{"text": ["a", ""]}])) == ["a", ""]


def test_served_model_answers_one_list_per_text(mlflow_store, tiny_encoder_dir, tmp_path):
    import pandas as pd
    from conftest import LABELS

    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.tracking.pyfunc import log_ner_model

    model_dir = tmp_path / "ner"
    load_token_classifier(str(tiny_encoder_dir), LABELS).save_pretrained(model_dir)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(model_dir)
    with mlflow.start_run():
        served = mlflow.pyfunc.load_model(log_ner_model(model_dir, max_length=32, example_texts=["Acme rose ."]))
    texts = ["Shares of Acme Corp rose in Dallas .", ""]
    by_frame = served.predict(pd.DataFrame({"text": texts}))
    assert len(by_frame) == 2 and by_frame[1] == []
    assert served.predict({"text": texts}) == by_frame
