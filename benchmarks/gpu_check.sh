#!/usr/bin/env bash
# Every GPU figure of issue 8 in one go (about 5-7 minutes on one H100), written into $OUT (default ./gpu_out):
#   bench_b32.json        benchmarks.bench: naive vs ours (ViT-B/16, 224 px, batch 32, bf16), eval, 4 runs per pass,
#                         TFLOP/s vs bf16 peak, peak memory, checkpoint cost, Office-Home grid estimate
#   bench_b128.json       the same step at batch 128 (eager) and
#   bench_b128_compile.json  with torch.compile (training only)
#   memory.json           paper-tier ADU run: predicted peak (bf16/fp32, +/- gradient checkpointing) and
#                         torch.cuda.max_memory_allocated at batches 32, 64, 128
#   multirun.json         grid throughput: R = 2, 4, 8 runs per pass vs one after another (batch 32 per run)
#   equivalence.json      grouped vs alone on this GPU, fp32 and bf16 (how close, not asserted)
#   log.txt               stderr of everything, the GPU and package versions
#
# On the project's lent machines (python3 with torch, no open_clip, no internet), first prepare the wheels here:
#   pip download --no-deps -d .whl open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth cma
# and run with the device tool: command `bash benchmarks/gpu_check.sh`, carry [".whl"], timeout_s 540.
# Each step has its own time limit, so one slow step cannot take the others' figures with it.
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ! $PY -c "import open_clip" 2>/dev/null; then
  if [ -d .whl ]; then
    $PY -m pip install -q --no-deps --no-index .whl/*.whl >>"$LOG" 2>&1
  else
    echo "open_clip is missing and there is no .whl/ folder to install it from (see the header)" | tee -a "$LOG"
    exit 1
  fi
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__,
torch.cuda.get_device_name())"; } >>"$LOG" 2>&1

step() {  # step NAME SECONDS command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)" >>"$LOG"
  timeout "$limit" "$@" >"$OUT/$name.json" 2>>"$LOG"
  echo "== $name: exit $? after $((SECONDS - t0))s" >>"$LOG"
}

step bench_b32 120 $PY -m benchmarks.bench --json --batch 32 --steps 65 --repeats 3 --runs 4
step bench_b128 45 $PY -m benchmarks.bench --json --batch 128 --steps 16 --repeats 3 --no-eval
step bench_b128_compile 120 $PY -m benchmarks.bench --json --batch 128 --steps 16 --repeats 3 --no-eval --compile
step memory 75 $PY -m benchmarks.memory --measure 32 64 128
step multirun 75 $PY -m benchmarks.multirun_throughput --runs 2 4 8
step equivalence 45 $PY -m benchmarks.multirun_equivalence
echo "done in ${SECONDS}s" >>"$LOG"
tail -n 40 "$LOG"
