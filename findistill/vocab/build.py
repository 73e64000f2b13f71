"""Building a domain tokenizer (:func:`build_tokenizer`, by method).

* ``train``: a new model trained with the ``tokenizers`` library on the domain text: WordPiece
  (default), BPE or Unigram, with the teacher's normaliser, pre-tokeniser, special tokens and
  post-processor, so a model sees the same words and special tokens as before;
* ``trim``: the teacher's WordPiece vocabulary cut to the pieces the domain text uses (most
  frequent first), plus every single-character piece and its ``##`` form, so any word the teacher
  tokenises still tokenises; a word whose pieces are all kept is split exactly as the teacher
  splits it (greedy longest match over a subset that holds the teacher's match finds the same one);
* ``extend``: the teacher's vocabulary plus the whole domain words that save the most tokens.

Every built tokenizer is a standard ``PreTrainedTokenizerFast`` (``tokenizer.json``): it loads with
``AutoTokenizer.from_pretrained``. Vocabulary sizes count every entry, special tokens included.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tokenizers import Tokenizer, models, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from findistill.config import ConfigError, ValueProblem
from findistill.data.corpus import DataError
from findistill.models.loading import SPECIAL_TOKEN_ATTRS
from findistill.vocab.analysis import LETTER, word_normaliser

BUILD_METHODS = ("train", "trim", "extend")
MODEL_TYPES = ("wordpiece", "bpe", "unigram")


def count_words(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> Counter[str]:
    """Word counts of ``texts`` as ``tokenizer`` sees them: after its normaliser (e.g. lower-casing)
    and pre-tokeniser (whitespace and punctuation splits), before its model splits words into pieces."""
    backend = tokenizer.backend_tokenizer
    normalize = word_normaliser(tokenizer)
    pre = backend.pre_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = normalize(text)
        if pre is None:
            counts.update(normalized.split())
        else:
            counts.update(word for word, _ in pre.pre_tokenize_str(normalized))
    return counts


@dataclass
class BuiltTokenizer:
    """A domain tokenizer and what was decided while building it (``info``: JSON-serialisable)."""

    tokenizer: PreTrainedTokenizerFast
    info: dict[str, Any] = field(default_factory=dict)


def _backend_json(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    return json.loads(tokenizer.backend_tokenizer.to_str())


def _special_entries(teacher_json: dict[str, Any]) -> list[dict[str, Any]]:
    """The teacher's special added tokens, in id order."""
    return sorted((t for t in teacher_json.get("added_tokens", []) if t.get("special")), key=lambda t: t["id"])


def _token_id(vocab: dict[str, int], token: str) -> int:
    if token not in vocab:
        raise ConfigError(f"special token {token!r} of the teacher is missing from the new vocabulary")
    return vocab[token]


def _remap_ids(node: Any, vocab: dict[str, int]) -> Any:
    """A post-processor JSON with the ids of its special tokens looked up in ``vocab``
    (TemplateProcessing, BertProcessing, RobertaProcessing and Sequences of them)."""
    if isinstance(node, list):
        return [_remap_ids(item, vocab) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("sep", "cls") and isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            out[key] = [value[0], _token_id(vocab, value[0])]
        elif key == "special_tokens" and isinstance(value, dict):
            out[key] = {name: {**spec, "ids": [_token_id(vocab, t) for t in spec["tokens"]]}
                        for name, spec in value.items()}
        else:
            out[key] = _remap_ids(value, vocab)
    return out


def _assemble(core: Tokenizer, teacher: PreTrainedTokenizerBase, *, keep_decoder: bool = True
              ) -> PreTrainedTokenizerFast:
    """Wrap a new model in the teacher's pipeline: its normaliser, pre-tokeniser, special tokens
    (same flags, new ids), post-processor (ids remapped) and decoder."""
    teacher_json = _backend_json(teacher)
    data = json.loads(core.to_str())
    vocab = core.get_vocab(with_added_tokens=True)
    data["normalizer"] = teacher_json.get("normalizer")
    data["pre_tokenizer"] = teacher_json.get("pre_tokenizer")
    data["post_processor"] = _remap_ids(teacher_json.get("post_processor"), vocab)
    data["decoder"] = teacher_json.get("decoder") if keep_decoder else None
    data["added_tokens"] = [{**entry, "id": _token_id(vocab, entry["content"])}
                            for entry in _special_entries(teacher_json)]
    specials = {attr: getattr(teacher, attr) for attr in SPECIAL_TOKEN_ATTRS
                if getattr(teacher, attr, None) is not None}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)),
                                   model_max_length=teacher.model_max_length, **specials)


