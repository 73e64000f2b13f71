"""Domain tokenizers built once and reused: a folder per (method, size, teacher vocabulary, text),
written atomically so that workers sharing the cache never read a half-written tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from findistill.vocab.build import build_tokenizer


def tokenizer_key(method: str, vocab_size: int, teacher: PreTrainedTokenizerBase, texts: Iterable[str]) -> str:
    """A hash of what decides the built tokenizer: method, size, the teacher's vocabulary, the text."""
    digest = hashlib.sha256(json.dumps([method, vocab_size, sorted(teacher.get_vocab().items())]).encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def cached_tokenizer(cache_dir: str | Path, method: str, vocab_size: int, teacher: PreTrainedTokenizerBase,
                     texts: Callable[[], Iterable[str]]) -> tuple[Path, bool]:
    """The folder of the tokenizer ``build_tokenizer(method, teacher, texts, vocab_size)`` builds,
    from ``cache_dir`` when an earlier call built it; returns ``(folder, built_now)``."""
    key = tokenizer_key(method, vocab_size, teacher, texts())
    folder = Path(cache_dir) / f"{method}-{vocab_size}-{key}"
    if (folder / "tokenizer.json").is_file():
        return folder, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    built = build_tokenizer(method, teacher, texts, vocab_size)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    built.tokenizer.save_pretrained(staging)
    (staging / "build_info.json").write_text(json.dumps(built.info, default=str, indent=1))
    try:
        os.rename(staging, folder)  # atomic; another worker may have finished the same one first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, True
