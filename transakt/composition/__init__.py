"""The composition root: what each process runs, wired in one place.

``open_node`` opens a wallet node (pools, Redis, the bank client, the ledger writer, the actor
system, the gateway, the services, the notifications), ``serve_worker`` runs the mail side as
its own process, and ``open_notifications`` gives either of them its relay, live hub and
mailers on a pool of their own. Nothing below this package opens a resource of its own.
"""

from transakt.composition.node import Node, open_node
from transakt.composition.notifications import open_notifications
from transakt.composition.worker import run as run_worker
from transakt.composition.worker import serve_worker

__all__ = ["Node", "open_node", "open_notifications", "run_worker", "serve_worker"]
