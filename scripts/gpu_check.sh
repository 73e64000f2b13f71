#!/usr/bin/env bash
# GPU check: fine-tune, distil and evaluate a small slice on CUDA and print what the GPU paths measured.
#
#   scripts/gpu_check.sh                 # FiNER-ORD slice (../shared/data/finer-ord) or the bundled sample
#   GPU_CHECK_SENTENCES=400 scripts/gpu_check.sh
#
# It runs, into a throwaway SQLite store:
#   1. finetune   the packaged teacher on CUDA (precision=auto: bf16 where the GPU supports it), resources
#                 measured on the GPU (latency_gpu_*, gpu_peak_mem_mb, device.gpu_* tags from pynvml);
#   2. distill    a 2-layer student from it on CUDA (the teacher's cached outputs computed on the GPU);
#   3. evaluate   the student on the test split on CUDA;
#   4. with 2+ GPUs, finetune again under `torchrun --nproc_per_node <GPUs>` (DDP over nccl, one run);
# then prints every GPU metric and device tag of those runs. Exit status: 0 all passed, 2 no CUDA here,
# 1 a step failed. Python: FINDISTILL_PYTHON, default .venv/bin/python (torch must be a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${FINDISTILL_PYTHON:-.venv/bin/python}"
N="${GPU_CHECK_SENTENCES:-200}"
DATA=sample
[ -d ../shared/data/finer-ord ] && DATA=../shared/data/finer-ord

GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$GPUS" = 0 ]; then
  echo "gpu_check: no CUDA device visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db" MLFLOW_EXPERIMENT_NAME=gpu-check TOKENIZERS_PARALLELISM=false
COMMON=(--data "$DATA" --max_sentences "$N" --epochs 2 --batch_size 32 --max_length 128 --device cuda
        --precision auto)
echo "== $GPUS GPU(s); data $DATA, $N sentences per split; store $MLFLOW_TRACKING_URI"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

run_id() {  # the newest run of a stage in the check's store
  "$PY" - "$1" <<'PYEOF'
import sys
from mlflow.tracking import MlflowClient
c = MlflowClient()
e = c.get_experiment_by_name("gpu-check")
runs = c.search_runs([e.experiment_id], f"tags.`findistill.stage` = '{sys.argv[1]}'",
                     order_by=["attributes.start_time DESC"], max_results=1)
print(runs[0].info.run_id)
PYEOF
}

echo "== 1. finetune (teacher) on cuda"
"$PY" -m findistill finetune "${COMMON[@]}" --model packaged:all-MiniLM-L6-v2 --checkpoint_dir "$WORK/ckpt-teacher"
TEACHER=$(run_id finetune)
echo "== 2. distill (2-layer student) on cuda"
"$PY" -m findistill distill "${COMMON[@]}" --teacher "runs:/$TEACHER/model" --student_layers 2 \
  --checkpoint_dir "$WORK/ckpt-student"
STUDENT=$(run_id distill)
echo "== 3. evaluate the student on cuda"
"$PY" -m findistill evaluate --model "runs:/$STUDENT/model" --data "$DATA" --max_sentences "$N" --device cuda
if [ "$GPUS" -ge 2 ]; then
  echo "== 4. finetune under torchrun on $GPUS GPUs (nccl)"
  "$PY" -m torch.distributed.run --nproc_per_node "$GPUS" -m findistill finetune "${COMMON[@]}" \
    --model packaged:all-MiniLM-L6-v2 --checkpoint_dir "$WORK/ckpt-ddp"
fi

echo "== GPU figures of the check's runs"
"$PY" - <<'PYEOF'
from mlflow.tracking import MlflowClient
c = MlflowClient()
e = c.get_experiment_by_name("gpu-check")
for run in c.search_runs([e.experiment_id], order_by=["attributes.start_time ASC"]):
    t, m = run.data.tags, run.data.metrics
    print(f"\n{t.get('mlflow.runName', run.info.run_id)} ({run.info.status}); precision "
          f"{t.get('findistill.precision', '-')}, ranks {t.get('findistill.world_size', '-')}")
    for k in sorted(t):
        if k.startswith("device."):
            print(f"  {k} = {t[k]}")
    for k in sorted(m):
        if "gpu" in k or k.endswith("_f1") or k in ("train_seconds", "train_samples_per_second", "teacher_seconds"):
            print(f"  {k} = {m[k]:.4g}")
PYEOF
