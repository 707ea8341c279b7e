#!/usr/bin/env bash
# Bundles the parex language server and its Python dependencies into bundled/libs, the way
# Microsoft's Python tool extensions do: the extension starts `python -m parex_lsp` with
# PYTHONPATH=bundled/libs, so a person needs only Python 3.11+ (no pip install, no PATH entry).
#
# Only pure-Python wheels for Python 3.11 (the oldest the server supports) are taken, so the one
# .vsix serves every platform and every Python from 3.11 up; a dependency without a pure wheel
# fails the build here rather than on someone's machine.
#
# Environment: PAREX_BUNDLE_PYTHON, the Python that runs pip (default: python3).
set -euo pipefail
EXT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$EXT")
PY=${PAREX_BUNDLE_PYTHON:-python3}
OUT=$EXT/bundled/libs

command -v "$PY" >/dev/null || { echo "bundle-server: no $PY (set PAREX_BUNDLE_PYTHON)" >&2; exit 1; }
[ -f "$ROOT/pyproject.toml" ] || { echo "bundle-server: no pyproject.toml in $ROOT" >&2; exit 1; }

WHEELS=$(mktemp -d "${TMPDIR:-/tmp}/parex-bundle.XXXXXX")
trap 'rm -rf "$WHEELS"' EXIT
quiet() { grep -v -e '^WARNING: Location' -e '^WARNING: Running pip as' || true; }

"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$WHEELS" "$ROOT" 2>&1 | quiet
rm -rf "$OUT"
"$PY" -m pip install --quiet --disable-pip-version-check --no-compile --target "$OUT" \
  --python-version 3.11 --implementation py --abi none --platform any --only-binary=:all: \
  "$WHEELS"/parex_lsp-*.whl 2>&1 | quiet
# Console scripts carry the build machine's interpreter path: the extension never uses them.
rm -rf "$OUT/bin"
[ -f "$OUT/parex_lsp/__main__.py" ] || { echo "bundle-server: parex_lsp is missing from $OUT" >&2; exit 1; }
native=$(find "$OUT" \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' \) | head -n 5)
[ -z "$native" ] || { echo "bundle-server: native code in the bundle: $native" >&2; exit 1; }
echo "bundled the server into bundled/libs: $(ls "$OUT" | grep -c '\.dist-info$') distributions, $(du -sh "$OUT" | cut -f1)"
