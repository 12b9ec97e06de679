#!/usr/bin/env bash
# Mislabelled-image detection: curate analyze --class-from folder against cleanlab on the
# same embeddings, on class-folder sets built from real images (see make_set.py).
#
#   benches/label_eval/run.sh                 # dev sets (emoji-twitter, digits-a)
#   benches/label_eval/run.sh --set heldout   # held-out sets (emoji-apple, digits-b): score at the end
#
# Uses the dedup_eval venv and downloaded sources (benches/dedup_eval/run.sh makes them) and
# the curate binary (CURATE, default ~/.cache/curate-target/release/curate; nothing is built).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${CURATE_EVAL_CACHE:-$HOME/.cache/curate-eval}"
PY="$CACHE/venv-peers/bin/python"
CURATE_BIN="${CURATE:-$HOME/.cache/curate-target/release/curate}"
SET=dev
while [ $# -gt 0 ]; do
  case "$1" in
    --set) SET="$2"; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -x "$PY" ] || [ ! -d "$CACHE/sources" ]; then
  echo "run benches/dedup_eval/run.sh once first (it makes $CACHE/venv-peers and sources/)" >&2
  exit 2
fi
case "$SET" in dev) NAMES="emoji-twitter digits-a" ;; heldout) NAMES="emoji-apple digits-b" ;;
  *) echo "--set must be dev or heldout" >&2; exit 2 ;; esac
OUT="$CACHE/labels"
for name in $NAMES; do
  [ -f "$OUT/$name/truth.json" ] || "$PY" "$HERE/make_set.py" "$OUT" --set "$SET" --sources "$CACHE/sources"
done
for name in $NAMES; do
  rm -rf "$OUT/$name/.curate"
  start=$(date +%s%N)
  "$CURATE_BIN" analyze "$OUT/$name" --class-from folder --json > "$OUT/$name-curate.json"
  echo "curate analyze --class-from folder: $(( ($(date +%s%N) - start) / 1000000 )) ms (cold, with the default model)" >&2
  # The same embeddings for the peers (from the cache the run just filled), written
  # beside the report (`curate embed` runs the pass again and rewrites the report, so
  # keep the class-checked one aside first).
  cp "$OUT/$name/.curate/report.parquet" "$OUT/$name-report.parquet"
  "$CURATE_BIN" embed "$OUT/$name" --out "$OUT/$name-emb.parquet" >&2
  "$PY" "$HERE/score.py" "$OUT/$name" --report "$OUT/$name-report.parquet" --embeddings "$OUT/$name-emb.parquet" --peers --out "$OUT/$name-scores.json"
done
