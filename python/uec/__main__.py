"""``python -m uec``: the ``uec`` command line (see ``uec.cli``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