def _wordpiece_settings(teacher: PreTrainedTokenizerBase, method: str) -> dict[str, Any]:
    model = _backend_json(teacher)["model"]
    if model.get("type") != "WordPiece":
        raise ValueProblem("method", f"{method!r} needs a WordPiece teacher tokenizer (BERT-style '##' "
                          f"pieces); this teacher's model is {model.get('type')!r}. Use method=train")
    return model


def _check_text(counts: Counter[str]) -> None:
    if not counts:
        raise DataError("the domain text is empty: no words to build a tokenizer from")


def train_new_tokenizer(teacher: PreTrainedTokenizerBase, texts: Iterable[str], vocab_size: int, *,
                        model_type: str = "wordpiece", min_frequency: int = 2) -> BuiltTokenizer:
    """Train a ``model_type`` tokenizer of ``vocab_size`` entries on ``texts`` with the ``tokenizers``
    library, inside the teacher's pipeline (normaliser, pre-tokeniser, special tokens, post-processor).

    WordPiece and BPE mark word-internal pieces with the teacher's continuation prefix (``##``).
    The trainers keep the whole alphabet of the text: a ``vocab_size`` below special tokens +
    alphabet raises ConfigError naming the minimum. ``texts`` is consumed once (streamed).
    """
    if model_type not in MODEL_TYPES:
        raise ValueProblem("model_type", f"expected one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    teacher_json = _backend_json(teacher)
    specials = [t["content"] for t in _special_entries(teacher_json)]
    unk = teacher.unk_token or (specials[0] if specials else "[UNK]")
    if vocab_size <= len(specials):
        raise ValueProblem("vocab_size", f"expected more than the {len(specials)} special tokens "
                          f"({', '.join(specials)}) plus the alphabet of the text, got {vocab_size}")
    prefix = teacher_json["model"].get("continuing_subword_prefix") or "##"
    if model_type == "wordpiece":
        core = Tokenizer(models.WordPiece(unk_token=unk, continuing_subword_prefix=prefix,
                                          max_input_chars_per_word=teacher_json["model"].get(
                                              "max_input_chars_per_word", 100)))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, continuing_subword_prefix=prefix,
                                            show_progress=False)
    elif model_type == "bpe":
        core = Tokenizer(models.BPE(unk_token=unk, continuing_subword_prefix=prefix))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      continuing_subword_prefix=prefix, show_progress=False)
    else:
        core = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=unk,
                                          show_progress=False)
    backend = teacher.backend_tokenizer
    core.normalizer = backend.normalizer
    core.pre_tokenizer = backend.pre_tokenizer
    seen = {"lines": 0}

    def counted() -> Iterator[str]:
        for text in texts:
            seen["lines"] += 1
            yield text

    try:
        core.train_from_iterator(counted(), trainer=trainer)
    except Exception as err:  # the Rust trainers raise a bare Exception, e.g. Unigram's "not large enough"
        if "not large enough" in str(err):
            raise ValueProblem("vocab_size", f"{vocab_size} is too small for the alphabet of the text "
                              f"plus {len(specials)} special tokens ({err})") from None
        raise
    if seen["lines"] == 0 or core.get_vocab_size() <= len(specials):
        raise DataError("the domain text is empty: no words to train a tokenizer on")
    size = core.get_vocab_size(with_added_tokens=True)
    if size > vocab_size:
        raise ValueProblem("vocab_size", f"expected at least {size} for this text ({len(specials)} special "
                          f"tokens + {size - len(specials)} characters of its alphabet and their {prefix} forms), "
                          f"got {vocab_size}")
    tokenizer = _assemble(core, teacher, keep_decoder=model_type != "unigram")
    return BuiltTokenizer(tokenizer, {"method": "train", "model_type": model_type, "vocab_size": len(tokenizer),
                                      "requested_vocab_size": vocab_size, "min_frequency": min_frequency,
                                      "text_lines": seen["lines"]})


