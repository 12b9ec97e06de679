#!/usr/bin/env bash
# Near-duplicate captions: curate (MinHash LSH, `curate caption-dups`) against datasketch on
# the same planted set in the same run. See benches/caption_dedup/README.md.
#
#   benches/caption_dedup/run.sh [--n 10000] [--seed 7]
#
# Environment: CURATE (default ${CARGO_TARGET_DIR:-target}/release/curate; nothing is built
# here), CURATE_EVAL_CACHE (default ~/.cache/curate-eval: the venv and the set).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${CURATE_EVAL_CACHE:-$HOME/.cache/curate-eval}"
CURATE="${CURATE:-${CARGO_TARGET_DIR:-$ROOT/target}/release/curate}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
N=10000 SEED=7
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$CURATE" ] || { echo "no curate binary at $CURATE (cargo build --release)" >&2; exit 1; }
VENV="$CACHE/venv-datasketch"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q datasketch==1.6.5
fi
SET="$CACHE/captions-n$N-seed$SEED"
[ -f "$SET/captions.txt" ] || "$PYTHON" "$HERE/make_captions.py" "$SET" --n "$N" --seed "$SEED"
start=$(date +%s.%N)
"$CURATE" caption-dups "$SET/captions.txt" --out "$SET/curate.csv"
curate_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
"$VENV/bin/python" "$HERE/peers.py" "$SET/captions.txt" 0.5 "$SET/datasketch.csv"
peer_s=$(echo "$(date +%s.%N) - $start" | bc)
"$PYTHON" "$HERE/score.py" "$SET/truth.json" \
  "curate=$SET/curate.csv:$(printf %.2f "$curate_s")" \
  "datasketch=$SET/datasketch.csv:$(printf %.2f "$peer_s")"
echo "(times: whole process, start to end; the tools' own lines above give the grouping alone)"
