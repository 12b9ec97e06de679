# Sourced by the scripts: shared environment.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/curate-xdg}"
# Reuse a build cache outside the clone when one exists (CI on a warm machine).
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d "$HOME/.cache/curate-target" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/curate-target"
fi
