"""What a study shows: the table of its trials, parameter importances, and Optuna's plots
(optimisation history, importances, Pareto front) as self-contained HTML that opens offline.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from findistill.search.study import Objective

RUN_ID_ATTR = "mlflow_run_id"
FAIL_ATTR = "fail_reason"
#: a parameter budget's work on a trial: the values it filled ({name: value}) and the student's parameter count
FILLED_ATTR = "budget_filled"
STUDENT_PARAMS_ATTR = "student_params"


def trials_frame(study: optuna.Study, objectives: Sequence[Objective]) -> pd.DataFrame:
    """One row per trial: number, state, the objective values (named by objective), the parameters (with
    those a budget filled, and the student's parameter count under one), seconds, MLflow run id and why it
    failed or was pruned."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
        values = trial.values or [None] * len(objectives)
        row.update({o.name: v for o, v in zip(objectives, values)})
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            last = max(trial.intermediate_values)
            row["f1"] = None
            row["pruned_at_epoch"] = last
        row.update(trial.params)
        row.update(trial.user_attrs.get(FILLED_ATTR, {}))
        if STUDENT_PARAMS_ATTR in trial.user_attrs:
            row[STUDENT_PARAMS_ATTR] = trial.user_attrs[STUDENT_PARAMS_ATTR]
        duration = trial.duration.total_seconds() if trial.duration else None
        row.update(seconds=duration, run_id=trial.user_attrs.get(RUN_ID_ATTR, ""),
                   note=trial.user_attrs.get(FAIL_ATTR, ""))
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 and value.is_integer() else f"{value:.4g}"
    return str(value).replace("|", "/")


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table of ``frame`` (NaN as ``–``)."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def importances(study: optuna.Study, objectives: Sequence[Objective]) -> dict[str, dict[str, float]]:
    """Importance of each parameter for each objective, by Optuna's default evaluator (PED-ANOVA in
    Optuna 5: how far a parameter's values in the best trials differ from its values in all
    complete trials), normalised to sum to 1; empty for an objective when fewer than two trials
    completed or nothing varied."""
    result: dict[str, dict[str, float]] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for i, objective in enumerate(objectives):
        if len(complete) < 2:
            result[objective.name] = {}
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(
                    study, target=lambda t, i=i: t.values[i], normalize=True)
        except (RuntimeError, ValueError):  # no parameter common to all complete trials, or constant values
            scores = {}
        result[objective.name] = {k: float(v) for k, v in scores.items()}
    return result


def write_plots(study: optuna.Study, objectives: Sequence[Objective], folder: str | Path) -> list[Path]:
    """Optuna's plotly figures as standalone HTML in ``folder``: ``history_<objective>.html``,
    ``importances_<objective>.html`` and, for two objectives, ``pareto_front.html``. A plot that
    needs more finished trials than there are is left out."""
    from optuna import visualization as vis

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for i, objective in enumerate(objectives):
        target = (lambda t, i=i: t.values[i]) if len(objectives) > 1 else None
        figures[f"history_{objective.name}"] = lambda target=target, o=objective: vis.plot_optimization_history(
            study, target=target, target_name=o.label)
        if len(complete) >= 2:
            figures[f"importances_{objective.name}"] = lambda target=target, o=objective: \
                vis.plot_param_importances(study, target=target, target_name=o.label)
    if len(objectives) > 1 and complete:
        figures["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=[o.label for o in objectives])
    written = []
    for name, make in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = make()
        except (RuntimeError, ValueError):  # too few trials for this plot
            continue
        path = folder / f"{name}.html"
        figure.write_html(path, include_plotlyjs=True, full_html=True)  # plotly.js inside: opens offline
        written.append(path)
    return written
