"""The actors and nothing else: one per wallet (debits), and the mailers."""

from transakt.actors.email import EmailActor
from transakt.actors.wallet import Debit, DebitRate, WalletActor

__all__ = ["Debit", "DebitRate", "EmailActor", "WalletActor"]
