"""The stages: one module per MLflow entry point, named as the entry point.

Each stage module holds its typed ``Config`` (a dataclass validated on construction) and
``run(config) -> run_id``, and is the only code that opens MLflow runs; what they share is in
:mod:`findistill.stages.common`. Stages call the library below them (``data``, ``vocab``,
``models``, ``training``, ``evaluation``, ``costs``, ``tracking``), never the other way round.

:data:`STAGES` (entry point name -> module) is the one list that the ``findistill`` command,
``entrypoints/``, ``scripts/gen_mlproject.py`` and the tests read.
"""

from __future__ import annotations

from types import ModuleType

from findistill.stages import (
    adapt,
    analyze_tokenization,
    compare,
    distill,
    evaluate,
    finetune,
    prepare,
    promote,
    quantize,
    search,
    train_tokenizer,
)
from findistill.stages import main as _main  # last: it chains the others

STAGES: dict[str, ModuleType] = {
    "prepare": prepare,
    "analyze_tokenization": analyze_tokenization,
    "train_tokenizer": train_tokenizer,
    "adapt": adapt,
    "finetune": finetune,
    "distill": distill,
    "evaluate": evaluate,
    "quantize": quantize,
    "search": search,
    "compare": compare,
    "promote": promote,
    "main": _main,
}
