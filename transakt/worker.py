"""``transakt worker``: the mail side as its own process (wired in ``transakt.composition``)."""

from transakt.composition.worker import run, serve_worker

__all__ = ["run", "serve_worker"]