def _single_character(piece: str, prefix: str) -> bool:
    return len(piece) == 1 or (piece.startswith(prefix) and len(piece) == len(prefix) + 1)


def _wordpiece_tokenizer(teacher: PreTrainedTokenizerBase, settings: dict[str, Any], vocab: list[str]
                         ) -> PreTrainedTokenizerFast:
    core = Tokenizer(models.WordPiece(vocab={piece: i for i, piece in enumerate(vocab)},
                                      unk_token=settings["unk_token"],
                                      continuing_subword_prefix=settings.get("continuing_subword_prefix", "##"),
                                      max_input_chars_per_word=settings.get("max_input_chars_per_word", 100)))
    return _assemble(core, teacher)


def _teacher_pieces(teacher: PreTrainedTokenizerBase, words: Iterable[str]) -> dict[str, list[str]]:
    """The teacher model's pieces of each (already normalised, pre-tokenised) word."""
    model = teacher.backend_tokenizer.model
    return {word: [t.value for t in model.tokenize(word)] for word in words}


def trim_vocabulary(teacher: PreTrainedTokenizerBase, word_counts: Counter[str], vocab_size: int) -> BuiltTokenizer:
    """The teacher's WordPiece vocabulary cut to ``vocab_size`` entries: its special tokens, every
    single-character piece (``a`` and ``##a``), then the pieces the teacher's segmentation of
    ``word_counts`` uses most (ties: lower teacher id first), and when every used piece fits, the
    teacher's other pieces in its id order (``[unusedN]`` excepted). Entries keep the teacher's order.

    ``word_counts`` come from :func:`count_words` with the teacher. A word whose pieces are all
    kept is split exactly as the teacher splits it. Filling matters: a vocabulary cut to the pieces
    of a small labelled train split splits unseen entity names into characters (measured on
    FiNER-ORD: the fine-tuned teacher falls from 0.778 to 0.686 test F1 with every used piece kept,
    0.742 with the vocabulary filled to 16k).
    """
    settings = _wordpiece_settings(teacher, "trim")
    _check_text(word_counts)
    prefix = settings.get("continuing_subword_prefix", "##")
    teacher_vocab = teacher.get_vocab()
    specials = {t["content"] for t in _special_entries(_backend_json(teacher))}
    base = specials | {p for p in teacher_vocab if _single_character(p, prefix)}
    if vocab_size < len(base):
        raise ValueProblem("vocab_size", f"expected at least {len(base)} for trim ({len(specials)} special "
                          f"tokens + {len(base) - len(specials)} single-character pieces of the teacher with their "
                          f"{prefix} forms, kept so that every word still tokenizes), got {vocab_size}")
    pieces_of = _teacher_pieces(teacher, word_counts)
    piece_counts: Counter[str] = Counter()
    for word, count in word_counts.items():
        for piece in pieces_of[word]:
            piece_counts[piece] += count
    candidates = sorted((p for p in piece_counts if p not in base), key=lambda p: (-piece_counts[p], teacher_vocab[p]))
    # room left after every piece the text uses: the teacher's other pieces in its own id order (for BERT
    # vocabularies roughly general-text frequency), so words the domain text never showed split less
    general = sorted((p for p in teacher_vocab if p not in base and p not in piece_counts
                      and not re.fullmatch(r"\[unused\d+\]", p)), key=teacher_vocab.__getitem__)
    room = vocab_size - len(base)
    kept = base | set(candidates[:room]) | set(general[:max(0, room - len(candidates))])
    vocab = sorted(kept, key=teacher_vocab.__getitem__)
    tokenizer = _wordpiece_tokenizer(teacher, settings, vocab)
    total = sum(word_counts.values())
    covered = sum(c for w, c in word_counts.items() if all(p in kept for p in pieces_of[w]))
    return BuiltTokenizer(tokenizer, {
        "method": "trim", "vocab_size": len(vocab), "requested_vocab_size": vocab_size,
        "teacher_vocab_size": len(teacher_vocab), "teacher_pieces_used": len(piece_counts),
        "base_pieces": len(base), "frequent_pieces_kept": min(room, len(candidates)),
        "general_pieces_added": max(0, min(room - len(candidates), len(general))),
        "covered_word_share": covered / total,
    })


