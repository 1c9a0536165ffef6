#!/usr/bin/env bash
# Throughput of the CPU regime on one GPU: install (benchmarks/gpu_device_env.sh), generate the
# 800-episode dataset, time the regime alone (2 curve probes), then N runs side by side.
# Needs .gpu/curvecache (the curve splits, carried). Results under $OUT.
set -u
t0=$(date +%s)
. benchmarks/gpu_device_env.sh
nvidia-smi -L 2>/dev/null; $PY -c "import torch; print(torch.__version__, torch.cuda.is_available())"
el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
el installed
DATA=${DATA:-.gpu/data800}
$PY -m ia_world_app.cli generate episodes=${EPISODES:-800} out=$DATA workers=${WORKERS:-14} > $OUT/gen.log 2>&1 || { tail -5 $OUT/gen.log; }
el "generated: $(ls $DATA/shards | wc -l) shard files"
run() { $PY -m ia_world_app.cli pretrain regime=cpu data=$DATA device=$DEVICE amp=false data.num_workers=1 log_every=25 checkpoint_every=1000 "$@"; }
run steps=${STEPS1:-300} probe_every=${STEPS1:-300} probe.cache=.gpu/curvecache out=/tmp/c1 > $OUT/c1.log 2>&1
el "alone: $(tail -1 /tmp/c1/log.csv | cut -d, -f1,14-16)"
for i in $(seq 0 $(( ${N:-8} - 1 ))); do run steps=${STEPS8:-200} probe_every=0 seed=$i out=/tmp/c8_$i > $OUT/c8_$i.log 2>&1 & done; wait
el "side by side: $(tail -1 /tmp/c8_0/log.csv | cut -d, -f1,14-16)"
grep -h "step\|Error" $OUT/c1.log | tail -3
