#!/usr/bin/env bash
# Builds the compiled core with AddressSanitizer and UndefinedBehaviorSanitizer (-DUEC_SANITIZE=ON)
# into its own build directory, stages it beside a copy of the Python package, and runs the core
# tests against it: any invalid read or write, use after free, or undefined behaviour aborts the
# run. Needs cmake, GCC (its libasan.so is preloaded), and a Python with
# the test dependencies (numpy, scipy, scikit-learn, pytest, torch). About 1.5-2.5 minutes on 2 cores
# (build about 1 minute, tests 35-80 s).
#
#   .ci/sanitize.sh [extra pytest arguments]      (PYTHON=... to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
BUILD=build/sanitize
CXX=${CXX:-c++}
# The package's build requirements are not in a test environment: fetch them from PyPI if missing.
"$PY" -m pybind11 --cmakedir > /dev/null 2>&1 || "$PY" -m pip install --quiet pybind11
command -v cmake > /dev/null || "$PY" -m pip install --quiet cmake

mkdir -p build
cmake -S . -B "$BUILD" -DUEC_SANITIZE=ON -DUEC_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" -DPython_EXECUTABLE="$(command -v "$PY")" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" > "$BUILD.configure.log"
cmake --build "$BUILD" -j 2

STAGE="$BUILD/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r python/uec "$STAGE/uec"
rm -f "$STAGE"/uec/_core*.so
cp "$BUILD"/_core*.so "$STAGE/uec/"

# The ASan runtime must be loaded before anything else in a Python process, and the C++ runtime
# with it: the interpreter does not link libstdc++, so without it ASan's __cxa_throw interceptor
# finds no real __cxa_throw and aborts at the first C++ exception. Leaks are not checked (the
# interpreter keeps objects alive until exit by design).
ASAN_LIB="$("$CXX" -print-file-name=libasan.so)"
CXX_LIB="$("$CXX" -print-file-name=libstdc++.so)"
[ -f "$ASAN_LIB" ] || { echo "no libasan.so for $CXX" >&2; exit 2; }
export LD_PRELOAD="$ASAN_LIB $CXX_LIB"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=2

LOG="$BUILD/pytest.log"
set +e
"$PY" .ci/sanitize_run.py "$STAGE" -q -p no:cacheprovider \
  tests/test_core_boundary.py tests/test_core_checks.py tests/test_core_gradients.py \
  tests/test_bad_input.py tests/test_determinism.py::test_thread_counts_agree_bit_for_bit_oversubscribed_too \
  "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if grep -q -E "runtime error:|ERROR: AddressSanitizer" "$LOG"; then
  echo "sanitize: sanitizer reports in $LOG" >&2
  exit 1
fi
exit "$status"
