#!/usr/bin/env bash
# End-to-end speed and duplicate recall of curate against CleanVision (PyPI), in one run on
# one machine. Prints cold and warm `curate analyze` times on N generated 256×256 JPEGs,
# CleanVision's time on the same folder and the ratio, then both tools' duplicate pair
# recall on the demo dataset with planted copies.
#
#   benches/peers.sh            # N=10000
#   N=2000 benches/peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
N="${N:-10000}"
WORK="${WORK:-/tmp/curate-peers}"
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/curate"
python3 -m pip install -q "cleanvision==0.3.7" pyarrow 2>&1 | grep -v -i "warning" || true

rm -rf "$WORK" && mkdir -p "$WORK"
"$BIN" demo "$WORK/plain" --scenes "$N" --plain --json >/dev/null
rm -rf "$WORK/plain/.curate"
sync
cold=$("$BIN" analyze "$WORK/plain" --device cpu --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["elapsed_secs"], s["files"])')
warm=$("$BIN" analyze "$WORK/plain" --device cpu --json | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["elapsed_secs"])')
read -r cold_s files <<<"$cold"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf 'curate cold   %6.2f s  %7.0f images/s  (%s files)\n' "$cold_s" "$(python3 -c "print($files/$cold_s)")" "$files"
printf 'curate warm   %6.2f s\n' "$warm"
cv=$(python3 benches/peers.py time "$WORK/plain" 2>/dev/null | tail -1)
cv_s=$(python3 -c "import json; print(json.loads('$cv')['seconds'])")
printf 'CleanVision   %6.2f s  %7.0f images/s\n' "$cv_s" "$(python3 -c "print($files/$cv_s)")"
printf 'ratio         %6.1fx faster (cold)\n' "$(python3 -c "print($cv_s/$cold_s)")"

"$BIN" demo "$WORK/demo" --json >/dev/null
python3 benches/peers.py recall "$WORK/demo" 2>/dev/null | grep -v '^{'
