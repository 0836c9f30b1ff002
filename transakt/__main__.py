"""``python -m transakt``: the same command line as the ``transakt`` script."""

from transakt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
