#!/usr/bin/env bash
# The guide's 8B job through `mailvoice train` on one GPU, with its checks (bench/gpu/run.py).
#
#   bash bench/gpu/prepare.sh            # here, with PyPI: the wheels the GPU image lacks
#   bash bench/gpu/run.sh                # on the GPU machine, offline: JSON + table under $OUT
#   bash bench/gpu/run.sh --tiny         # on CPU: the same script on a tiny Llama (the test suite)
#
# $OUT defaults to ./gpu-out; $PYTHON to python3. Extra arguments go to bench/gpu/run.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export OUT=${OUT:-$PWD/gpu-out}
WHEELS=${MAILVOICE_GPU_WHEELS:-$PWD/.gpu-wheels}
case " $* " in
  *" --tiny "*) ;;  # CPU: the local environment already has everything
  *)
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
      SITE=${TMPDIR:-/tmp}/mailvoice-gpu-site
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
      export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    fi
    ;;
esac
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -u bench/gpu/run.py --out "$OUT" --wheels "$WHEELS" "$@"
