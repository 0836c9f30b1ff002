"""The ``transakt`` command: one subcommand per part of the system, configured by TRANSAKT_*.

- :mod:`~transakt.cli.entry`: the parser, settings and logging, and the dispatch (:func:`main`);
- :mod:`~transakt.cli.commands`: ``serve``, ``bank``, ``worker``, ``migrate``, ``reconcile``;
- :mod:`~transakt.cli.up`: ``transakt up``, the supervisor of the whole system's processes;
- :mod:`~transakt.cli.checks`: what a command checks before it starts anything;
- :mod:`~transakt.cli.embedded`: the embedded PostgreSQL and Redis (the ``embedded`` extra).
"""

from transakt.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
