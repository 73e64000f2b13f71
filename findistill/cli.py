"""``findistill <stage> --param value ...``: the same stages ``mlflow run . -e <stage>`` runs.

Parameters arrive as strings (as MLflow passes them); unknown ones and bad values end with one
line naming the parameter, not a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from transformers.utils import logging as hf_logging

from findistill.config import ConfigError, as_parameters, parse_params
from findistill.data.corpus import DataError
from findistill.models.loading import ModelLoadError
from findistill.runtimes.onnx import ExportError
from findistill.runtimes.variants import QualityError, VariantError
from findistill.stages import STAGES
from findistill.tracking.registry import PromotionError
from findistill.training.distributed import end_process_group, is_distributed

#: the stages that run under a distributed launcher (torchrun, accelerate launch)
DISTRIBUTED_STAGES = ("finetune", "distill", "adapt")
USER_ERRORS = (ConfigError, DataError, ModelLoadError, FileNotFoundError, VariantError, ExportError, QualityError,
               PromotionError)


def parse_argv(argv: list[str]) -> dict[str, str]:
    """``["--a", "1", "--b=2"]`` -> ``{"a": "1", "b": "2"}``; raises ConfigError on anything else."""
    params: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"expected --name value pairs, got {arg!r}")
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        else:
            if i + 1 >= len(argv):
                raise ConfigError(f"parameter '{name}' has no value")
            i += 1
            value = argv[i]
        params[name.replace("-", "_")] = value
        i += 1
    return params


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stage output stays readable:
    hf_logging.disable_progress_bar()  # no bars for loading or writing weights; training keeps its own
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "gc":
        return gc(argv[1:])
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in STAGES:
        print(f"usage: findistill {{{','.join(STAGES)}}} [--param value ...]\n"
              "       findistill gc [--experiments NAME,...] [--dry_run true]", file=sys.stderr)
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    stage = argv[0]
    module = STAGES[stage]
    try:
        if is_distributed() and stage not in DISTRIBUTED_STAGES:
            raise ConfigError(f"{stage} runs in one process; of the stages, {', '.join(DISTRIBUTED_STAGES)} run "
                              "under torchrun (several processes)")
        with as_parameters():  # the library's value errors name the stage's parameter
            config = parse_params(module.Config, parse_argv(argv[1:]))
            module.run(config)
        end_process_group()
    except USER_ERRORS as err:
        if os.environ.get("FINDISTILL_DEBUG"):
            raise
        print(f"findistill {stage}: error: {err}", file=sys.stderr)
        return 2
    return 0


def gc(argv: list[str]) -> int:
    """``findistill gc``: mark the runs that dead processes left RUNNING as KILLED (in ``--experiments``, names
    or ids, default all; ``--dry_run true`` only lists them)."""
    from findistill.tracking.runs import experiment_ids
    from findistill.tracking.stale import all_experiment_ids, mark_stale_runs

    try:
        params = parse_argv(argv)
        unknown = set(params) - {"experiments", "dry_run"}
        if unknown:
            raise ConfigError(f"findistill gc takes --experiments and --dry_run, not --{sorted(unknown)[0]}")
        dry_run = params.get("dry_run", "false").lower()
        if dry_run not in ("true", "false"):
            raise ConfigError(f"parameter 'dry_run': expected true or false, got {params['dry_run']!r}")
        ids = experiment_ids([n.strip() for n in params.get("experiments", "").split(",") if n.strip()])
    except ConfigError as err:
        print(f"findistill gc: error: {err}", file=sys.stderr)
        return 2
    sweep = mark_stale_runs(ids or all_experiment_ids(), dry_run=dry_run == "true")
    verb = "would mark" if dry_run == "true" else "marked"
    print(f"findistill gc: {verb} {len(sweep.killed)} run(s) KILLED whose process is gone"
          + (f": {', '.join(sweep.killed)}" if sweep.killed else "")
          + (f"; {len(sweep.unknown)} RUNNING run(s) belong to another host or carry no owner tags and were "
             "left alone" if sweep.unknown else ""))
    return 0


def entry_point(script: str) -> None:
    """Run the stage named after ``script`` (``entrypoints/<stage>.py``) with the process's arguments and exit."""
    sys.exit(main([Path(script).stem, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
