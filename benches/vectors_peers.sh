#!/usr/bin/env bash
# curate's vector stage (exact and IVF k-NN, k-means, UMAP) against scikit-learn, faiss-cpu
# and umap-learn from PyPI, on the same synthetic vectors in one run; prints the table of
# benches/vectors_peers.py (its docstring explains every figure). Arguments go to it.
#
#   benches/vectors_peers.sh                         # N = 100,000 × 512
#   benches/vectors_peers.sh --n 10000 --skip-ours   # the peers alone
#   VENV=~/peers-venv benches/vectors_peers.sh --json
#
# The venv (default /tmp/curate-peers-venv) is made on first use with the pinned versions
# below; a changed pin list reinstalls.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
VENV="${VENV:-/tmp/curate-peers-venv}"
PINS=(
  "numpy==2.4.6"
  "scikit-learn==1.9.1"
  "faiss-cpu==1.15.1"
  "umap-learn==0.5.12"
  "numba==0.68.1"
  "pynndescent==0.7.0"
  "pyarrow==26.0.1"
)
stamp="$VENV/.curate-pins"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "${PINS[*]}" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "${PINS[@]}"
  echo "${PINS[*]}" >"$stamp"
fi
exec "$VENV/bin/python" benches/vectors_peers.py "$@"
