#!/usr/bin/env bash
# The GPU check (README, "Benchmarks"): about 8 minutes on one GPU, then one table.
#   1. the runner's CUDA path: the shampoo submission on two suite workloads (short trials, self-tuning ruleset);
#   2. a 2-process DDP trial through torchrun when two GPUs are visible (skipped, saying why, otherwise; on CPU
#      with gloo in the smoke run);
#   3. Shampoo / AdamW step time (optimizer step and whole training step) on the suite's models (all eight by
#      default) at AlgoPerf batch sizes (benchmarks/gpu_step_time.py);
#   4. statistics_precision (TF32 and bf16 factor statistics): the tensor-core path against its emulation
#      (tests/test_statistics_precision.py), then each precision's speed and error (benchmarks/statistics_precision.py).
# Exits 1 when there is no GPU or a check failed (logs stay in the printed folder).
#
#   benchmarks/gpu_check.sh                        # on a GPU machine
#   GPU_CHECK_DEVICE=cpu benchmarks/gpu_check.sh   # a tiny smoke run of the same steps on CPU (what the tests run)
# PYTHON (default .venv/bin/python) picks the interpreter; GPU_CHECK_TRIAL_WORKLOADS the trials' workloads and
# GPU_CHECK_WORKLOADS the step-time workloads (space-separated).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEVICE=${GPU_CHECK_DEVICE:-cuda}
read -r -a TRIAL_WORKLOADS <<< "${GPU_CHECK_TRIAL_WORKLOADS:-fashion_resnet stdlib_lm}"

case $DEVICE in
cuda)
    N_GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)') || {
        echo "error: cannot import torch with $PY; set PYTHON to the environment's python" >&2
        exit 1
    }
    if [ "$N_GPUS" -lt 1 ]; then
        echo "error: no CUDA GPU visible (torch.cuda.is_available() is False); run this on a GPU machine, or" \
            "GPU_CHECK_DEVICE=cpu for a CPU smoke run" >&2
        exit 1
    fi
    TRIAL_STEPS=200 TIMED_STEPS=100 FREQUENCY=100 BATCH_ARGS=()
    read -r -a STEP_WORKLOADS <<< "${GPU_CHECK_WORKLOADS:-fashion_resnet fashion_vit stdlib_lm flights_dlrm qm9_gnn mri_unet bible_mt espeak_asr}"
    ;;
cpu)
    export CUDA_VISIBLE_DEVICES="" OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1
    N_GPUS=0 TRIAL_STEPS=2 TIMED_STEPS=2 FREQUENCY=2 BATCH_ARGS=(--batch_size 8)
    read -r -a STEP_WORKLOADS <<< "${GPU_CHECK_WORKLOADS:-fashion_resnet stdlib_lm}"
    ;;
*)
    echo "error: GPU_CHECK_DEVICE=$DEVICE must be cuda or cpu" >&2
    exit 2
    ;;
esac

OUT=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
ROWS=$OUT/rows.txt
FAILED=0
row() { printf '%s|%s|%s|%s\n' "$@" >> "$ROWS"; }

last_eval() {  # the last eval row of a trial: step and validation loss
    "$PY" - "$1" << 'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = rows[-1]
print(f"step {last['global_step']}, validation/loss {float(last.get('validation/loss', 'nan')):.4f}")
EOF
}

trial() {  # label, workload, launcher...: one short trial of the shampoo submission
    local label=$1 workload=$2 start=$SECONDS
    shift 2
    local name="${label// /_}_$workload" log="$OUT/${label// /_}_$workload.log"
    if "$@" -m runner --workload="$workload" --submission_path=submissions/shampoo/submission.py \
        --tuning_ruleset=self --experiment_dir="$OUT/experiments" --experiment_name="$name" \
        --max_global_steps="$TRIAL_STEPS" --rng_seed=0 --progress=off > "$log" 2>&1; then
        local csv="$OUT/experiments/$name/${workload}_pytorch/trial_1/eval_measurements.csv"
        row "$label" "$workload" "ok" "$(last_eval "$csv"), $((SECONDS - start)) s wall"
    else
        row "$label" "$workload" "FAILED" "see $log"
        FAILED=1
    fi
}

echo "gpu_check: device $DEVICE, $N_GPUS GPU(s), logs in $OUT" >&2
for workload in "${TRIAL_WORKLOADS[@]}"; do
    trial "runner ($DEVICE)" "$workload" "$PY"
done

if [ "$DEVICE" = cuda ] && [ "$N_GPUS" -lt 2 ]; then
    row "DDP trial (2 procs)" "mnist" "skipped" "$N_GPUS GPU(s) visible; needs 2"
else  # nccl on two GPUs; gloo on the CPU smoke run
    trial "DDP trial (2 procs)" mnist "$PY" -m torch.distributed.run --standalone --nproc_per_node=2
fi

if ! "$PY" -m benchmarks.gpu_step_time --workloads "${STEP_WORKLOADS[@]}" --steps "$TIMED_STEPS" \
    --frequency "$FREQUENCY" "${BATCH_ARGS[@]}" --rows "$ROWS" > "$OUT/step_time.log" 2>&1; then
    row "Shampoo/AdamW step time" "${STEP_WORKLOADS[*]}" "FAILED" "see $OUT/step_time.log"
    FAILED=1
fi

# statistics_precision: the tensor-core path against its emulation (tests), then its speed and error
# (benchmarks/statistics_precision.py; on the CPU smoke run a tiny stack, emulated)
if "$PY" -m pytest -q -p no:cacheprovider tests/test_statistics_precision.py > "$OUT/precision_tests.log" 2>&1; then
    row "statistics_precision tests" "-" "ok" "$(tail -n 1 "$OUT/precision_tests.log")"
else
    row "statistics_precision tests" "-" "FAILED" "see $OUT/precision_tests.log"
    FAILED=1
fi
PRECISION_SHAPES=(8x1024x1024 4x2048x512 16x512x512)
[ "$DEVICE" = cpu ] && PRECISION_SHAPES=(2x64x32)
if "$PY" -m benchmarks.statistics_precision --device "$DEVICE" --shapes "${PRECISION_SHAPES[@]}" \
    > "$OUT/statistics_precision.log" 2>&1; then
    while IFS='|' read -r _ shape precision ms ratio error _; do
        row "statistics product, ${precision// /}" "${shape// /}" "ok" "${ms// /} ms, ${ratio// /}x highest, error ${error// /}"
    done < <(grep -E '^\| [0-9]+x' "$OUT/statistics_precision.log")
else
    row "statistics_precision speed" "-" "FAILED" "see $OUT/statistics_precision.log"
    FAILED=1
fi

echo "| check | workload | result | detail |"
echo "|---|---|---|---|"
awk -F'|' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$ROWS"
exit "$FAILED"
