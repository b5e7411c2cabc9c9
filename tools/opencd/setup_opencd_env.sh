#!/usr/bin/env bash
# Build a second virtual environment in which hicd_mm runs next to a real Open-CD install.
#
#   OPENCD_ROOT=/path/to/open-cd bash tools/opencd/setup_opencd_env.sh [VENV_DIR]
#
# Why a second environment: Open-CD and mmpretrain need torchvision, and PyPI's torchvision
# 0.28.0 imports only next to the *regular* torch 2.13.0 build, not next to the ``+cpu`` build
# of the main environment (.venv). Versions match the main environment (requirements.txt):
# mmengine 0.10.7, mmcv 2.1.0 (full build with ops), mmseg 1.2.2; plus mmdet 3.3.0 (Open-CD
# asserts it on import) and mmpretrain 1.2.0.
#
# mmcv: the wheel the main install compiled against torch 2.13 is reused (MMCV_WHEEL, or the one
# pip cached under ~/.cache/pip/wheels); only if none exists is it built once here (~10 min).
# Open-CD is installed in editable mode from the source checkout OPENCD_ROOT (it does not ship
# its configs as package data: configs/opencd/ reads them from OPENCD_ROOT as well).
# Afterwards:  OPENCD_ROOT=... VENV_DIR/bin/python -m pytest tests/opencd
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OPENCD_ROOT:?set OPENCD_ROOT to an Open-CD source checkout (git clone likyoo/open-cd)}"
if [ ! -f "$OPENCD_ROOT/opencd/__init__.py" ]; then
  echo "OPENCD_ROOT=$OPENCD_ROOT is not an Open-CD checkout (no opencd/__init__.py)" >&2
  exit 1
fi
VENV=${1:-.venv-opencd}
PYTHON=${PYTHON:-python3}
$PYTHON -m venv "$VENV"
PY="$VENV/bin/python"
# PyPI only (--isolated): a local find-links folder or pip.conf may offer torch 2.13.0+cpu,
# which pip would prefer (the local label sorts higher) and which torchvision cannot load next to.
PIP=("$PY" -m pip --isolated)
"${PIP[@]}" install "setuptools>=77.0.3,<81" wheel
"${PIP[@]}" install torch==2.13.0 torchvision==0.28.0 numpy==2.4.6
"$PY" - <<'PYCHECK'
import torch, torchvision
assert not torch.__version__.endswith('+cpu'), f'expected the regular torch build, got {torch.__version__}'
print('torch', torch.__version__, 'torchvision', torchvision.__version__)
PYCHECK
MMCV_WHEEL=${MMCV_WHEEL:-$(find "$HOME/.cache/pip/wheels" -name 'mmcv-2.1.0-*.whl' 2>/dev/null | head -n 1)}
if [ -z "$MMCV_WHEEL" ]; then
  echo "no cached mmcv 2.1.0 wheel: building one against this torch (once)"
  "${PIP[@]}" install ninja
  mkdir -p build/wheels
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "${PIP[@]}" wheel --no-build-isolation --no-deps \
    -w build/wheels mmcv==2.1.0
  MMCV_WHEEL=$(ls build/wheels/mmcv-2.1.0-*.whl | head -n 1)
fi
echo "mmcv wheel: $MMCV_WHEEL"
"${PIP[@]}" install "$MMCV_WHEEL"
"${PIP[@]}" install mmengine==0.10.7 mmsegmentation==1.2.2 mmdet==3.3.0 mmpretrain==1.2.0 \
  opencv-python==5.0.0.93 opencv-python-headless==5.0.0.93 ftfy==6.3.1 regex==2026.11.15 \
  matplotlib==3.11.2 prettytable scipy pytest==9.2.0 tifffile==2026.3.3
"${PIP[@]}" install --no-build-isolation --no-deps -e "$OPENCD_ROOT"
"${PIP[@]}" install --no-build-isolation --no-deps -e .
"$PY" - <<'PYCHECK'
import mmcv.ops, opencd, mmpretrain, hicd_mm
print('ok: mmcv', mmcv.__version__, 'opencd', opencd.__version__, 'mmpretrain',
      mmpretrain.__version__)
PYCHECK
touch "$VENV/.opencd_env_installed"
