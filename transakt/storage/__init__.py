"""Storage: the asyncpg pool, SQL migrations, the ledger and repositories."""

from transakt.storage.ledger import BatchResult, commit_batch
from transakt.storage.migrate import migrate
from transakt.storage.pool import create_pool
from transakt.storage.repository import Repository

__all__ = ["BatchResult", "Repository", "commit_batch", "create_pool", "migrate"]
