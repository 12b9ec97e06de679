#!/usr/bin/env bash
# CLIP image tower, ViT-B/32 shape at batch 64: PyTorch CPU and curate (burn flex) in the
# same run on the same random-weight model; prints both and the ratio (goal >= 0.5).
# Needs the reference environment (scripts/ref/requirements.txt) as $PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PYTHON=${PYTHON:-python3}
MODEL=${CURATE_BENCH_CLIP:-${TMPDIR:-/tmp}/curate-vit-b32}
torch=$("$PYTHON" benches/clip_torch.py "$MODEL" cpu | tail -1)
echo "pytorch: $torch"
CURATE_BENCH_CLIP="$MODEL" cargo bench --bench clip -- image_batch64_cpu
est="${CARGO_TARGET_DIR:-target}/criterion/clip/image_batch64_cpu/new/estimates.json"
python3 - "$est" "$torch" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["mean"]["point_estimate"] / 1e9
theirs = json.loads(sys.argv[2])["seconds_per_batch"]
print(f"curate (flex): {ours:.2f} s/batch = {64/ours:.1f} img/s; pytorch: {theirs:.2f} s/batch = {64/theirs:.1f} img/s; ratio curate/pytorch throughput = {theirs/ours:.2f}")
PY
