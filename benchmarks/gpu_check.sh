#!/bin/bash
# The CUDA paths of the training engine, checked in one short session on a lent GPU machine:
#   1. the training and model tests on the GPU (the loop picks cuda:LOCAL_RANK by itself);
#   2. training throughput of each preset in fp32, bf16 autocast, and bf16 + channels_last;
#   3. NCCL: torchrun with one process joins a process group, trains under DDP with SyncBatchNorm,
#      bf16 + channels_last, checkpoints and resumes (with the run's own config);
#   4. the default preset trained for $MINUTES minutes twice side by side on the one GPU, with a
#      constant and with a linearly decaying learning rate; the EMA generators are exported.
# The machine has no network: the prepared catalogs travel as .gpu/catalogs.tgz (a tarball of
# ~/.cache/prodgen/catalogs/{fashion-mnist,clothing}); Python packages it lacks (pydantic) travel as
# wheels installed with pip --target and put on PYTHONPATH. Everything kept goes to $OUT.
#
#     OUT=/tmp/gpu MINUTES=5 bash benchmarks/gpu_check.sh
set -u
OUT=${OUT:-runs/gpu-check}
MINUTES=${MINUTES:-5}
TP_STEPS=${TP_STEPS:-300}
TESTS=${TESTS:-tests/test_train_gan.py tests/test_train_family.py tests/test_train_kill.py tests/test_models.py}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PRODGEN_HOME=${PRODGEN_HOME:-/tmp/prodgen-home} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
LOG="$OUT/log.txt"
section() { echo "=== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

section setup
if [ -f .gpu/catalogs.tgz ]; then
    mkdir -p "$PRODGEN_HOME/catalogs" && tar xzf .gpu/catalogs.tgz -C "$PRODGEN_HOME/catalogs"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())" 2>&1 | tee -a "$LOG"

section tests on the GPU
# the two-process tests (tests/test_train_distributed.py) need two GPUs here, one per process; the CPU suite runs them with gloo
timeout 180 $PY -m pytest -q -p no:cacheprovider $TESTS 2>&1 | tail -25 | tee -a "$LOG"

section throughput
TP_STEPS=$TP_STEPS timeout 240 $PY - <<'EOF' 2>&1 | grep -v Warning | tee -a "$LOG"
import os
import sys
sys.path.insert(0, "benchmarks")
from bench_train import throughput
variants = {"fp32": ["train.precision=fp32"], "bf16": ["train.precision=bf16"], "bf16+cl": ["train.precision=bf16", "train.channels_last=true"]}
steps = int(os.environ["TP_STEPS"])
for preset in ("fmnist-dcgan", "fmnist-cgan", "catalog-64"):
    for name, sets in variants.items():
        try:
            throughput(preset, steps=steps, warmup=max(1, steps // 10), threads=8, set_=sets, out=None)
        except Exception as exc:  # one failing variant must not hide the others
            print(f"{preset} {name}: FAILED {exc!r}")
EOF

section NCCL: torchrun, one process, DDP + SyncBatchNorm, bf16 + channels_last, then resume
NCCL_SETS=(--set train.precision=bf16 --set train.channels_last=true --set train.threads=4 --set eval.every=200 --set eval.checkpoint_every=200 --set train.sync_batchnorm=true)
timeout 120 $PY -m torch.distributed.run --nproc_per_node 1 -m prodgen.cli train --config fmnist-cgan --runs-dir /tmp/runs-nccl \
    --set train.steps=200 "${NCCL_SETS[@]}" 2>&1 | grep -v "it/s\|━" | tail -8 | tee -a "$LOG"
timeout 120 $PY -m torch.distributed.run --nproc_per_node 1 -m prodgen.cli train --resume /tmp/runs-nccl/00001-fmnist-cgan \
    --set train.steps=400 --set train.threads=4 2>&1 | grep -v "it/s\|━" | tail -8 | tee -a "$LOG"

section "default preset, $MINUTES min each, constant vs linear decay, side by side"
for schedule in constant linear; do
    timeout $((${MINUTES%.*} * 60 + 120)) $PY -m prodgen.cli train --config fmnist-cgan --runs-dir /tmp/runs-$schedule \
        --set train.max_minutes="$MINUTES" --set train.steps=10000000 --set train.threads=6 --set train.lr_schedule=$schedule \
        --set eval.every=1000 --set eval.checkpoint_every=1000 > "/tmp/train-$schedule.txt" 2>&1 &
done
wait
for schedule in constant linear; do
    run=/tmp/runs-$schedule/00001-fmnist-cgan
    grep -v "it/s\|━" "/tmp/train-$schedule.txt" | tail -4 | tee -a "$LOG"
    $PY -m prodgen.cli export "$run" --out "$OUT/$schedule" 2>&1 | tail -1 | tee -a "$LOG"
    cp "$run/history.json" "$OUT/$schedule/history.json"
done
cp /tmp/runs-constant/00001-fmnist-cgan/samples/latest.png "$OUT/constant-latest.png"
section done
