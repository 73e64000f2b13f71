"""NER corpora in memory: sentences with IOB2 tags, the splits of a corpus, and data errors.

:class:`NerData` is what every reader and splitter returns: train/validation/test lists of
:class:`Sentence`, a stable label list and a record of every decision taken (which file became
which split, what was split off with which seed, which tagging scheme was converted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "validation", "test")
ENTITY_SCHEMES = ("IO", "IOB1", "IOB2", "BIOES")
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


class DataError(ValueError):
    """A problem with input data or a data parameter, phrased for the user.

    ``str(err)`` is ``"{path}:{line}: {message}"``, ``"{path}: {message}"`` or ``message``,
    depending on what is known; ``.message``, ``.path`` and ``.line`` keep the parts.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        if self.path is None:
            return self.message if self.line is None else f"line {self.line}: {self.message}"
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):
        return (type(self), (self.message, self.path, self.line))


@dataclass
class Sentence:
    """One sentence: ``tokens[i]`` is tagged ``tags[i]`` (both lists have the same length)."""

    tokens: list[str]
    tags: list[str]


@dataclass
class NerData:
    """A corpus ready for training: IOB2 splits, label list and the decisions that made it.

    ``validation_unit`` says how the validation split was made: ``"document"`` (whole documents
    cut from a training file with ``-DOCSTART-`` boundaries), ``"block"`` (whole runs of
    consecutive sentences, ``split_blocks``, cut from a training file without boundaries),
    ``"sentence"`` (sentences drawn at random from a training file without usable document
    boundaries) or ``"given"`` (read
    from its own file or split of the source). ``name`` names the corpus in what is logged
    (``finer-ord``, ``sample``).
    """

    splits: dict[str, list[Sentence]]
    labels: list[str]
    scheme: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    validation_unit: str = "given"
    name: str = "data"

    @property
    def entity_types(self) -> list[str]:
        """Returns the entity types of the label list, sorted (e.g. ``["LOC", "ORG", "PER"]``)."""
        return sorted({label[2:] for label in self.labels if label != "O"})