def extend_vocabulary(teacher: PreTrainedTokenizerBase, word_counts: Counter[str], vocab_size: int, *,
                      min_frequency: int = 2) -> BuiltTokenizer:
    """The teacher's WordPiece vocabulary plus whole domain words, up to ``vocab_size`` entries.

    Candidates: words with a letter, seen ``min_frequency``+ times, that the teacher splits into
    2+ pieces (none UNK); ranked by the tokens they save, ``(pieces - 1) * count``. New words get
    ids after the teacher's, whose ids are unchanged. As the first piece of a longer word a new
    word may change that word's split (greedy longest match). ``vocab_size`` is the size of the
    result, so it must exceed the teacher's; with fewer candidates the result is smaller.
    """
    settings = _wordpiece_settings(teacher, "extend")
    _check_text(word_counts)
    teacher_vocab = teacher.get_vocab()
    if vocab_size <= len(teacher_vocab):
        raise ValueProblem("vocab_size", f"for extend expected more than the teacher's {len(teacher_vocab)} "
                          f"entries (the words added are vocab_size - {len(teacher_vocab)}), got {vocab_size}")
    unk = settings["unk_token"]
    frequent = [w for w, c in word_counts.items()
                if c >= min_frequency and w not in teacher_vocab and LETTER.search(w)]
    pieces_of = _teacher_pieces(teacher, frequent)
    scored = sorted(((len(pieces_of[w]) - 1) * word_counts[w], w) for w in frequent
                    if len(pieces_of[w]) >= 2 and unk not in pieces_of[w])
    added = [w for _, w in sorted(scored, key=lambda s: (-s[0], s[1]))[:vocab_size - len(teacher_vocab)]]
    vocab = [p for p, _ in sorted(teacher_vocab.items(), key=lambda item: item[1])] + added
    tokenizer = _wordpiece_tokenizer(teacher, settings, vocab)
    return BuiltTokenizer(tokenizer, {
        "method": "extend", "vocab_size": len(vocab), "requested_vocab_size": vocab_size,
        "teacher_vocab_size": len(teacher_vocab), "candidates": len(scored), "added_words": len(added),
        "min_frequency": min_frequency, "first_added": added[:50],
    })


def build_tokenizer(method: str, teacher: PreTrainedTokenizerBase, texts: Callable[[], Iterable[str]],
                    vocab_size: int, *, model_type: str = "wordpiece", min_frequency: int = 2) -> BuiltTokenizer:
    """Build a domain tokenizer by ``method`` (:data:`BUILD_METHODS`) from ``texts()``, a fresh stream of
    domain texts per call (read twice for ``train``: once to count, once to train).

    ``info`` adds the text statistics (``text_words``, ``text_distinct_words``) and, for every
    method, ``teacher_pieces_used``: how many teacher pieces the text uses.
    """
    if method not in BUILD_METHODS:
        raise ValueProblem("method", f"expected one of {', '.join(BUILD_METHODS)}, got {method!r}")
    counts = count_words(teacher, texts())
    _check_text(counts)
    if method == "train":
        built = train_new_tokenizer(teacher, texts(), vocab_size, model_type=model_type, min_frequency=min_frequency)
    elif method == "trim":
        built = trim_vocabulary(teacher, counts, vocab_size)
    else:
        built = extend_vocabulary(teacher, counts, vocab_size, min_frequency=min_frequency)
    if "teacher_pieces_used" not in built.info:
        pieces_of = _teacher_pieces(teacher, counts)
        built.info["teacher_pieces_used"] = len({p for pieces in pieces_of.values() for p in pieces})
    built.info.update(text_words=sum(counts.values()), text_distinct_words=len(counts))
    return built
