# Sourced by the shell tests: strict mode, a fresh folder $work removed on exit, and fail MESSAGE.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
