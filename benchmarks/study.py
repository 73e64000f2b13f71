"""The research study: which levers let a small domain student keep its teacher's quality, one command.

    .venv/bin/python benchmarks/study.py --corpus finer-ord                      # teachers trained here
    .venv/bin/python benchmarks/study.py --corpus finer-ord --teachers runs:/<a>/model,runs:/<b>/model \\
        --dapt-teacher runs:/<c>/model --variants core --seeds 42,1,2
    .venv/bin/python benchmarks/study.py --corpus finer-ord --collect-only        # the report from finished runs
    .venv/bin/python benchmarks/study.py --corpus finer-ord --dry-run             # what is finished, what would train

A declared matrix (:data:`VARIANTS`) of students is distilled from the corpus's teacher(s) through
``mlflow run``, each variant over ``--seeds``, in experiment ``study-<corpus>``. A run is found again
by a key of its stage and parameters (tag ``findistill.cache_key``): a finished run is reused, so an
interrupted study resumes and a larger matrix adds only its new runs. The key leaves the code
version out on purpose (a study spans commits); each run records its commit (``mlflow.source.git.commit``)
and ``--fresh`` starts a new experiment.

Teachers: ``--teachers`` lists fine-tuned teachers (the first is the one students learn from; all of
them make the ensemble teacher), or they are fine-tuned here with ``--teacher-seeds``; ``--dapt-teacher``
is a teacher fine-tuned after masked-LM adaptation on Reuters-21578 (adapted here when absent and a
variant needs it). Rows with ``quantize`` (``--variants int8``) are the ``quantize`` stage's inference
variant of a trained student, seed by seed (F1 guard forced: the study measures every variant). Costs
are measured afterwards side by side in one fresh process (one model per architecture and runtime);
an architecture measured later is measured beside the teacher again, and its speed-ups use that
process's teacher.
Output: ``docs/results/<report>.md`` and ``.json`` and ``<report>-front.png`` (``--report``, default the
corpus); a hand-written discussion in ``docs/results/<report>-discussion.md`` is included when present.

Scale: ``--device cuda`` and a larger ``--data`` corpus need no other change; ``--transfer-lines``
bounds how much of the unlabeled text is read.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from findistill.tracking.environment import fingerprint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stage_runs import finished_run, launch, wait_while_running  # the sibling modules
from study_agreement import own_rows
from study_predictions import pack_tags, split_digest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REUTERS = SHARED / "reuters-21578"
DOCS = REPO / "docs" / "results"
TARGET = {"f1_ratio": 0.97, "params_ratio": 0.30, "speedup_b1": 3.0, "seeds": 3}
#: the student budget every variant shares (the teachers': 6 epochs at 1e-4, patience 2)
BUDGET = {"epochs": "6", "learning_rate": "2e-4", "patience": "2"}


@dataclass(frozen=True)
class Variant:
    """One row of the matrix: a student (``layers``, ``vocab``: ``same``/``trim8k``/``cov8k``/``cov20k``, embedding
    ``rank`` with ``exact_rows`` of its most frequent rows kept exact, feed-forward width ``ffn``, 0 for the
    teacher's) trained by ``distill`` with ``params`` from ``teacher`` (``primary``, ``ensemble``, ``dapt`` or
    ``ensemble-dapt``: the ensemble and the adapted teacher together); ``baseline`` is the variant its gain is
    measured against, ``lever`` the issue's lever. With ``quantize`` (a ``quantize`` stage variant, e.g.
    ``onnx-int8``) the row is that inference variant of the ``baseline`` student of the same seed, made by the
    ``quantize`` stage instead of trained (``params`` are then the stage's: ``per_channel``...). With ``init``
    (another variant) the row is trained further from that variant's finished student of the same seed
    (``student_init``), whose depth and vocabulary it keeps; a ``rank`` or ``ffn`` below that student's cuts it
    further (its factors factorised again, its feed-forward blocks narrowed to their largest units), equal ones keep
    it as it is. ``versus`` names other variants the report compares it with as well, as with its baseline.
    ``environment``: variables its runs are launched with (e.g. the kernel settings of :data:`PORTABLE_KERNELS`),
    part of their run key."""

    description: str
    layers: int
    vocab: str = "same"
    rank: int = 0
    exact_rows: int = 0
    ffn: int = 0
    teacher: str = "primary"
    params: dict[str, str] = field(default_factory=dict)
    baseline: str = ""
    lever: str = ""
    quantize: str = ""
    init: str = ""
    versus: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


#: the parameter that carries a row's ``environment`` into its run key; taken out again before the launch
ENV_PARAM = "_environment"
#: torch's, oneMKL's and oneDNN's kernels pinned to AVX2 (benchmarks/numerics.py)
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
REUTERS_X = {"transfer_data": str(REUTERS), "transfer_ratio": "1"}
#: the hidden-state loss as the only objective, on the map ending on the teacher's last layer
HIDDEN_ONLY = {"kd_weight": "0", "ce_weight": "0", "hidden_weight": "1", "hidden_layers": "uniform"}
#: the best 3-layer student's training (weighted rank-96 embeddings, Reuters x1) with the hidden-state loss
#: beside the logits' on that map, at weight 1
HIDDEN_UNIFORM = {**REUTERS_X, "embedding_weights": "frequency", "hidden_weight": "1", "hidden_layers": "uniform"}
#: ONNX Runtime int8 with weights rounded to 7 bits, as quantization-aware training with ``quant_reduce_range``
#: simulates it exactly
REDUCED_RANGE = {"reduce_range": "true"}
#: one more epoch of a trained student at the same loss (its embeddings and widths are kept as they are)
QAT_EPOCH = {**REUTERS_X, "hidden_weight": "1", "hidden_layers": "uniform", "epochs": "1"}
VARIANTS: dict[str, Variant] = {
    # references: the plain domain-vocabulary KD student, and the same depth with the teacher's vocabulary
    "s2-dom8k-kd": Variant("2 layers, domain vocabulary 8k (trim), KD", 2, "trim8k"),
    "s2-same-kd": Variant("2 layers, teacher vocabulary, KD", 2, baseline="s2-dom8k-kd", lever="5"),
    # 5: the teacher's vocabulary at a fraction of the parameters
    "s2-r64-kd": Variant("2 layers, teacher vocabulary factorised r=64, KD", 2, rank=64,
                         baseline="s2-dom8k-kd", lever="5"),
    "s2-r128-kd": Variant("2 layers, teacher vocabulary factorised r=128, KD", 2, rank=128,
                          baseline="s2-dom8k-kd", lever="5"),
    "s2-r96-kd": Variant("2 layers, teacher vocabulary factorised r=96 (the 8k trim's parameters), KD", 2,
                         rank=96, baseline="s2-dom8k-kd", lever="5"),
    "s2-dom8k-r64-kd": Variant("2 layers, domain vocabulary 8k factorised r=64, KD", 2, "trim8k", rank=64,
                               baseline="s2-dom8k-kd", lever="5"),
    # 2: teacher labels on unlabeled news
    "s2-r64-reuters1": Variant("2 layers, r=64, KD + Reuters transfer set x1", 2, rank=64, params=REUTERS_X,
                               baseline="s2-r64-kd", lever="2"),
    "s2-r64-reuters2": Variant("2 layers, r=64, KD + Reuters transfer set x2", 2, rank=64,
                               params={**REUTERS_X, "transfer_ratio": "2"}, baseline="s2-r64-kd", lever="2"),
    "s2-r64-reuters4": Variant("2 layers, r=64, KD + Reuters transfer set x4", 2, rank=64,
                               params={**REUTERS_X, "transfer_ratio": "4"}, baseline="s2-r64-kd", lever="2"),
    "s2-same-reuters1": Variant("2 layers, teacher vocabulary, KD + Reuters transfer set x1", 2, params=REUTERS_X,
                                baseline="s2-same-kd", lever="2"),
    "s2-r96-reuters1": Variant("2 layers, r=96, KD + Reuters transfer set x1", 2, rank=96, params=REUTERS_X,
                               baseline="s2-r96-kd", lever="2"),
    "s2-r64-mix": Variant("2 layers, r=64, KD + Reuters x1 + augmented x1", 2, rank=64,
                          params={"transfer_data": f"augment,{REUTERS}", "transfer_ratio": "1"},
                          baseline="s2-r64-kd", lever="2"),
    "s2-dom8k-reuters1": Variant("2 layers, domain vocabulary 8k, KD + Reuters transfer set x1", 2, "trim8k",
                                 params=REUTERS_X, baseline="s2-dom8k-kd", lever="2"),
    # 1: a stronger teacher signal
    "s2-r64-ensemble": Variant("2 layers, r=64, KD from the ensemble of the teachers", 2, rank=64,
                               teacher="ensemble", baseline="s2-r64-kd", lever="1"),
    # 3: the teacher adapted on Reuters-21578 before fine-tuning
    "s2-r64-dapt": Variant("2 layers, r=64, KD from the Reuters-adapted teacher", 2, rank=64, teacher="dapt",
                           baseline="s2-r64-kd", lever="3"),
    # 4: hidden-state KD, with the layer map of the cut and with the default one
    "s2-r64-hidden-kept": Variant("2 layers, r=64, KD + hidden MSE, layer map kept (1:1, 2:4)", 2, rank=64,
                                  params={"hidden_weight": "1", "hidden_layers": "kept"},
                                  baseline="s2-r64-kd", lever="4"),
    "s2-r64-hidden-emb": Variant("2 layers, r=64, KD + hidden MSE on the embedding output and the kept layers "
                                 "(0:0, 1:1, 2:4)", 2, rank=64,
                                 params={"hidden_weight": "1", "hidden_layers": "0:0,1:1,2:4"},
                                 baseline="s2-r64-kd", lever="4"),
    "s2-r64-hidden-uniform": Variant("2 layers, r=64, KD + hidden MSE, layer map uniform (1:3, 2:6)", 2, rank=64,
                                     params={"hidden_weight": "1", "hidden_layers": "uniform"},
                                     baseline="s2-r64-kd", lever="4"),
    # 6: a vocabulary chosen for coverage (trimmed on the train split plus Reuters-21578)
    "s2-cov8k-kd": Variant("2 layers, coverage vocabulary 8k (trim on train + Reuters), KD", 2, "cov8k",
                           baseline="s2-dom8k-kd", lever="6"),
    "s2-dom8k-pvt": Variant("2 layers, domain vocabulary 8k, PVT embeddings, KD", 2, "trim8k",
                            params={"vocab_transfer": "pvt"}, baseline="s2-dom8k-kd", lever="6"),
    # depth: the speed the target asks for
    "s1-r64-reuters1": Variant("1 layer, r=64, KD + Reuters transfer set x1", 1, rank=64, params=REUTERS_X,
                               baseline="s2-r64-reuters1", lever="depth"),
    "s3-r64-reuters1": Variant("3 layers, r=64, KD + Reuters transfer set x1", 3, rank=64, params=REUTERS_X,
                               baseline="s2-r64-reuters1", lever="depth"),
    "s3-r40-reuters1": Variant("3 layers, r=40 (the parameters of 2 layers at r=96), KD + Reuters x1", 3, rank=40,
                               params=REUTERS_X, baseline="s2-r96-reuters1", lever="depth"),
    # the factorisation's subspace chosen by token frequency in the training text (train split + transfer set)
    "s2-r64w-kd": Variant("2 layers, r=64 weighted by token frequency, KD", 2, rank=64,
                          params={"embedding_weights": "frequency"}, baseline="s2-r64-kd", lever="5"),
    "s3-r40w-reuters1": Variant("3 layers, r=40 weighted by token frequency, KD + Reuters x1", 3, rank=40,
                                params={**REUTERS_X, "embedding_weights": "frequency"},
                                baseline="s3-r40-reuters1", lever="5"),
    "s3-r96w-f768-reuters1": Variant("3 layers, feed-forward 768, r=96 weighted by token frequency, KD + Reuters x1",
                                     3, rank=96, ffn=768, params={**REUTERS_X, "embedding_weights": "frequency"},
                                     baseline="s3-r96-f768-reuters1", lever="5"),
    # the best student with more teacher-labelled news, and with the ensemble of the teachers
    "s3-r96w-f768-reuters4": Variant("3 layers, feed-forward 768, r=96 weighted, KD + Reuters x4", 3, rank=96, ffn=768,
                                     params={**REUTERS_X, "transfer_ratio": "4", "embedding_weights": "frequency"},
                                     baseline="s3-r96w-f768-reuters1", lever="2"),
    "s3-r96w-f768-mix": Variant("3 layers, feed-forward 768, r=96 weighted, KD + Reuters x1 + augmented x1", 3,
                                rank=96, ffn=768, params={"transfer_data": f"augment,{REUTERS}", "transfer_ratio": "1",
                                                          "embedding_weights": "frequency"},
                                baseline="s3-r96w-f768-reuters1", lever="2"),
    "s3-r96w-f768-ensemble": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble of the "
                                     "teachers + Reuters x1", 3, rank=96, ffn=768, teacher="ensemble",
                                     params={**REUTERS_X, "embedding_weights": "frequency"},
                                     baseline="s3-r96w-f768-reuters1", lever="1"),
    "s3-r96w-f768-ensemble-dapt": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble of the "
                                          "teachers and the Reuters-adapted teacher + Reuters x1", 3, rank=96, ffn=768,
                                          teacher="ensemble-dapt",
                                          params={**REUTERS_X, "embedding_weights": "frequency"},
                                          baseline="s3-r96w-f768-ensemble", lever="1"),
    # 4 at 3 layers: hidden-state MSE on the map that ends on the teacher's last layer (1:2, 2:4, 3:6), whose
    # states the kept classifier reads: with the logits, or alone first and the logits after (two steps)
    "s3-r96w-f768-hidden": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE (1:2, 2:4, 3:6) + "
                                   "Reuters x1", 3, rank=96, ffn=768,
                                   params=HIDDEN_UNIFORM,
                                   baseline="s3-r96w-f768-reuters1", lever="4"),
    "s3-r96w-f768-hidden-only": Variant("3 layers, feed-forward 768, r=96 weighted, hidden MSE alone (1:2, 2:4, 3:6) "
                                        "+ Reuters x1, the teacher's classifier kept", 3, rank=96, ffn=768,
                                        params={**REUTERS_X, "embedding_weights": "frequency", **HIDDEN_ONLY},
                                        baseline="s3-r96w-f768-reuters1", lever="4"),
    "s3-r96w-f768-two-step": Variant("3 layers, feed-forward 768, r=96 weighted: hidden MSE alone, then KD "
                                     "(+ Reuters x1 in both steps)", 3, rank=96, ffn=768, params=REUTERS_X,
                                     init="s3-r96w-f768-hidden-only", baseline="s3-r96w-f768-reuters1", lever="4"),
    # the hidden-state loss at other weights (1 above), and added to the ensemble's logits
    "s3-r96w-f768-hidden-w0.3": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE at weight 0.3 + "
                                        "Reuters x1", 3, rank=96, ffn=768,
                                        params={**HIDDEN_UNIFORM, "hidden_weight": "0.3"},
                                        baseline="s3-r96w-f768-hidden", lever="4"),
    "s3-r96w-f768-hidden-w3": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE at weight 3 + "
                                      "Reuters x1", 3, rank=96, ffn=768,
                                      params={**HIDDEN_UNIFORM, "hidden_weight": "3"},
                                      baseline="s3-r96w-f768-hidden", lever="4"),
    "s3-r96w-f768-ensemble-hidden": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble of the "
                                            "teachers + hidden MSE (the first teacher's states) + Reuters x1", 3,
                                            rank=96, ffn=768, teacher="ensemble", params=HIDDEN_UNIFORM,
                                            baseline="s3-r96w-f768-hidden", lever="1"),
    # 2 with 4: the Reuters sentences in which the teacher finds the most entity words, out of 4x as many drawn
    "s3-r96w-f768-hidden-ent4": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + Reuters x1 "
                                        "chosen for entity words out of x4", 3, rank=96, ffn=768,
                                        params={**HIDDEN_UNIFORM, "transfer_select": "entities",
                                                "transfer_pool": "4"},
                                        baseline="s3-r96w-f768-hidden", lever="2"),
    # 4 with attention: the KL between the attention maps of the mapped layers, which the factorised student can
    # learn because it keeps the teacher's tokenizer (the teacher then runs beside the student: nothing cached)
    "s3-r96w-f768-hidden-att": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + attention KL "
                                       "(1:2, 2:4, 3:6) + Reuters x1", 3, rank=96, ffn=768,
                                       params={**HIDDEN_UNIFORM, "attention_weight": "1", "cache_teacher": "false"},
                                       baseline="s3-r96w-f768-hidden", lever="4"),
    "s3-r96w-f768-hidden-att0.1": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + attention KL "
                                          "at weight 0.1 + Reuters x1", 3, rank=96, ffn=768,
                                          params={**HIDDEN_UNIFORM, "attention_weight": "0.1",
                                                  "cache_teacher": "false"},
                                          baseline="s3-r96w-f768-hidden", lever="4"),
    # control for the two above: the same training with the teacher run beside the student instead of cached
    "s3-r96w-f768-hidden-live": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + Reuters x1, "
                                        "the teacher run at every step (not cached)", 3, rank=96, ffn=768,
                                        params={**HIDDEN_UNIFORM, "cache_teacher": "false"},
                                        baseline="s3-r96w-f768-hidden", lever="control"),
    # the same pool, half of the set chosen for entity words and half kept as drawn (newswire's name-free sentences)
    "s3-r96w-f768-hidden-ent4-half": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + Reuters "
                                             "x1, half chosen for entity words out of x4, half at random", 3,
                                             rank=96, ffn=768,
                                             params={**HIDDEN_UNIFORM, "transfer_select": "entities",
                                                     "transfer_pool": "4", "transfer_entity_share": "0.5"},
                                             baseline="s3-r96w-f768-hidden", lever="2"),
    # 3 for the student: the hidden states alone on 4x as much Reuters text (3 epochs: 1.25 times the updates of
    # the 6-epoch budget on x1, over 2.5 times the distinct text), then the best student's training from there
    "s3-r96w-f768-hidden-only-r4": Variant("3 layers, feed-forward 768, r=96 weighted, hidden MSE alone (1:2, 2:4, "
                                           "3:6) on Reuters x4 for 3 epochs, the teacher's classifier kept", 3,
                                           rank=96, ffn=768,
                                           params={**REUTERS_X, "transfer_ratio": "4", "epochs": "3",
                                                   "embedding_weights": "frequency", **HIDDEN_ONLY},
                                           baseline="s3-r96w-f768-hidden-only", lever="3"),
    "s3-r96w-f768-r4-hidden": Variant("3 layers, feed-forward 768, r=96 weighted: hidden MSE alone on Reuters x4, "
                                      "then KD + hidden MSE + Reuters x1", 3, rank=96, ffn=768,
                                      params={**REUTERS_X, "hidden_weight": "1", "hidden_layers": "uniform"},
                                      init="s3-r96w-f768-hidden-only-r4", baseline="s3-r96w-f768-hidden", lever="3"),
    # the logits' temperature on either side of the default 2 (the search's best Pareto trial chose 2.2 for a
    # 4-layer student): seed-42 screens
    "s3-r96w-f768-hidden-t1": Variant("3 layers, feed-forward 768, r=96 weighted, KD at temperature 1 + hidden MSE "
                                      "+ Reuters x1", 3, rank=96, ffn=768,
                                      params={**HIDDEN_UNIFORM, "temperature": "1"},
                                      baseline="s3-r96w-f768-hidden", lever="7"),
    "s3-r96w-f768-hidden-t4": Variant("3 layers, feed-forward 768, r=96 weighted, KD at temperature 4 + hidden MSE "
                                      "+ Reuters x1", 3, rank=96, ffn=768,
                                      params={**HIDDEN_UNIFORM, "temperature": "4"},
                                      baseline="s3-r96w-f768-hidden", lever="7"),
    # capacity: a fourth layer paid for by narrower feed-forward blocks and rank 80 (the same 30%)
    "s4-r80w-f512-hidden": Variant("4 layers, feed-forward 512, r=80 weighted, KD + hidden MSE + Reuters x1", 4,
                                   rank=80, ffn=512, params=HIDDEN_UNIFORM, baseline="s3-r96w-f768-hidden",
                                   lever="capacity"),
    # 5 again: the rows of the 4,000 most frequent tokens kept exact, the rank (46: the same parameters as 96)
    # spent on the others; 4,000 chosen on validation F1 before training (benchmarks/embedding_weights.py)
    "s3-r46w-x4000-f768-hidden": Variant("3 layers, feed-forward 768, r=46 weighted with the 4,000 most frequent "
                                         "rows exact (r=96's parameters), KD + hidden MSE + Reuters x1", 3, rank=46,
                                         exact_rows=4000, ffn=768, params=HIDDEN_UNIFORM,
                                         baseline="s3-r96w-f768-hidden", lever="5"),
    # ceilings: the best student's training with one of its three cuts undone (above the 30% budget), to place the
    # gap to the teacher in the embedding, the feed-forward width or the depth
    "s3-f768-hidden": Variant("3 layers, feed-forward 768, the teacher's embeddings (not factorised), KD + hidden "
                              "MSE + Reuters x1", 3, ffn=768,
                              params={**REUTERS_X, "hidden_weight": "1", "hidden_layers": "uniform"},
                              baseline="s3-r96w-f768-hidden", lever="ceiling"),
    "s3-r96w-hidden": Variant("3 layers, the teacher's feed-forward width (1536), r=96 weighted, KD + hidden MSE + "
                              "Reuters x1", 3, rank=96, params=HIDDEN_UNIFORM, baseline="s3-r96w-f768-hidden",
                              lever="ceiling"),
    "s6-r96w-hidden": Variant("6 layers (all the teacher's), r=96 weighted, KD + hidden MSE + Reuters x1", 6,
                              rank=96, params=HIDDEN_UNIFORM, baseline="s3-r96w-f768-hidden", lever="ceiling"),
    # 5 and 6 again: rank for the rare pieces. The factorisation's row weights counted on all 2.5M words of
    # Reuters-21578 as well as the training text (wc), and with it the teacher's vocabulary trimmed to the pieces
    # of the training split and all of Reuters (20k entries), the rows saved paying for rank 145 (r=96's parameters)
    "s3-r96wc-f768-hidden": Variant("3 layers, feed-forward 768, r=96 weighted by token counts on the training "
                                    "text and all of Reuters, KD + hidden MSE + Reuters x1", 3, rank=96, ffn=768,
                                    params={**HIDDEN_UNIFORM, "embedding_weights_text": str(REUTERS)},
                                    baseline="s3-r96w-f768-hidden", lever="5"),
    "s3-cov20k-r145wc-f768-hidden": Variant("3 layers, feed-forward 768, the teacher's vocabulary trimmed to the "
                                            "20k pieces of train + all of Reuters, r=145 (r=96's parameters at the "
                                            "full vocabulary) weighted by counts on them, KD + hidden MSE + "
                                            "Reuters x1", 3, "cov20k", rank=145, ffn=768,
                                            params={**HIDDEN_UNIFORM, "embedding_weights_text": str(REUTERS)},
                                            baseline="s3-r96w-f768-hidden", lever="6"),
    # capacity again: all six layers (the ceiling's +2.7) paid for by feed-forward blocks of 320 units and rank 48
    "s6-r48w-f320-hidden": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + Reuters x1", 6,
                                   rank=48, ffn=320, params=HIDDEN_UNIFORM, baseline="s3-r96w-f768-hidden",
                                   lever="capacity"),
    # the same six narrow layers cut from the trained ceiling instead of the teacher: its feed-forward blocks narrowed
    # to their 320 largest units and its rank-96 factors factorised further to 48, then trained as the row above
    "s6-r48w-f320-pruned-hidden": Variant("6 layers, feed-forward 320, r=48 weighted, cut from the trained six-layer "
                                          "ceiling (s6-r96w-hidden), KD + hidden MSE + Reuters x1", 6, rank=48,
                                          ffn=320, params=HIDDEN_UNIFORM, init="s6-r96w-hidden",
                                          baseline="s6-r48w-f320-hidden", lever="capacity"),
    # its control for training steps: the six narrow layers cut from the teacher and trained for 12 epochs, the
    # epochs of the ceiling and of the cut row together
    "s6-r48w-f320-hidden-e12": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + Reuters x1, "
                                       "12 epochs (patience 3)", 6, rank=48, ffn=320,
                                       params={**HIDDEN_UNIFORM, "epochs": "12", "patience": "3"},
                                       baseline="s6-r48w-f320-hidden", lever="budget"),
    # the same 12 epochs without early stopping: patience 3 can end a run while the learning rate is still high
    "s6-r48w-f320-hidden-e12-full": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + Reuters "
                                            "x1, 12 epochs, no early stopping", 6, rank=48, ffn=320,
                                            params={**HIDDEN_UNIFORM, "epochs": "12", "patience": "12"},
                                            baseline="s6-r48w-f320-hidden-e12", lever="budget"),
    # quantization-aware training: the 12-epoch student trained one more epoch with the rounding of its int8 model,
    # and its control, the same epoch without it
    "s6-r48w-f320-hidden-e12-qat": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 epoch of "
                                           "quantization-aware training (KD + hidden MSE + Reuters x1)", 6, rank=48,
                                           ffn=320, params={**QAT_EPOCH, "quant_aware": "true"},
                                           init="s6-r48w-f320-hidden-e12", baseline="s6-r48w-f320-hidden-e12-ft",
                                           lever="qat"),
    "s6-r48w-f320-hidden-e12-ft": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 more epoch "
                                          "(KD + hidden MSE + Reuters x1)", 6, rank=48, ffn=320, params=QAT_EPOCH,
                                          init="s6-r48w-f320-hidden-e12", baseline="s6-r48w-f320-hidden-e12",
                                          lever="budget"),
    # does more training add up: the 12-epoch student trained 12 epochs more from where it ended (the learning rate
    # warmed up and decayed again, no early stopping)
    "s6-r48w-f320-hidden-e12-full-r12": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 12 more "
                                                "from its student (schedule restarted), KD + hidden MSE + Reuters x1, "
                                                "no early stopping", 6, rank=48, ffn=320,
                                                params={**QAT_EPOCH, "epochs": "12", "patience": "12"},
                                                init="s6-r48w-f320-hidden-e12-full",
                                                baseline="s6-r48w-f320-hidden-e12-full", lever="budget"),
    # one more epoch straight after the 12-epoch student: does a last short schedule pay without the 12 between
    "s6-r48w-f320-hidden-e12-full-ft": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 more "
                                               "(KD + hidden MSE + Reuters x1)", 6, rank=48, ffn=320,
                                               params=QAT_EPOCH, init="s6-r48w-f320-hidden-e12-full",
                                               baseline="s6-r48w-f320-hidden-e12-full", lever="budget"),
    # quantization-aware training where the simulated rounding is exactly ONNX Runtime's (7-bit weights,
    # ``reduce_range``): one more epoch of the 24-epoch student with it, and the same epoch without it
    "s6-r48w-f320-hidden-e12-full-r12-ft": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, then 1 "
                                                   "more (KD + hidden MSE + Reuters x1)", 6, rank=48, ffn=320,
                                                   params=QAT_EPOCH, init="s6-r48w-f320-hidden-e12-full-r12",
                                                   baseline="s6-r48w-f320-hidden-e12-full-r12", lever="budget"),
    "s6-r48w-f320-hidden-e12-full-r12-qat7": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, then 1 "
                                                     "epoch of quantization-aware training with 7-bit weights "
                                                     "(exact simulation; KD + hidden MSE + Reuters x1)", 6, rank=48,
                                                     ffn=320, params={**QAT_EPOCH, "quant_aware": "true",
                                                                      "quant_reduce_range": "true"},
                                                     init="s6-r48w-f320-hidden-e12-full-r12",
                                                     baseline="s6-r48w-f320-hidden-e12-full-r12-ft", lever="qat"),
    # how far the kernels alone move a run: the 12-epoch student computed again with torch's, oneMKL's and
    # oneDNN's kernels pinned to AVX2 (the same parameters and seed; what another CPU does to a run)
    "s6-r48w-f320-hidden-e12-full-avx2": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + "
                                                 "Reuters x1, 12 epochs, no early stopping, kernels pinned to AVX2",
                                                 6, rank=48, ffn=320,
                                                 params={**HIDDEN_UNIFORM, "epochs": "12", "patience": "12"},
                                                 environment=PORTABLE_KERNELS,
                                                 baseline="s6-r48w-f320-hidden-e12-full", lever="control"),
    # selection: validation cut as whole runs of 20 consecutive sentences (stand-ins for FiNER-ORD's articles)
    "s3-r96-f768-reuters1-b20": Variant("3 layers, feed-forward 768, r=96, KD + Reuters x1, validation in blocks of "
                                        "20 sentences", 3, rank=96, ffn=768, params={**REUTERS_X, "split_blocks": "20"},
                                        baseline="s3-r96-f768-reuters1", lever="selection"),
    "s3-r96w-f768-reuters1-b20": Variant("3 layers, feed-forward 768, r=96 weighted, KD + Reuters x1, validation in "
                                         "blocks of 20 sentences", 3, rank=96, ffn=768,
                                         params={**REUTERS_X, "embedding_weights": "frequency", "split_blocks": "20"},
                                         baseline="s3-r96-f768-reuters1-b20", lever="5"),
    # budget: the 3-layer student's validation F1 still rises at its sixth and last epoch
    "s3-r40-reuters1-e10": Variant("3 layers, r=40, KD + Reuters x1, 10 epochs (patience 3)", 3, rank=40,
                                   params={**REUTERS_X, "epochs": "10", "patience": "3"},
                                   baseline="s3-r40-reuters1", lever="budget"),
    # width: narrower feed-forward blocks pay for a layer (4 at rank 56) or for embedding rank (3 at rank 96 or 112)
    "s4-r56-f768-reuters1": Variant("4 layers, feed-forward 768 wide, r=56, KD + Reuters x1", 4, rank=56, ffn=768,
                                    params=REUTERS_X, baseline="s3-r40-reuters1", lever="width"),
    "s3-r96-f768-reuters1": Variant("3 layers, feed-forward 768 wide, r=96, KD + Reuters x1", 3, rank=96, ffn=768,
                                    params=REUTERS_X, baseline="s3-r40-reuters1", lever="width"),
    "s3-r112w-f512-reuters1": Variant("3 layers, feed-forward 512, r=112 weighted by token frequency, KD + Reuters "
                                      "x1", 3, rank=112, ffn=512,
                                      params={**REUTERS_X, "embedding_weights": "frequency"},
                                      baseline="s3-r96w-f768-reuters1", lever="width"),
    # speed without depth: ONNX Runtime dynamic int8 of trained students (the quantize stage, seed by seed)
    "s2-r64-reuters1-int8": Variant("2 layers, r=64, KD + Reuters x1, ONNX Runtime int8", 2, rank=64,
                                    baseline="s2-r64-reuters1", lever="int8", quantize="onnx-int8"),
    "s2-r96-reuters1-int8": Variant("2 layers, r=96, KD + Reuters x1, ONNX Runtime int8", 2, rank=96,
                                    baseline="s2-r96-reuters1", lever="int8", quantize="onnx-int8"),
    "s3-r40-reuters1-int8": Variant("3 layers, r=40, KD + Reuters x1, ONNX Runtime int8", 3, rank=40,
                                    baseline="s3-r40-reuters1", lever="int8", quantize="onnx-int8"),
    "s3-r64-reuters1-int8": Variant("3 layers, r=64, KD + Reuters x1, ONNX Runtime int8", 3, rank=64,
                                    baseline="s3-r64-reuters1", lever="int8", quantize="onnx-int8"),
    "s4-r56-f768-reuters1-int8": Variant("4 layers, feed-forward 768, r=56, KD + Reuters x1, ONNX Runtime int8", 4,
                                         rank=56, ffn=768, baseline="s4-r56-f768-reuters1", lever="int8",
                                         quantize="onnx-int8"),
    "s3-r96-f768-reuters1-int8": Variant("3 layers, feed-forward 768, r=96, KD + Reuters x1, ONNX Runtime int8", 3,
                                         rank=96, ffn=768, baseline="s3-r96-f768-reuters1", lever="int8",
                                         quantize="onnx-int8"),
    "s3-r96w-f768-reuters1-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD + Reuters x1, ONNX Runtime "
                                          "int8", 3, rank=96, ffn=768, baseline="s3-r96w-f768-reuters1", lever="int8",
                                          quantize="onnx-int8"),
    "s3-r96w-f768-ensemble-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble + Reuters "
                                          "x1, ONNX Runtime int8", 3, rank=96, ffn=768,
                                          baseline="s3-r96w-f768-ensemble", lever="int8", quantize="onnx-int8"),
    "s3-r96w-f768-ensemble-dapt-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble and "
                                               "the adapted teacher + Reuters x1, ONNX Runtime int8", 3, rank=96,
                                               ffn=768, baseline="s3-r96w-f768-ensemble-dapt", lever="int8",
                                               quantize="onnx-int8"),
    "s3-r96w-f768-hidden-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE + Reuters x1, "
                                        "ONNX Runtime int8", 3, rank=96, ffn=768, baseline="s3-r96w-f768-hidden",
                                        lever="int8", quantize="onnx-int8"),
    "s3-r96w-f768-hidden-w3-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD + hidden MSE at weight 3 + "
                                           "Reuters x1, ONNX Runtime int8", 3, rank=96, ffn=768,
                                           baseline="s3-r96w-f768-hidden-w3", lever="int8", quantize="onnx-int8"),
    "s3-r96w-f768-two-step-int8": Variant("3 layers, feed-forward 768, r=96 weighted: hidden MSE, then KD (+ Reuters "
                                          "x1), ONNX Runtime int8", 3, rank=96, ffn=768,
                                          baseline="s3-r96w-f768-two-step", lever="int8", quantize="onnx-int8"),
    "s3-r96w-f768-r4-hidden-int8": Variant("3 layers, feed-forward 768, r=96 weighted: hidden MSE alone on Reuters "
                                           "x4, then KD + hidden MSE + Reuters x1, ONNX Runtime int8", 3, rank=96,
                                           ffn=768, baseline="s3-r96w-f768-r4-hidden", lever="int8",
                                           quantize="onnx-int8"),
    "s3-r46w-x4000-f768-hidden-int8": Variant("3 layers, feed-forward 768, r=46 weighted with 4,000 rows exact, KD "
                                              "+ hidden MSE + Reuters x1, ONNX Runtime int8", 3, rank=46,
                                              exact_rows=4000, ffn=768, baseline="s3-r46w-x4000-f768-hidden",
                                              lever="int8", quantize="onnx-int8"),
    "s6-r48w-f320-hidden-int8": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + Reuters x1, "
                                        "ONNX Runtime int8", 6, rank=48, ffn=320, baseline="s6-r48w-f320-hidden",
                                        lever="int8", quantize="onnx-int8"),
    "s6-r48w-f320-pruned-hidden-int8": Variant("6 layers, feed-forward 320, r=48 weighted, cut from the trained "
                                               "ceiling, KD + hidden MSE + Reuters x1, ONNX Runtime int8", 6, rank=48,
                                               ffn=320, baseline="s6-r48w-f320-pruned-hidden", lever="int8",
                                               quantize="onnx-int8"),
    "s6-r48w-f320-hidden-e12-int8": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + Reuters "
                                            "x1, 12 epochs (patience 3), ONNX Runtime int8", 6, rank=48, ffn=320,
                                            baseline="s6-r48w-f320-hidden-e12", lever="int8", quantize="onnx-int8"),
    "s6-r48w-f320-hidden-e12-full-int8": Variant("6 layers, feed-forward 320, r=48 weighted, KD + hidden MSE + "
                                                 "Reuters x1, 12 epochs, no early stopping, ONNX Runtime int8", 6,
                                                 rank=48, ffn=320, baseline="s6-r48w-f320-hidden-e12-full",
                                                 lever="int8", quantize="onnx-int8"),
    "s6-r48w-f320-hidden-e12-qat-int8": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 "
                                                "epoch of quantization-aware training, ONNX Runtime int8", 6, rank=48,
                                                ffn=320, baseline="s6-r48w-f320-hidden-e12-qat", lever="int8",
                                                quantize="onnx-int8", versus=("s6-r48w-f320-hidden-e12-ft-int8",
                                                                              "s6-r48w-f320-hidden-e12-int8")),
    "s6-r48w-f320-hidden-e12-ft-int8": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 more "
                                               "epoch, ONNX Runtime int8", 6, rank=48, ffn=320,
                                               baseline="s6-r48w-f320-hidden-e12-ft", lever="int8",
                                               quantize="onnx-int8"),
    "s6-r48w-f320-hidden-e12-full-r12-int8": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then "
                                                     "12 more from its student (schedule restarted), no early "
                                                     "stopping, ONNX Runtime int8", 6, rank=48, ffn=320,
                                                     baseline="s6-r48w-f320-hidden-e12-full-r12", lever="int8",
                                                     quantize="onnx-int8",
                                                     versus=("s6-r48w-f320-hidden-e12-full-int8",)),
    "s6-r48w-f320-hidden-e12-full-r12-int8r": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, ONNX "
                                                      "Runtime int8 with 7-bit weights", 6, rank=48, ffn=320,
                                                      baseline="s6-r48w-f320-hidden-e12-full-r12", lever="int8",
                                                      quantize="onnx-int8", params=REDUCED_RANGE,
                                                      versus=("s6-r48w-f320-hidden-e12-full-r12-int8",)),
    "s6-r48w-f320-hidden-e12-full-ft-int8": Variant("6 layers, feed-forward 320, r=48 weighted, 12 epochs, then 1 "
                                                    "more, ONNX Runtime int8", 6, rank=48, ffn=320,
                                                    baseline="s6-r48w-f320-hidden-e12-full-ft", lever="int8",
                                                    quantize="onnx-int8",
                                                    versus=("s6-r48w-f320-hidden-e12-full-int8",)),
    "s6-r48w-f320-hidden-e12-full-r12-ft-int8": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, then 1 "
                                                        "more, ONNX Runtime int8", 6, rank=48, ffn=320,
                                                        baseline="s6-r48w-f320-hidden-e12-full-r12-ft", lever="int8",
                                                        quantize="onnx-int8",
                                                        versus=("s6-r48w-f320-hidden-e12-full-r12-int8",)),
    "s6-r48w-f320-hidden-e12-full-r12-ft-int8r": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, then "
                                                         "1 more, ONNX Runtime int8 with 7-bit weights", 6, rank=48,
                                                         ffn=320, baseline="s6-r48w-f320-hidden-e12-full-r12-ft",
                                                         lever="int8", quantize="onnx-int8", params=REDUCED_RANGE),
    "s6-r48w-f320-hidden-e12-full-r12-qat7-int8r": Variant("6 layers, feed-forward 320, r=48 weighted, 24 epochs, "
                                                           "then 1 epoch of quantization-aware training with 7-bit "
                                                           "weights, ONNX Runtime int8 with 7-bit weights", 6,
                                                           rank=48, ffn=320,
                                                           baseline="s6-r48w-f320-hidden-e12-full-r12-qat7",
                                                           lever="int8", quantize="onnx-int8", params=REDUCED_RANGE,
                                                           versus=("s6-r48w-f320-hidden-e12-full-r12-ft-int8r",
                                                                   "s6-r48w-f320-hidden-e12-full-r12-int8")),
    "s3-r96w-f768-ensemble-hidden-int8": Variant("3 layers, feed-forward 768, r=96 weighted, KD from the ensemble + "
                                                 "hidden MSE + Reuters x1, ONNX Runtime int8", 3, rank=96, ffn=768,
                                                 baseline="s3-r96w-f768-ensemble-hidden", lever="int8",
                                                 quantize="onnx-int8"),
}
#: named selections of the matrix (``--variants``); ``all`` is every variant
SELECTIONS = {
    "core": "s2-dom8k-kd,s2-r64-kd,s2-r64-reuters1",
    "levers": "s2-same-kd,s2-r96-kd,s2-r128-kd,s2-dom8k-r64-kd,s2-r64-ensemble,s2-r64-hidden-kept,"
              "s2-r64-hidden-uniform,s2-r64-hidden-emb,s2-cov8k-kd,s2-dom8k-pvt,s2-r64-dapt,s2-dom8k-reuters1,"
              "s2-same-reuters1,s2-r96-reuters1,s2-r64-mix,s1-r64-reuters1,s3-r64-reuters1,s3-r40-reuters1,"
              "s4-r56-f768-reuters1,s3-r96-f768-reuters1,s3-r40-reuters1-e10,s2-r64w-kd,s3-r40w-reuters1,"
              "s3-r96w-f768-reuters1,s3-r112w-f512-reuters1,s3-r96w-f768-ensemble,s3-r96-f768-reuters1-b20,"
              "s3-r96w-f768-reuters1-b20,s3-r96w-f768-ensemble-dapt,s3-r96w-f768-hidden,s3-r96w-f768-hidden-only,"
              "s3-r96w-f768-two-step,s3-r96w-f768-hidden-w0.3,s3-r96w-f768-hidden-w3,s3-r96w-f768-ensemble-hidden",
    "curve": "s2-r64-reuters2,s2-r64-reuters4,s3-r96w-f768-reuters4,s3-r96w-f768-mix",
    "int8": "s2-r64-reuters1-int8,s2-r96-reuters1-int8,s3-r40-reuters1-int8,s3-r64-reuters1-int8,"
            "s4-r56-f768-reuters1-int8,s3-r96-f768-reuters1-int8,s3-r96w-f768-reuters1-int8,s3-r96w-f768-ensemble-int8,"
            "s3-r96w-f768-ensemble-dapt-int8,s3-r96w-f768-hidden-int8,s3-r96w-f768-two-step-int8,"
            "s3-r96w-f768-ensemble-hidden-int8",
    "width": "s4-r56-f768-reuters1,s3-r96-f768-reuters1,s3-r112w-f512-reuters1",
    "weighted": "s2-r64w-kd,s3-r40w-reuters1,s3-r96w-f768-reuters1",
    "blocks": "s3-r96-f768-reuters1-b20,s3-r96w-f768-reuters1-b20",
    "hidden": "s3-r96w-f768-reuters1,s3-r96w-f768-hidden,s3-r96w-f768-hidden-only,s3-r96w-f768-two-step,"
              "s3-r96w-f768-reuters1-int8,s3-r96w-f768-hidden-int8,s3-r96w-f768-two-step-int8",
    "hidden-more": "s3-r96w-f768-reuters1,s3-r96w-f768-hidden,s3-r96w-f768-hidden-w0.3,s3-r96w-f768-hidden-w3,"
                   "s3-r96w-f768-ensemble-hidden,s3-r96w-f768-hidden-ent4,s3-r96w-f768-hidden-int8,"
                   "s3-r96w-f768-ensemble-hidden-int8,s3-r96w-f768-hidden-w3-int8,s3-r96w-f768-hidden-ent4-half,"
                   "s3-r96w-f768-hidden-att,s3-r96w-f768-hidden-att0.1,s3-r96w-f768-hidden-live,s4-r80w-f512-hidden,"
                   "s3-r96w-f768-hidden-only-r4,s3-r96w-f768-r4-hidden,s3-r96w-f768-r4-hidden-int8,"
                   "s3-r96w-f768-hidden-t1,s3-r96w-f768-hidden-t4,s3-r46w-x4000-f768-hidden,"
                   "s3-r46w-x4000-f768-hidden-int8,s3-f768-hidden,s3-r96w-hidden,s6-r96w-hidden,"
                   "s3-r96wc-f768-hidden,s3-cov20k-r145wc-f768-hidden,s6-r48w-f320-hidden,"
                   "s6-r48w-f320-hidden-int8,s6-r48w-f320-pruned-hidden,s6-r48w-f320-pruned-hidden-int8,"
                   "s6-r48w-f320-hidden-e12,s6-r48w-f320-hidden-e12-int8",
    "qat": "s6-r48w-f320-hidden-e12,s6-r48w-f320-hidden-e12-int8,s6-r48w-f320-hidden-e12-full,"
           "s6-r48w-f320-hidden-e12-full-int8,s6-r48w-f320-hidden-e12-ft,"
           "s6-r48w-f320-hidden-e12-ft-int8,s6-r48w-f320-hidden-e12-qat,s6-r48w-f320-hidden-e12-qat-int8",
    "longer": "s6-r48w-f320-hidden-e12-full,s6-r48w-f320-hidden-e12-full-int8,s6-r48w-f320-hidden-e12-full-r12,"
              "s6-r48w-f320-hidden-e12-full-r12-int8,s6-r48w-f320-hidden-e12-full-avx2,"
              "s6-r48w-f320-hidden-e12-full-r12-int8r,s6-r48w-f320-hidden-e12-full-r12-ft,"
              "s6-r48w-f320-hidden-e12-full-r12-ft-int8r,s6-r48w-f320-hidden-e12-full-r12-qat7,"
              "s6-r48w-f320-hidden-e12-full-r12-qat7-int8r,s6-r48w-f320-hidden-e12-full-r12-ft-int8,"
              "s6-r48w-f320-hidden-e12-full-ft,s6-r48w-f320-hidden-e12-full-ft-int8",
}


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def study_key(entry: str, params: dict[str, str]) -> str:
    """The key a study run is found by: its stage and parameters (not the code version)."""
    text = json.dumps({"entry": entry, "params": params}, sort_keys=True)
    return "study-" + hashlib.sha256(text.encode()).hexdigest()[:20]


def with_device(entry: str, params: dict[str, str], device: str) -> dict[str, str]:
    """``params`` with the training device, for the stages that take one."""
    return params if entry in ("train_tokenizer", "quantize") else {**params, "device": device}


def run_stage(entry: str, experiment: str, name: str, params: dict[str, str], *, reuse_only: bool = False,
              device: str = "auto") -> str:
    """A finished run of ``entry`` with ``params`` (reused, or launched through ``mlflow run``); its id."""
    params = with_device(entry, params, device)
    key = study_key(entry, params)
    if not reuse_only:
        wait_while_running(experiment, key)
    done = finished_run(experiment, key)
    if done is not None:
        return done.info.run_id
    if reuse_only:
        raise LookupError(f"{experiment}/{name}: no finished run (run the study without --collect-only)")
    log = REPO / "benchmarks" / "results" / "logs" / f"{experiment}-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"[run] {experiment}/{name} (log: {log.relative_to(REPO)})", flush=True)
    started = time.perf_counter()
    environment = json.loads(params.get(ENV_PARAM, "{}"))
    params = {k: v for k, v in params.items() if k != ENV_PARAM}
    run_id = launch(entry, experiment, name, params, key, log=log, environment=environment)
    print(f"[done] {experiment}/{name} in {time.perf_counter() - started:.0f} s", flush=True)
    return run_id


def teacher_model(kind: str, refs: dict[str, str]) -> str:
    """The ``teacher`` parameter of a ``Variant.teacher`` kind: one model URI, or comma-separated URIs
    for an ensemble; LookupError when the teachers it needs are not in ``refs`` yet."""
    teachers = [refs[k] for k in sorted(refs) if k.startswith("teacher-")]
    if kind == "ensemble" and len(teachers) < 2:
        raise LookupError(f"an ensemble teacher needs 2 or more teachers, the study has {len(teachers)}")
    if kind in ("dapt", "ensemble-dapt") and "dapt" not in refs:
        raise LookupError("the adapted teacher is not trained yet")
    dapt = refs.get("dapt", "")
    return {"primary": teachers[0], "ensemble": ",".join(teachers), "dapt": dapt,
            "ensemble-dapt": ",".join([*teachers, dapt])}[kind]


def prepare(args: argparse.Namespace, variants: list[str]) -> dict[str, str]:
    """Teacher model URIs (``teacher-0``... and ``dapt``), the ensemble's evaluation run and the domain
    tokenizers the chosen variants need."""
    experiment, data = args.experiment, args.data
    refs: dict[str, str] = {}
    teachers = [t for t in args.teachers.split(",") if t] if args.teachers else []
    if not teachers:
        for seed in args.teacher_seeds.split(","):
            run_id = run_stage("finetune", experiment, f"teacher-s{seed}", {
                "data": data, "seed": seed, "epochs": "6", "learning_rate": "1e-4", "patience": "2",
                "measure_resources": "false"}, reuse_only=args.collect_only, device=args.device)
            teachers.append(f"runs:/{run_id}/model")
    for i, uri in enumerate(teachers):
        refs[f"teacher-{i}"] = uri
    if len(teachers) > 1:
        refs["ensemble-eval"] = run_stage("evaluate", experiment, "teacher-ensemble-eval", {
            "data": data, "model": teacher_model("ensemble", refs), "measure_resources": "false"},
            reuse_only=args.collect_only, device=args.device)
    if args.dapt or any(VARIANTS[v].teacher in ("dapt", "ensemble-dapt") for v in variants):
        try:
            refs["dapt"] = args.dapt_teacher or dapt_teacher(args)
        except LookupError as missing:  # --collect-only: no adapted teacher on this corpus yet
            print(f"[skip] {missing}", flush=True)
    if "dapt" in refs and any(VARIANTS[v].teacher == "ensemble-dapt" for v in variants):
        refs["ensemble-dapt-eval"] = run_stage("evaluate", experiment, "teacher-ensemble-dapt-eval", {
            "data": data, "model": teacher_model("ensemble-dapt", refs), "measure_resources": "false"},
            reuse_only=args.collect_only, device=args.device)
    vocabularies = {VARIANTS[v].vocab for v in variants} - {"same"}
    for vocab in sorted(vocabularies):
        params = {"data": data, "method": "trim", "vocab_size": "8000"}
        if vocab == "cov8k":
            params.update(text_data=str(REUTERS), max_text_lines=str(args.transfer_lines))
        elif vocab == "cov20k":  # every line of Reuters-21578: the pieces the counted factorisation weighs
            params.update(vocab_size="20000", text_data=str(REUTERS), max_text_lines="0")
        try:
            run_id = run_stage("train_tokenizer", experiment, f"tokenizer-{vocab}", params,
                               reuse_only=args.collect_only)
        except LookupError as missing:  # --collect-only: the variants on this vocabulary have no runs yet
            print(f"[skip] {missing}", flush=True)
            continue
        refs[f"tokenizer-{vocab}"] = f"runs:/{run_id}/tokenizer"
    return refs


def dapt_teacher(args: argparse.Namespace) -> str:
    """The packaged teacher adapted on Reuters-21578 (head warmed up first), then fine-tuned (seed 42)."""
    adapted = run_stage("adapt", args.experiment, "adapt-teacher-reuters", {
        "data": args.data, "text_data": str(REUTERS), "max_text_lines": "8000", "head_warmup_sentences": "2000",
        "epochs": "1", "batch_size": "32", "max_length": "128", "seed": "42"},
        reuse_only=args.collect_only, device=args.device)
    run_id = run_stage("finetune", args.experiment, "teacher-dapt-s42", {
        "data": args.data, "model": f"runs:/{adapted}/model", "seed": "42", "epochs": "6", "learning_rate": "1e-4",
        "patience": "2", "measure_resources": "false"}, reuse_only=args.collect_only, device=args.device)
    return f"runs:/{run_id}/model"


def variant_stage(key: str, refs: dict[str, str], seed: int, args: argparse.Namespace, *,
                  reuse_only: bool = False) -> tuple[str, dict[str, str]]:
    """The stage of a row and its parameters: ``distill`` for a student, ``quantize`` of the baseline's
    finished student for an inference variant. The student a row starts from or quantizes is
    :func:`trained_run` (launched first unless ``reuse_only``; LookupError when it is missing and
    ``reuse_only``)."""
    variant = VARIANTS[key]
    if variant.init:
        first = trained_run(variant.init, refs, seed, args, reuse_only=reuse_only)
        return "distill", variant_params(key, refs, seed, args, init=f"runs:/{first}/model")
    if not variant.quantize:
        return "distill", variant_params(key, refs, seed, args)
    source = trained_run(variant.baseline, refs, seed, args, reuse_only=reuse_only)
    # force: the study measures the variant whatever its F1 (the run still logs f1_delta_vs_source)
    return "quantize", {"data": args.data, "model": f"runs:/{source}/model", "variant": variant.quantize,
                        "force": "true", "measure_resources": "false", **variant.params}


def trained_run(key: str, refs: dict[str, str], seed: int, args: argparse.Namespace, *,
                reuse_only: bool = False) -> str:
    """The finished run of row ``key`` at ``seed`` (with the runs it starts from), reused or launched."""
    entry, params = variant_stage(key, refs, seed, args, reuse_only=reuse_only)
    return run_stage(entry, args.experiment, f"{key}-s{seed}", params, reuse_only=reuse_only, device=args.device)


def untrained(jobs: list[tuple[str, int]], refs: dict[str, str], args: argparse.Namespace) -> list[tuple[str, int]]:
    """The ``(row, seed)`` jobs without a finished run (including those whose source student is missing)."""
    missing = []
    for key, seed in jobs:
        try:
            entry, params = variant_stage(key, refs, seed, args, reuse_only=True)
        except LookupError:
            missing.append((key, seed))
            continue
        if finished_run(args.experiment, study_key(entry, with_device(entry, params, args.device))) is None:
            missing.append((key, seed))
    return missing


def variant_params(key: str, refs: dict[str, str], seed: int, args: argparse.Namespace,
                   init: str = "") -> dict[str, str]:
    """The ``distill`` parameters of student ``key`` at ``seed``; ``init``: the finished student a row with
    ``Variant.init`` starts from (its vocabulary, widths and embeddings are already the student's)."""
    variant = VARIANTS[key]
    try:
        teacher = teacher_model(variant.teacher, refs)
    except LookupError as missing:
        raise LookupError(f"{key}: {missing}") from None
    params = {"data": args.data, "seed": str(seed), "student_layers": str(variant.layers), "teacher": teacher,
              "measure_resources": "false", **BUDGET, **variant.params}
    if variant.environment:
        params[ENV_PARAM] = json.dumps(variant.environment, sort_keys=True)
    if init:  # the cuts the row makes beyond its source student's: narrower blocks, a lower rank
        source = VARIANTS[variant.init]
        cuts = {"embedding_rank": (variant.rank, source.rank), "intermediate_size": (variant.ffn, source.ffn)}
        further = {name: str(mine) for name, (mine, theirs) in cuts.items() if mine != theirs}
        return {**params, **further, "student_init": init}
    if variant.vocab != "same":
        if f"tokenizer-{variant.vocab}" not in refs:
            raise LookupError(f"{key}: the {variant.vocab} tokenizer is not trained yet")
        params["tokenizer"] = refs[f"tokenizer-{variant.vocab}"]
    if variant.rank:
        params["embedding_rank"] = str(variant.rank)
    if variant.exact_rows:
        params["embedding_exact_rows"] = str(variant.exact_rows)
    if variant.ffn:
        params["intermediate_size"] = str(variant.ffn)
    return params


def entity_counts(gold: list[list[str]], predicted: list[list[str]]) -> np.ndarray:
    """Per sentence: [true positives, predicted entities, gold entities] under strict IOB2."""
    from seqeval.scheme import IOB2, Entities

    gold_entities = Entities(gold, IOB2).entities
    predicted_entities = Entities(predicted, IOB2).entities
    counts = np.zeros((len(gold), 3))
    for i, (g, p) in enumerate(zip(gold_entities, predicted_entities, strict=True)):
        g_set, p_set = {e.to_tuple() for e in g}, {e.to_tuple() for e in p}
        counts[i] = (len(g_set & p_set), len(p_set), len(g_set))
    return counts


def micro_f1(counts: np.ndarray) -> float:
    tp, predicted, gold = counts.sum(axis=0)
    return 2 * tp / (predicted + gold) if predicted + gold else 0.0


@functools.lru_cache(maxsize=None)
def run_predictions(run_id: str, split: str = "test") -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """``(words, gold, predicted)`` per sentence of a run's logged ``evaluation/<split>_predictions.conll``
    (read once per run: the comparisons and the breakdown both use them; not to be modified)."""
    import mlflow

    text = mlflow.artifacts.load_text(f"runs:/{run_id}/evaluation/{split}_predictions.conll")
    words, gold, predicted = [], [], []
    for block in text.strip("\n").split("\n\n"):
        rows = [line.split("\t") for line in block.split("\n") if line]
        words.append([r[0] for r in rows])
        gold.append([r[1] for r in rows])
        predicted.append([r[2] for r in rows])
    return words, gold, predicted


class Exports:
    """The test predictions of a report's runs, packed into ``result`` (``predictions``: row -> seed -> tags,
    ``labels``, ``test_split``: its size and digest) for :mod:`study_predictions`."""

    def __init__(self, result: dict):
        self.result = result
        result.update(predictions={}, labels=[], test_split={})

    def add(self, row: str, seed: str, run_id: str) -> np.ndarray:
        """Pack the run's logged test predictions (checking that its test split is the report's); return their
        per-sentence entity counts."""
        words, gold, predicted = run_predictions(run_id)
        split = {"sentences": len(words), "words": sum(map(len, words)), "sha256": split_digest(words, gold)}
        if self.result["test_split"] and self.result["test_split"] != split:
            raise ValueError(f"run {run_id} ({row}, seed {seed}) was tested on another split than the report's")
        self.result["test_split"] = split
        self.result["predictions"].setdefault(row, {})[seed] = pack_tags(predicted, self.result["labels"])
        return entity_counts(gold, predicted)


def error_breakdown(runs: list[str], train_entities: set[tuple[str, ...]]) -> dict[str, float]:
    """Pooled over ``runs`` (seeds of one row): strict F1 per entity type, and recall of the gold test
    entities whose words (any type) are an entity of the training file (``seen``) and of the others
    (``unseen``); ``unseen_share``: the unseen part of the gold entities."""
    from seqeval.scheme import IOB2, Entities

    hits: dict[str, np.ndarray] = {}  # per type: [true positives, predicted, gold]
    recall = {"seen": np.zeros(2), "unseen": np.zeros(2)}  # [found, gold]
    for run_id in runs:
        words, gold, predicted = run_predictions(run_id)
        gold_sets, predicted_sets = Entities(gold, IOB2).entities, Entities(predicted, IOB2).entities
        for sentence, g, p in zip(words, gold_sets, predicted_sets, strict=True):
            g_set, p_set = {e.to_tuple() for e in g}, {e.to_tuple() for e in p}
            for entity in g_set:
                _, kind, start, end = entity
                found = entity in p_set
                hits.setdefault(kind, np.zeros(3))[[0, 2]] += (found, 1)
                recall["seen" if tuple(sentence[start:end]) in train_entities else "unseen"] += (found, 1)
            for _, kind, _, _ in p_set:
                hits.setdefault(kind, np.zeros(3))[1] += 1
    out = {f"f1_{kind}": 2 * c[0] / (c[1] + c[2]) if c[1] + c[2] else 0.0 for kind, c in sorted(hits.items())}
    out.update({f"recall_{group}": c[0] / c[1] if c[1] else 0.0 for group, c in recall.items()})
    out["unseen_share"] = recall["unseen"][1] / max(1.0, recall["unseen"][1] + recall["seen"][1])
    return out


def add_breakdown(result: dict) -> None:
    """``breakdown`` for the primary teacher and every row: :func:`error_breakdown` over its seeds."""
    sys.path.insert(0, str(REPO))
    from seqeval.scheme import IOB2, Entities

    from findistill.data.splits import load_ner_data

    train = load_ner_data(result["data"]).splits
    sentences = train["train"] + train["validation"]  # the whole training file: both are cut from it
    train_entities = {tuple(s.tokens[start:end]) for s, entities in
                      zip(sentences, Entities([s.tags for s in sentences], IOB2).entities, strict=True)
                      for _, _, start, end in (e.to_tuple() for e in entities)}
    result["breakdown"] = {"teacher-0": error_breakdown([result["teachers"]["teacher-0"]["run"]], train_entities)}
    for key, row in result["variants"].items():
        result["breakdown"][key] = error_breakdown(list(row["runs"].values()), train_entities)


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], rounds: int = 2000, seed: int = 0) -> dict:
    """Paired bootstrap over test sentences (Koehn 2004; Berg-Kirkpatrick et al. 2012): ``a`` and ``b`` hold
    one per-sentence count array per seed, the seeds paired. Each round resamples the sentences once
    and scores both systems on that sample, every seed's predictions pooled. Returns the F1 difference
    a - b, its 95% interval and the one-sided p-value of 'a is not better than b'."""
    rng = np.random.default_rng(seed)
    a_all, b_all = np.stack(a), np.stack(b)  # [seeds, sentences, 3]
    n = a_all.shape[1]
    observed = micro_f1(a_all.reshape(-1, 3)) - micro_f1(b_all.reshape(-1, 3))
    diffs = np.empty(rounds)
    for r in range(rounds):
        pick = rng.integers(0, n, n)
        diffs[r] = micro_f1(a_all[:, pick].reshape(-1, 3)) - micro_f1(b_all[:, pick].reshape(-1, 3))
    return {"diff": float(observed), "low": float(np.percentile(diffs, 2.5)), "high": float(np.percentile(diffs, 97.5)),
            "p_not_better": float((diffs <= 0).mean())}


