"""Fixtures of the search tests; the throwaway PostgreSQL server (``postgres``) is shared from tests/pg_server.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, tiny_encoder_dir) -> str:
    """A 2-layer random token classifier with the sample's labels, saved as a folder (a teacher for searches)."""
    from conftest import LABELS

    from findistill.models.loading import load_token_classifier, load_tokenizer

    folder = tmp_path_factory.mktemp("teacher")
    load_token_classifier(str(tiny_encoder_dir), LABELS).save_pretrained(folder, safe_serialization=True)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(folder)
    return str(folder)

