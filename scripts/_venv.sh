# Shared by scripts/demo and scripts/test: make .venv with Python >= 3.11 and install videogen
# (with the extras named in $1, if any: `sandbox` for the demo; `test` includes it). Sourced,
# not run.

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "videogen needs Python 3.11 or newer" >&2; return 1
}

ensure_venv() {
  local target="."
  [ -n "${1:-}" ] && target=".[$1]"
  if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
  fi
  # Quiet unless it fails: setuptools prints pages of deprecation notes on every install.
  if ! .venv/bin/python -m pip install --disable-pip-version-check -q -e "$target" \
      > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    return 1
  fi
}