def paired_t(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of a paired t-test across seeds (None with fewer than 2 pairs or no spread)."""
    from scipy import stats

    if len(a) < 2:
        return None
    differences = np.subtract(a, b)
    if np.allclose(differences, differences[0]):
        return None
    return float(stats.ttest_rel(a, b).pvalue)


def collect(args: argparse.Namespace, refs: dict[str, str], variants: list[str], seeds: list[int]) -> dict:
    """The finished runs, their scores and the per-sentence counts for the comparisons."""
    import mlflow

    result: dict = {"corpus": args.corpus, "report": args.report, "data": args.data, "refs": refs, "teachers": {},
                    "variants": {}}
    for key in sorted(k for k in refs if k.startswith("teacher-") or k == "dapt"):
        run = mlflow.get_run(refs[key].split("/")[1])
        result["teachers"][key] = {"uri": refs[key], "run": run.info.run_id, "test_f1": run.data.metrics["test_f1"],
                                   "best_val_f1": run.data.metrics.get("best_val_f1"),
                                   "environment": fingerprint(run.data.tags)}
    for name in ("ensemble", "ensemble-dapt"):
        if f"{name}-eval" in refs:
            run = mlflow.get_run(refs[f"{name}-eval"])
            result["teachers"][name] = {"uri": run.data.params["model"], "run": run.info.run_id,
                                        "test_f1": run.data.metrics["test_f1"]}
    exports = Exports(result)
    for key, row in result["teachers"].items():
        if "run" in row and key.startswith("teacher-"):
            run = mlflow.get_run(row["run"])
            exports.add(key, run.data.params.get("seed", "42"), run.info.run_id)
    counts: dict[str, dict[str, np.ndarray]] = {}
    for key in variants:
        runs = {}
        for seed in seeds:
            try:
                entry, params = variant_stage(key, refs, seed, args, reuse_only=True)
            except LookupError:  # its tokenizer, or the student an inference variant is made of, is missing
                continue
            found = finished_run(args.experiment, study_key(entry, with_device(entry, params, args.device)))
            if found is not None:
                runs[str(seed)] = found
        if not runs:
            continue
        counts[key] = {seed: exports.add(key, seed, run.info.run_id) for seed, run in runs.items()}
        for seed, run in runs.items():  # the pooled counts reproduce the logged score
            assert abs(micro_f1(counts[key][seed]) - run.data.metrics["test_f1"]) < 1e-9, (key, seed)
        result["variants"][key] = {
            "description": VARIANTS[key].description, "lever": VARIANTS[key].lever,
            "baseline": VARIANTS[key].baseline,
            "runs": {seed: run.info.run_id for seed, run in runs.items()},
            "test_f1": {seed: run.data.metrics["test_f1"] for seed, run in runs.items()},
            "best_val_f1": {seed: run.data.metrics.get("best_val_f1") for seed, run in runs.items()},
            "train_seconds": {seed: run.data.metrics.get("train_seconds") for seed, run in runs.items()},
            "params_total": next(iter(runs.values())).data.metrics.get("params_total"),
            "commit": next(iter(runs.values())).data.tags.get("mlflow.source.git.commit", "")[:10],
            "environment": {seed: fingerprint(run.data.tags) for seed, run in runs.items()},
        }
    result["_counts"] = counts
    return result


def compare(result: dict) -> None:
    """Each variant against its baseline (``vs_baseline``) and the variants it names in ``versus``
    (``vs_others``) on the seeds both have: mean gain, paired t-test, paired bootstrap."""
    counts = result.pop("_counts")
    for key, row in result["variants"].items():
        if (cmp := paired_comparison(key, row["baseline"], result["variants"], counts)) is not None:
            row["vs_baseline"] = cmp
        others = {other: paired_comparison(key, other, result["variants"], counts) for other in VARIANTS[key].versus}
        if others := {other: cmp for other, cmp in others.items() if cmp is not None}:
            row["vs_others"] = others


def paired_comparison(key: str, base: str, variants: dict, counts: dict) -> dict | None:
    """``key`` against ``base`` on the seeds both have (None when ``base`` is empty or has none of them)."""
    if not base or base not in variants:
        return None
    seeds = sorted(set(variants[key]["test_f1"]) & set(variants[base]["test_f1"]))
    if not seeds:
        return None
    a = [variants[key]["test_f1"][s] for s in seeds]
    b = [variants[base]["test_f1"][s] for s in seeds]
    return {"seeds": seeds, "gain": float(np.mean(a) - np.mean(b)), "t_p": paired_t(a, b),
            "val_gain": validation_gain(key, base, variants, seeds),
            "bootstrap": paired_bootstrap([counts[key][s] for s in seeds], [counts[base][s] for s in seeds])}


def validation_gain(key: str, base: str, variants: dict, seeds: list[str]) -> float | None:
    """The mean difference in best validation F1 (what selected each run's epoch) on ``seeds``; None when
    a run has none (inference variants) or the two variants cut their validation split differently."""
    if VARIANTS[key].params.get("split_blocks", "0") != VARIANTS[base].params.get("split_blocks", "0"):
        return None
    a = [variants[key]["best_val_f1"].get(s) for s in seeds]
    b = [variants[base]["best_val_f1"].get(s) for s in seeds]
    if None in a or None in b:
        return None
    return float(np.mean(a) - np.mean(b))


def measure(result: dict, corpus_data: str) -> None:
    """Resource costs, side by side in one fresh process: the primary teacher and one model per architecture."""
    sys.path.insert(0, str(REPO))
    from distill import measure_costs

    def shape(key: str) -> tuple:  # rows of one shape share one measured model
        v = VARIANTS[key]
        return v.layers, v.vocab, v.rank, v.exact_rows, v.ffn, v.quantize

    models = {"teacher": result["refs"]["teacher-0"]}
    architecture: dict[str, str] = {}
    for key, row in result["variants"].items():
        owner = next((k for k in architecture.values() if shape(k) == shape(key)), key)
        architecture[key] = owner
        if owner == key:
            models[key] = f"runs:/{next(iter(row['runs'].values()))}/model"
    costs = measure_costs(result["corpus"], models, data=corpus_data, cache_name="study-costs.json",
                          reference="teacher")
    result["costs"] = {"teacher": costs["teacher"]}
    teacher = costs["teacher"]
    teacher_f1 = result["teachers"]["teacher-0"]["test_f1"]

    def speedup(cost: dict, metric: str) -> float:  # against the teacher measured in the same process
        return cost.get(f"reference_{metric}", teacher[metric]) / cost[metric]

    for key, row in result["variants"].items():
        cost = costs[architecture[key]]
        f1s = list(row["test_f1"].values())
        row.update(f1_mean=float(np.mean(f1s)), f1_sd=float(np.std(f1s, ddof=1)) if len(f1s) > 1 else 0.0,
                   cost=cost, f1_ratio=float(np.mean(f1s)) / teacher_f1 if teacher_f1 else float("nan"),
                   params_ratio=cost["params_total"] / teacher["params_total"],
                   speedup_b1=speedup(cost, "latency_cpu_b1_ms_p50"),
                   speedup_b32=speedup(cost, "latency_cpu_b32_ms_p50"))
        row["meets_target"] = (row["f1_ratio"] >= TARGET["f1_ratio"] and row["params_ratio"] <= TARGET["params_ratio"]
                               and row["speedup_b1"] >= TARGET["speedup_b1"])


def tokenization(result: dict, data: str) -> dict[str, dict[str, float]]:
    """Sub-tokens per word and unknown-token rate of each vocabulary on the test split, and per entity word."""
    sys.path.insert(0, str(REPO))
    from findistill.data.splits import load_ner_data
    from findistill.stages.common import load_tokenizer_ref

    test = load_ner_data(data).splits["test"]
    vocabularies = {"teacher (30,522)": result["refs"]["teacher-0"]}
    vocabularies.update({k.split("-", 1)[1]: v for k, v in result["refs"].items() if k.startswith("tokenizer-")})
    out = {}
    for name, ref in vocabularies.items():
        tokenizer = load_tokenizer_ref(ref)
        pieces = entity_pieces = entity_words = unknown = words = 0
        for sentence in test:
            encoded = tokenizer(sentence.tokens, is_split_into_words=True, add_special_tokens=False)
            ids = encoded["input_ids"]
            word_ids = encoded.word_ids()
            unknown += sum(i == tokenizer.unk_token_id for i in ids)
            pieces += len(ids)
            words += len(sentence.tokens)
            for w, tag in enumerate(sentence.tags):
                if tag != "O":
                    entity_words += 1
                    entity_pieces += sum(1 for x in word_ids if x == w)
        out[name] = {"vocabulary": len(tokenizer), "pieces_per_word": pieces / words,
                     "pieces_per_entity_word": entity_pieces / max(entity_words, 1), "unk_rate": unknown / pieces}
    return out


def untrained_changes(result: dict, data: str, ranks: tuple[int, ...] = (32, 64, 128, 256)) -> dict[str, dict]:
    """Test F1 and embedding parameters of the primary teacher with only its word embeddings changed, no
    training: factorised at each rank (with the relative SVD error), plainly and with the rows weighted by
    their token counts in the training split, or moved to each domain vocabulary. What the embedding
    change alone costs before distillation repairs it."""
    sys.path.insert(0, str(REPO))
    import copy

    from findistill.data.splits import load_ner_data
    from findistill.evaluation.predict import evaluate_ner
    from findistill.models.factorised import factorise_embeddings, token_frequencies
    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.models.students import build_student
    from findistill.stages.common import load_tokenizer_ref
    from findistill.tracking.runs import localize_model

    splits = load_ner_data(data).splits
    test = splits["test"]
    folder = localize_model(result["refs"]["teacher-0"])
    teacher, tokenizer = load_token_classifier(folder), load_tokenizer(folder)
    counts = token_frequencies(tokenizer, [s.tokens for s in splits["train"]],
                               teacher.get_input_embeddings().weight.shape[0])
    out = {}
    for rank in ranks:
        for name, weights in ((f"factorised r={rank}", None), (f"factorised r={rank}, frequency-weighted", counts)):
            model = copy.deepcopy(teacher)
            report = factorise_embeddings(model, rank, weights)
            out[name] = {"test_f1": evaluate_ner(model, tokenizer, test).scores["f1"],
                         "svd_error": report["embedding_svd_error"],
                         "embedding_params": report["embedding_params_after"]}
    for key, uri in result["refs"].items():
        if key.startswith("tokenizer-"):
            model, domain, _ = build_student(teacher, tokenizer, tokenizer=load_tokenizer_ref(uri))
            out[f"vocabulary {key.split('-', 1)[1]}"] = {
                "test_f1": evaluate_ner(model, domain, test).scores["f1"], "svd_error": None,
                "embedding_params": model.get_input_embeddings().weight.numel()}
    return out


def pareto(rows: list[tuple[str, float, float]]) -> list[str]:
    """Keys on the front of (cost, F1): no other row is at most as costly and strictly better, or cheaper and
    at least as good."""
    front = []
    for key, cost, f1 in rows:
        if not any((c <= cost and f > f1) or (c < cost and f >= f1) for k, c, f in rows if k != key):
            front.append(key)
    return front


def front_rows(result: dict) -> tuple[dict, dict]:
    """The rows a Pareto front is drawn over, and the screens left beside it. Rows trained on fewer seeds
    than the report's fullest rows are screens: a one-seed score is not comparable with a mean over three.
    Control rows (lever ``control``) repeat their baseline's training by another path and are in neither."""
    rows = own_rows(result)
    most = max((len(r["test_f1"]) for r in rows.values()), default=0)
    full = {k: r for k, r in rows.items() if len(r["test_f1"]) == most}
    return full, {k: r for k, r in rows.items() if k not in full}


def plot(result: dict, path: Path) -> None:
    """Two cost panels (parameters, batch-1 latency) with each row's mean F1 and seed spread, labelled only on
    its Pareto front (most rows share one architecture, so their labels would overlap), and below them every
    row's seeds, sorted by mean F1, against the teacher and the target. Screens (fewer seeds) are drawn open."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher = result["costs"]["teacher"]
    teacher_f1 = result["teachers"]["teacher-0"]["test_f1"]
    target_f1 = TARGET["f1_ratio"] * teacher_f1
    full, screens = front_rows(result)
    rows = sorted(result["variants"].items(), key=lambda item: item[1]["f1_mean"])
    figure = plt.figure(figsize=(13, 5 + 0.24 * len(rows)))
    grid = figure.add_gridspec(2, 2, height_ratios=[5, 0.24 * len(rows) + 0.8])
    for column, (cost_key, label, scale) in enumerate((("params_total", "parameters (millions)", 1e-6),
                                                       ("latency_cpu_b1_ms_p50", "CPU latency, batch 1, p50 (ms)",
                                                        1.0))):
        ax = figure.add_subplot(grid[0, column])
        front = set(pareto([(k, r["cost"][cost_key], r["f1_mean"]) for k, r in full.items()]))
        for key, row in result["variants"].items():
            x = row["cost"][cost_key] * scale
            ax.errorbar(x, row["f1_mean"], yerr=row["f1_sd"] if len(row["test_f1"]) > 1 else None, fmt="o",
                        capsize=3, mfc="none" if key in screens else None, alpha=1.0 if key in front else 0.45)
            if key in front:
                ax.annotate(key, (x, row["f1_mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.scatter([teacher[cost_key] * scale], [teacher_f1], marker="*", s=200, color="black", label="teacher")
        ax.axhline(target_f1, color="grey", linestyle="--", linewidth=0.8,
                   label=f"{TARGET['f1_ratio']:.0%} of the teacher")
        if cost_key == "params_total":
            ax.axvline(TARGET["params_ratio"] * teacher[cost_key] * scale, color="grey", linestyle=":",
                       linewidth=0.8, label=f"{TARGET['params_ratio']:.0%} of its parameters")
        else:
            ax.axvline(teacher[cost_key] / TARGET["speedup_b1"], color="grey", linestyle=":", linewidth=0.8,
                       label=f"{TARGET['speedup_b1']:.0f}x its speed")
        ax.set_xlabel(label)
        ax.set_ylabel("test entity F1 (mean, bar: sd)")
        ax.set_title("labelled: the Pareto front; open: fewer seeds", fontsize=9)
        ax.legend(fontsize=8)
    ax = figure.add_subplot(grid[1, :])
    for y, (key, row) in enumerate(rows):
        seeds = list(row["test_f1"].values())
        color = "tab:grey" if row.get("lever") == "control" else "tab:blue"
        ax.scatter(seeds, [y] * len(seeds), s=14, color=color, alpha=0.5)
        ax.scatter([row["f1_mean"]], [y], marker="D", s=30, edgecolors=color,
                   facecolors="none" if key in screens else color)
    ax.axvline(teacher_f1, color="black", linewidth=0.8, label=f"teacher {teacher_f1:.3f}")
    ax.axvline(target_f1, color="grey", linestyle="--", linewidth=0.8, label=f"target {target_f1:.3f}")
    ax.set_yticks(range(len(rows)), [key for key, _ in rows], fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("test entity F1: each seed (dots) and the mean (diamond; open: fewer seeds; grey: control)")
    ax.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{result['corpus']}: students against the teacher")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _f(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def target_verdict(row: dict) -> str:
    """``yes`` when the row meets the target's three conditions over the seeds the target asks for;
    ``on N seed(s)`` when it meets them over fewer; ``no`` otherwise."""
    if not row["meets_target"]:
        return "no"
    seeds = len(row["test_f1"])
    return "yes" if seeds >= TARGET["seeds"] else f"on {seeds} seed{'s' if seeds > 1 else ''}"


def mixed_environments(result: dict) -> list[tuple[str, str, str]]:
    """(variant, compared variant, seed) of every paired comparison whose two runs recorded different
    environments (:func:`findistill.tracking.environment.fingerprint`): their difference may be partly the
    machine's. Runs without ``env.*`` tags are not counted as differing."""
    variants, mixed = result["variants"], []
    for key, row in variants.items():
        for base, cmp in {row["baseline"]: row.get("vs_baseline"), **row.get("vs_others", {})}.items():
            for seed in (cmp or {}).get("seeds", []):
                mine, theirs = row["environment"].get(seed), variants[base]["environment"].get(seed)
                if mine and theirs and mine != theirs:
                    mixed.append((key, base, seed))
    return mixed


def environment_section(result: dict) -> list[str]:
    """Which environments (CPU, kernels, libraries) the runs of the report were computed in."""
    seen: dict[str, list[str]] = {}
    for key, row in result["teachers"].items():
        if "environment" in row:
            seen.setdefault(row["environment"], []).append(key)
    for key, row in result["variants"].items():
        for seed, env in row["environment"].items():
            seen.setdefault(env, []).append(f"{key}-s{seed}")
    lines = ["", "## Environments", "",
             "Runs with the same parameters and seed repeat to the last digit in one environment, not across "
             "CPUs, kernel sets or library versions (the `env.*` tags of each run).", "",
             "| environment | runs | e.g. |", "|---|---:|---|"]
    for env, runs in sorted(seen.items(), key=lambda item: -len(item[1])):
        lines.append(f"| {env or 'not recorded (runs from before the env.* tags)'} | {len(runs)} | "
                     f"{', '.join(f'`{r}`' for r in runs[:3])}{', ...' if len(runs) > 3 else ''} |")
    mixed = mixed_environments(result)
    if mixed:
        lines += ["", "Paired comparisons between runs of different environments: "
                  + ", ".join(f"`{k}` vs `{b}` (seed {s})" for k, b, s in mixed) + "."]
    return lines


def breakdown_section(result: dict) -> list[str]:
    """The report's lines on where the students lose: F1 per entity type, recall of seen and unseen names."""
    rows = result["breakdown"]
    kinds = sorted(k[3:] for k in rows["teacher-0"] if k.startswith("f1_"))
    lines = ["", "## Where the students lose (test split)", "",
             "Pooled over each row's seeds. Seen: a gold test entity whose words are an entity (of any type) "
             f"somewhere in FiNER-ORD's training file; {rows['teacher-0']['unseen_share']:.0%} of the test "
             "entities are unseen.", "",
             "| model | " + " | ".join(f"F1 {k}" for k in kinds) + " | recall, seen | recall, unseen |",
             "|---|" + "---:|" * (len(kinds) + 2)]
    for key, row in rows.items():
        name = "teacher (seed 42)" if key == "teacher-0" else f"`{key}`"
        lines.append(f"| {name} | " + " | ".join(f"{row.get(f'f1_{k}', 0.0):.3f}" for k in kinds)
                     + f" | {row['recall_seen']:.3f} | {row['recall_unseen']:.3f} |")
    return lines


def agreement_section(result: dict) -> list[str]:
    """The report's lines on agreement with the teachers on held-out newswire (:mod:`study_agreement`)."""
    info = result["agreement"]
    own = ", ".join(f"`{uri}` {f1:.4f}" for uri, f1 in info["teachers"].items())
    reference = (f"the ensemble of the {len(info['reference'])} teachers (mean logits)" if len(info["reference"]) > 1
                 else f"the teacher `{info['reference'][0]}`")
    lines = ["", "## Agreement with the teachers on held-out newswire", "",
             "Validation is cut from FiNER-ORD's training file: other sentences of the same articles. To see how "
             "the students do on other documents without touching test, every run is also scored against the tags "
             f"of {reference} on {info['paragraphs']:,} Reuters-21578 "
             f"paragraphs ({info['words']:,} words, {info['reference_entities']:,} entities in the reference), drawn "
             f"with seed {info['seed']} from the paragraphs that no run's transfer set holds "
             f"({info['excluded_sentences']:,} paragraphs of {info['transfer_draws']} transfer draws excluded). "
             "Agreement F1: strict entity F1 with the reference's tags as gold. It measures imitation of the "
             "teachers, not correctness."
             + (f" The teachers against their own ensemble: {own}." if own else ""), "",
             "| variant | seeds | agreement F1 mean ± sd | per seed | gain vs baseline: agreement | validation | "
             "test |", "|---|:-:|---|---|---:|---:|---:|"]
    for key, row in result["variants"].items():
        values = list(row["agreement_f1"].values())
        sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
        cmp = row.get("vs_baseline") or {}
        gains = [("–" if cmp.get(name) is None else f"{100 * cmp[name]:+.2f}")
                 for name in ("agreement_gain", "val_gain", "gain")]
        lines.append(f"| `{key}` | {len(values)} | {np.mean(values):.4f} ± {sd:.4f} | "
                     f"{', '.join(f'{v:.3f}' for v in values)} | {' | '.join(gains)} |")
    lines += ["", f"Across the {info['runs']} trained runs (inference variants have no validation score; control "
              "rows are left out), Spearman's "
              f"rank correlation with test F1: validation {_f(info['spearman_test_val'], 2)}, agreement "
              f"{_f(info['spearman_test_agreement'], 2)}. Of the {info['lever_comparisons']} comparisons with a "
              f"baseline that have both gains, the sign of the test gain is that of the validation gain in "
              f"{info['val_sign_matches']} and of the agreement gain in {info['agreement_sign_matches']}. These runs' "
              "test scores were known before this score existed: the comparison says which signal followed test "
              "here, and only rows added later can confirm it."]
    return lines


def markdown(result: dict, command: str, hours: float) -> str:
    teacher = result["costs"]["teacher"]
    t0 = result["teachers"]["teacher-0"]
    lines = [f"# Study: {result['corpus']}", "",
             f"Generated by `benchmarks/study.py` at commit `{result['commit']}` on {result['date']}:", "",
             f"    {command}", "",
             f"Data: `{result['data']}`. Students distil from teacher `{t0['uri']}` (test F1 {t0['test_f1']:.4f}); "
             f"budget per student: {BUDGET['epochs']} epochs at {BUDGET['learning_rate']}, patience "
             f"{BUDGET['patience']}, max_length 256, 2 CPU threads. Wall time of the runs in this report: "
             f"{hours:.1f} h of training on this 2-core machine. Selection is on validation only; every F1 "
             "below is on the test split, which nothing was tuned on. Every number links to an MLflow run in "
             "`benchmarks/results/study.db` (ids in the `.json` beside this file).", "",
             f"Target: at least {TARGET['f1_ratio']:.0%} of the teacher's test F1 with at most "
             f"{TARGET['params_ratio']:.0%} of its parameters and at least {TARGET['speedup_b1']:.0f}x its CPU speed "
             "at batch 1, mean of 3 seeds.", "", "## Teachers", "",
             "| teacher | test F1 | best val F1 | run |", "|---|---:|---:|---|"]
    for key, row in result["teachers"].items():
        lines.append(f"| {key} | {row['test_f1']:.4f} | {_f(row.get('best_val_f1'))} | `{row['run']}` |")
    single = [row["test_f1"] for key, row in result["teachers"].items() if key.startswith("teacher-")]
    if len(single) > 1:
        lines += ["", f"Single teachers: {np.mean(single):.4f} ± {np.std(single, ddof=1):.4f} (mean ± sd over "
                  f"{len(single)} seeds)."]
    lines += ["", "## Students", "",
              "| variant | lever | seeds | test F1 mean ± sd | per seed | vs teacher | params | vs teacher | "
              "size MB | CPU b1 ms | b1 speed-up | b32 speed-up | words/s b32 | peak RSS MB | target |",
              "|---|:-:|:-:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
              f"| teacher (6 layers) | | | {t0['test_f1']:.4f} | | 100% | {teacher['params_total'] / 1e6:.2f}M | "
              f"100% | {teacher['model_size_mb']:.1f} | {teacher['latency_cpu_b1_ms_p50']:.1f} | 1.0x | 1.0x | "
              f"{teacher['throughput_cpu_words_per_s']:.0f} | {teacher['peak_rss_mb']:.0f} | |"]
    for key, row in result["variants"].items():
        per_seed = ", ".join(f"{v:.3f}" for v in row["test_f1"].values())
        lines.append(
            f"| {row['description']} (`{key}`) | {row['lever']} | {len(row['test_f1'])} | {row['f1_mean']:.4f} ± "
            f"{row['f1_sd']:.4f} | {per_seed} | {row['f1_ratio']:.1%} | {row['cost']['params_total'] / 1e6:.2f}M | "
            f"{row['params_ratio']:.0%} | {row['cost']['model_size_mb']:.1f} | "
            f"{row['cost']['latency_cpu_b1_ms_p50']:.1f} | {row['speedup_b1']:.1f}x | {row['speedup_b32']:.1f}x | "
            f"{row['cost']['throughput_cpu_words_per_s']:.0f} | {row['cost']['peak_rss_mb']:.0f} | "
            f"{target_verdict(row)} |")
    lines += ["", "Costs measured side by side in one fresh process (first 256 test sentences, max_length 256, "
              f"{teacher.get('cpu_threads', 0):.0f} threads, three rounds in alternating order, medians; "
              "an architecture measured later was measured beside the teacher again, and its speed-ups are "
              "against that measurement).", "",
              "## Each lever against its baseline", "",
              "Gain: mean test F1 difference on the seeds both have. t-test: paired across seeds (two-sided; "
              "needs 2+ seeds). Bootstrap: paired over test sentences, 2,000 resamples, every seed's predictions "
              "pooled; 95% interval of the difference and p = P(difference <= 0). Validation gain: the same "
              "difference in best validation F1, the score each run's epoch was selected on (– for inference "
              "variants and between variants whose validation splits are cut differently).", "",
              "| variant | baseline | seeds | gain (F1 points) | validation gain | t-test p | bootstrap 95% interval "
              "| bootstrap p |",
              "|---|---|:-:|---:|---:|---:|---|---:|"]
    for key, row in result["variants"].items():
        against = {row["baseline"]: row["vs_baseline"]} if row.get("vs_baseline") else {}
        for base, cmp in {**against, **row.get("vs_others", {})}.items():
            boot = cmp["bootstrap"]
            val_gain = "–" if cmp.get("val_gain") is None else f"{100 * cmp['val_gain']:+.2f}"
            lines.append(f"| `{key}` | `{base}` | {','.join(cmp['seeds'])} | {100 * cmp['gain']:+.2f} | "
                         f"{val_gain} | {_f(cmp['t_p'], 3)} | [{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}] | "
                         f"{boot['p_not_better']:.3f} |")
    lines += environment_section(result)
    if "breakdown" in result:
        lines += breakdown_section(result)
    if "agreement" in result:
        lines += agreement_section(result)
    candidates, screens = front_rows(result)
    front = pareto([(k, r["cost"]["params_total"], r["f1_mean"]) for k, r in candidates.items()])
    front_b1 = pareto([(k, r["cost"]["latency_cpu_b1_ms_p50"], r["f1_mean"]) for k, r in candidates.items()])
    lines += ["", "## Pareto front", ""]
    if len(own_rows(result)) < len(result["variants"]):
        lines += ["Control rows (lever `control`) are left out.  "]
    if screens:
        seeds = len(next(iter(candidates.values()))["test_f1"])
        lines += [f"Over the rows trained on {seeds} seeds; the screens on fewer ("
                  f"{', '.join(f'`{k}`' for k in screens)}) are left out, and drawn open in the plot.  "]
    lines += [f"Parameters vs F1: {', '.join(f'`{k}`' for k in front)}.  ",
              f"Batch-1 latency vs F1: {', '.join(f'`{k}`' for k in front_b1)}.", "",
              f"![quality against cost]({result['report']}-front.png)", "",
              "## Tokenization of the test split", "",
              "| vocabulary | entries | sub-tokens per word | per entity word | unknown rate |",
              "|---|---:|---:|---:|---:|"]
    for name, row in result["tokenization"].items():
        lines.append(f"| {name} | {row['vocabulary']:,} | {row['pieces_per_word']:.3f} | "
                     f"{row['pieces_per_entity_word']:.3f} | {row['unk_rate']:.2%} |")
    lines += ["", "## The teacher with only its embeddings changed (no training)", "",
              f"All 6 layers of `teacher-0` kept (test F1 {t0['test_f1']:.4f}); only the word embeddings replaced. "
              "This is what the embedding change costs before any training repairs it.", "",
              "| change | embedding parameters | relative SVD error | test F1 | vs teacher |",
              "|---|---:|---:|---:|---:|"]
    for name, row in result["untrained"].items():
        lines.append(f"| {name} | {row['embedding_params'] / 1e6:.2f}M | {_f(row['svd_error'], 3)} | "
                     f"{row['test_f1']:.4f} | {row['test_f1'] / t0['test_f1']:.1%} |")
    discussion = DOCS / f"{result['report']}-discussion.md"
    if discussion.exists():
        lines += ["", discussion.read_text().strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="finer-ord", help="a corpus of ../shared/data, or a name for --data")
    parser.add_argument("--data", default="", help="the corpus path (default ../shared/data/<corpus>)")
    parser.add_argument("--teachers", default="", help="fine-tuned teachers, comma-separated (first: primary)")
    parser.add_argument("--teacher-seeds", default="42,1,2", help="seeds of the teachers fine-tuned here")
    parser.add_argument("--dapt-teacher", default="", help="a teacher fine-tuned after adaptation on Reuters-21578")
    parser.add_argument("--dapt", action="store_true", help="adapt and fine-tune that teacher even when no variant "
                        "learns from it (the teacher-side lever alone)")
    parser.add_argument("--variants", default="core,levers", help=f"variants or selections ({', '.join(SELECTIONS)}, "
                        "all), comma-separated")
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--epochs", default=BUDGET["epochs"], help="student epochs (the budget; default 6)")
    parser.add_argument("--lever-seeds", default="", help="seeds for the variants outside 'core' (default --seeds)")
    parser.add_argument("--transfer-lines", type=int, default=20000, help="lines of Reuters-21578 a vocabulary reads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--experiment", default="", help="default study-<corpus>")
    parser.add_argument("--fresh", action="store_true", help="a new experiment (study-<corpus>-<time>)")
    parser.add_argument("--collect-only", action="store_true", help="train nothing: the report from finished runs")
    parser.add_argument("--dry-run", action="store_true", help="train nothing, write nothing: list the runs of the "
                        "matrix that are finished and those the same command without it would train")
    parser.add_argument("--skip-report", action="store_true", help="run the matrix, write nothing")
    parser.add_argument("--agreement", type=int, default=0, metavar="N",
                        help="score every run against the teachers (--agreement-reference) on N held-out "
                        "Reuters-21578 paragraphs that no run trained on (study_agreement.py; 0: not at all)")
    parser.add_argument("--agreement-reference", choices=("ensemble", "first"), default="ensemble",
                        help="what --agreement scores against: the mean of the teachers' logits, or the first "
                        "teacher (the one the students learn from)")
    parser.add_argument("--report", default="", help="the name of the report's files in docs/results (default: "
                        "the corpus), so that a study of a few rows in another store leaves the corpus's report as "
                        "it is")
    args = parser.parse_args()
    args.data = args.data or str(SHARED / args.corpus)
    args.report = args.report or args.corpus
    BUDGET["epochs"] = args.epochs
    args.experiment = args.experiment or f"study-{args.corpus}" + (f"-{int(time.time())}" if args.fresh else "")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{REPO / 'benchmarks' / 'results' / 'study.db'}")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    chosen: list[str] = []
    for name in filter(None, args.variants.split(",")):
        names = list(VARIANTS) if name == "all" else SELECTIONS.get(name, name).split(",")
        chosen += [n for n in names if n and n not in chosen]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    lever_seeds = [int(s) for s in args.lever_seeds.split(",")] if args.lever_seeds else seeds
    core = SELECTIONS["core"].split(",")
    jobs = [(key, seed) for key in chosen if key in core for seed in seeds]
    jobs += [(key, seed) for seed in lever_seeds for key in chosen if key not in core]
    if args.dry_run:
        args.collect_only = True
        try:
            refs = prepare(args, chosen)
        except LookupError as missing:
            print(f"[to train] the teachers first ({missing}), then all {len(jobs)} rows x seeds")
            return
        missing_jobs = untrained(jobs, refs, args)
        for key, seed in jobs:
            print(f"[{'to train' if (key, seed) in missing_jobs else 'finished'}] {key}-s{seed}")
        print(f"{len(jobs) - len(missing_jobs)} finished, {len(missing_jobs)} to train")
        return
    refs = prepare(args, chosen)
    if not args.collect_only:
        missing_jobs = untrained(jobs, refs, args)
        if missing_jobs:
            print(f"[plan] {len(missing_jobs)} of {len(jobs)} runs to train: "
                  f"{', '.join(f'{key}-s{seed}' for key, seed in missing_jobs)}", flush=True)
        for key, seed in jobs:
            trained_run(key, refs, seed, args)
    if args.skip_report:
        return
    result = collect(args, refs, chosen, sorted(set(seeds) | set(lever_seeds)))
    compare(result)
    add_breakdown(result)
    if args.agreement:
        from study_agreement import add_agreement  # the sibling module

        teachers = [refs[k] for k in sorted(refs) if k.startswith("teacher-")]
        add_agreement(result, teachers[:1] if args.agreement_reference == "first" else teachers, REUTERS,
                      args.agreement, REPO / "benchmarks" / "results" / "agreement")
    measure(result, args.data)
    result["tokenization"] = tokenization(result, args.data)
    result["untrained"] = untrained_changes(result, args.data)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                      text=True).stdout.strip()
    result["date"] = time.strftime("%Y-%m-%d")
    hours = sum(v or 0 for row in result["variants"].values() for v in row["train_seconds"].values()) / 3600
    DOCS.mkdir(parents=True, exist_ok=True)
    plot(result, DOCS / f"{args.report}-front.png")
    command = "MLFLOW_TRACKING_URI=sqlite:///benchmarks/results/study.db .venv/bin/python benchmarks/study.py " + \
        " ".join(sys.argv[1:])
    (DOCS / f"{args.report}.json").write_text(json.dumps(result, indent=1, default=str))
    (DOCS / f"{args.report}.md").write_text(markdown(result, command, hours))
    print((DOCS / f"{args.report}.md").read_text())


if __name__ == "__main__":
    main()
