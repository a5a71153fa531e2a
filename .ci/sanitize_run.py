"""Runs pytest against the sanitizer build staged by .ci/sanitize.sh.

An editable install puts an import hook in front of PYTHONPATH that would load the normal
``uec._core``; hooks that claim ``uec`` are dropped, and the run stops unless the staged,
sanitized module is the one imported.

    python .ci/sanitize_run.py STAGE_DIR [pytest arguments]
"""

import os
import sys
from importlib.machinery import PathFinder


def _claims_uec(finder):
    try:
        return finder.find_spec("uec", None) is not None
    except Exception:  # a finder without find_spec, or one that fails on this name
        return False


def main():
    stage = os.path.realpath(sys.argv[1])
    sys.meta_path[:] = [f for f in sys.meta_path if f is PathFinder or not _claims_uec(f)]
    import uec._core

    where = os.path.realpath(uec._core.__file__)
    if not where.startswith(stage + os.sep):
        sys.exit(f"sanitize: imported {where}, not the sanitized core under {stage}")
    print(f"sanitize: testing {where}", flush=True)
    import pytest

    return pytest.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
