"""``promote``: Move a registered model's ``champion`` alias to a version that is not worse than the current champion.

The comparison is on ``metric`` (``validation_f1`` by default: choosing a model is a selection, so the
test split is not used), read from the versions' tags or their runs; a version worse by more than
``tolerance`` is refused unless ``force=true``. The version that held the alias becomes ``previous``.
Serve the champion with ``mlflow models serve -m models:/<name>@champion``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mlflow

from findistill.config import require
from findistill.tracking.registry import CHAMPION, PromotionError, promote
from findistill.tracking.runs import describe_run, log_metrics, stage_run

__all__ = ["Config", "PromotionError", "run"]


@dataclass
class Config:
    """``promote``: move the champion alias of a registered model to a version if it is not worse."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("name",)  # declared without a default in MLproject

    name: str = ""
    version: str = "latest"
    metric: str = "validation_f1"
    direction: str = "auto"
    tolerance: float = 0.0
    force: bool = False
    alias: str = CHAMPION

    def __post_init__(self) -> None:
        require(bool(self.name.strip()), "name", "the name of a registered model", self.name)
        require(bool(self.version.strip()), "version", "a version number, 'latest' or an alias", self.version)
        require(self.direction in ("auto", "maximize", "minimize"), "direction", "auto, maximize or minimize",
                self.direction)
        require(self.tolerance >= 0, "tolerance", "a non-negative difference of the metric", self.tolerance)
        require(bool(self.alias.strip()) and self.alias != "latest", "alias", "an alias name other than 'latest'",
                self.alias)


def run(config: Config) -> str:
    """Promote (or refuse: the run ends FAILED with the reason in ``findistill.fail_reason``); return the run id."""
    with stage_run("promote", config, run_name=f"promote {config.name}") as run:
        try:
            outcome = promote(config.name, config.version, metric=config.metric, tolerance=config.tolerance,
                              direction=config.direction, force=config.force, alias=config.alias)
        except PromotionError as refused:
            mlflow.set_tags({"findistill.promotion": "refused", "findistill.fail_reason": str(refused)})
            raise
        mlflow.set_tags({"findistill.promotion": outcome["decision"], "findistill.promoted_version": outcome["version"],
                         "findistill.previous_version": outcome["previous"] or ""})
        log_metrics({f"candidate_{config.metric}": outcome["value"],
                     f"previous_{config.metric}": outcome["previous_value"]})
        held = (f"; version {outcome['previous']} had {outcome['previous_value']:.4g} and is now 'previous'"
                if outcome["previous_value"] is not None else "")
        message = {
            "unchanged": f"version {outcome['version']} of {config.name} already holds @{config.alias}",
            "first": f"version {outcome['version']} of {config.name} is the first @{config.alias} "
                     f"({config.metric} {outcome['value']:.4g})",
        }.get(outcome["decision"], f"version {outcome['version']} of {config.name} is now @{config.alias} "
                                   f"({config.metric} {outcome['value']:.4g}{held}"
                                   f"{', forced' if outcome['decision'] == 'forced' else ''})")
        describe_run(message[0].upper() + message[1:] + ".")
        print(message)
        print(f"serve it: mlflow models serve -m models:/{config.name}@{config.alias} --env-manager local "
              f"--host 127.0.0.1 --port 5001")
        return run.info.run_id
