"""The composition root: what each process runs, wired in one place.

``node.open_node`` opens a wallet node (pools, Redis, the bank client, the ledger writer, the
actor system, the gateway, the services, the notifications); ``worker.serve_worker`` runs the
mail side as its own process; ``notifications.open_notifications`` gives either of them its
relay, live hub and mailers on a pool of their own; ``bank.open_bank`` opens what the sandbox
bank's process needs. Nothing below this package opens a resource of its own.

Import the module you need (``from transakt.composition.node import open_node``): this package
imports none of them, so the sandbox bank's process loads nothing of the wallet.
"""
