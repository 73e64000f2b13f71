"""``prepare``: Read NER data (CoNLL/JSONL/HF dataset), normalise to IOB2, split; logs data/
(runs:/<id>/data) and dataset statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from findistill.data.splits import write_splits
from findistill.data.stats import stats_metrics
from findistill.stages.common import DataParams, load_stage_data, log_data
from findistill.tracking.runs import describe_run, log_artifacts, log_metrics, scratch_dir, stage_run


@dataclass
class Config(DataParams):
    """``prepare``: read, normalise to IOB2, split, describe."""


def run(config: Config) -> str:
    """Log ``data/{train,validation,test}.jsonl``, ``data/labels.json`` and ``data_stats.json``."""
    data = load_stage_data(config)
    with stage_run("prepare", config, run_name=f"prepare {data.name}") as run:
        log_metrics(stats_metrics(log_data(data)))
        with scratch_dir("prepare") as tmp:
            write_splits(data, tmp)
            log_artifacts(tmp, "data")
        mlflow.set_tag("findistill.data_uri", f"runs:/{run.info.run_id}/data")
        validation = {"document": "cut from train by whole documents",
                      "block": f"cut from train by runs of {config.split_blocks} consecutive sentences",
                      "sentence": "cut from train by sentences"}
        describe_run(f"Read {data.name} ({'IOB2' if data.scheme == 'IOB2' else f'{data.scheme} converted to IOB2'}): "
                     f"{', '.join(f'{len(v):,} {k}' for k, v in data.splits.items())} sentences, entity types "
                     f"{', '.join(data.entity_types)}; validation "
                     f"{validation.get(data.validation_unit, 'as the source gives it')}.")
        for note in data.notes:
            print(f"note: {note}")
        print(f"prepared {', '.join(f'{k}: {len(v)} sentences' for k, v in data.splits.items())}; "
              f"labels {data.labels}\ndata URI: runs:/{run.info.run_id}/data")
        return run.info.run_id
