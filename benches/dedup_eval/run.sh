#!/usr/bin/env bash
# Duplicate / hard-negative / outlier evaluation of curate against peer tools on sets built
# from real images in packages. See benches/dedup_eval/README.md.
#
#   benches/dedup_eval/run.sh                    # dev set: generate if missing, curate, peers
#   benches/dedup_eval/run.sh --set heldout      # the held-out set (score only at the end)
#   benches/dedup_eval/run.sh --scale 5          # a ~10k-image version of the dev set
#   benches/dedup_eval/run.sh --set heldout --seed 4004   # a fresh draw (sets-seed4004/)
#   benches/dedup_eval/run.sh --no-peers         # curate only
#   benches/dedup_eval/run.sh --reuse-peers      # reuse peer outputs from an earlier run
#
# Environment: CURATE (binary; default ${CARGO_TARGET_DIR:-target}/release/curate, skipped with
# a message when absent; nothing is built here), CURATE_EVAL_CACHE (default
# ~/.cache/curate-eval: venvs, downloaded sources, sets, peer outputs), PYTHON (default
# python3.11). The peer tools are pinned below, their dependencies in requirements-*.txt.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${CURATE_EVAL_CACHE:-$HOME/.cache/curate-eval}"
export CURATE_EVAL_CACHE="$CACHE"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/curate-xdg}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

SET=dev SCALE=1 SEED= PEERS=--peers REUSE=
while [ $# -gt 0 ]; do
  case "$1" in
    --set) SET="$2"; shift 2 ;;
    --scale) SCALE="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --no-peers) PEERS=; shift ;;
    --reuse-peers) REUSE=--reuse-peers; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$SET" in dev|heldout) ;; *) echo "--set must be dev or heldout" >&2; exit 2 ;; esac

# The peer tools, pinned; their dependencies are pinned in requirements-*.txt.
PEERS_PINS=(cleanvision==0.3.7 imagededup==0.3.3.post2 "cleanlab[datalab]==2.9.0" pyarrow==26.0.1)
FASTDUP_PINS=(fastdup==2.54)

# venv NAME REQUIREMENTS PINS...: create and install once per requirements + pins
venv() {
  local dir="$CACHE/$1" req="$HERE/$2" stamp
  shift 2
  stamp="$( (cat "$req"; echo "$@") | sha256sum | cut -c1-16)"
  if [ ! -f "$dir/.installed-$stamp" ]; then
    echo "setting up $dir ($*)" >&2
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    # --no-deps: the requirement files are complete pip freezes (this also skips imagededup's
    # torch / torchvision, needed only by its CNN method, which is not used)
    "$dir/bin/python" -m pip install -q --no-deps -r "$req" "$@"
    touch "$dir/.installed-$stamp"
  fi
}
mkdir -p "$CACHE" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true
venv venv-peers requirements-peers.txt "${PEERS_PINS[@]}"
if [ -n "$PEERS" ]; then venv venv-fastdup requirements-fastdup.txt "${FASTDUP_PINS[@]}"; fi
PY="$CACHE/venv-peers/bin/python"

# Another seed draws other originals, transforms and hard negatives from the same sources,
# into a folder of its own.
SETS="$CACHE/sets${SEED:+-seed$SEED}"
NAME="$SET"; if [ "$SCALE" != 1 ]; then NAME="$SET-x$SCALE"; fi
DIR="$SETS/$NAME"
if [ ! -f "$DIR/truth.json" ]; then
  "$PY" "$HERE/make_sets.py" "$SETS" --set "$SET" --scale "$SCALE" ${SEED:+--seed "$SEED"} --force
fi

cd "$ROOT"
CURATE_BIN="${CURATE:-${CARGO_TARGET_DIR:-target}/release/curate}"
# scripts/env.sh builds into ~/.cache/curate-target: take that binary when there is no
# other, or when it is newer than a stale one under target/ (a forgotten `. scripts/env.sh`).
cached="$HOME/.cache/curate-target/release/curate"
if [ -z "${CURATE:-}" ] && [ -x "$cached" ] && { [ ! -x "$CURATE_BIN" ] || [ "$cached" -nt "$CURATE_BIN" ]; }; then
  CURATE_BIN="$cached"
fi
NO_CURATE=
if [ -x "$CURATE_BIN" ]; then
  echo "curate: $CURATE_BIN analyze $DIR --json" >&2
  rm -rf "$DIR/.curate"
  start=$(date +%s%N)
  if "$CURATE_BIN" analyze "$DIR" --json > "$SETS/$NAME-curate.json" 2> "$SETS/$NAME-curate.stderr"; then
    echo "curate: $(( ($(date +%s%N) - start) / 1000000 )) ms (its JSON summary: $SETS/$NAME-curate.json)" >&2
  else
    echo "curate failed (exit $?); see $SETS/$NAME-curate.stderr" >&2
    tail -5 "$SETS/$NAME-curate.stderr" >&2 || true
    NO_CURATE=--no-curate
  fi
else
  echo "curate: no binary at $CURATE_BIN (set CURATE=...); scoring the peers only" >&2
  rm -rf "$DIR/.curate"
  NO_CURATE=--no-curate
fi

"$PY" "$HERE/score.py" "$DIR" $PEERS $REUSE $NO_CURATE --out "$SETS/$NAME-scores.json"
