"""The route table: every endpoint of the wallet service in one place."""

from __future__ import annotations

from aiohttp import web

from transakt.http.apidocs.views import setup_apidocs_routes
from transakt.http.constants import API_PREFIX
from transakt.http.views import (
    auth,
    bank_account,
    banking,
    dashboard,
    history,
    holds,
    ops,
    refunds,
    reviews,
    transfers,
    wallets,
)
from transakt.http.views import limits as spend_limits
from transakt.http.views.live import live
from transakt.http.views.sandbox import setup_sandbox_routes

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    """Register the wallet service's routes on ``app``."""
    app.router.add_routes(
        [
            web.get("/", dashboard.index, name="index"),
            web.get("/static/{name}", dashboard.asset, name="static_asset"),
            web.get("/healthz", ops.healthz, name="healthz"),
            web.get("/readyz", ops.readyz, name="readyz"),
            web.get("/metrics", ops.metrics, name="metrics"),
            web.get(f"{API_PREFIX}/openapi.json", ops.openapi, name="openapi"),
            web.post(f"{API_PREFIX}/auth/signup", auth.signup, name="signup"),
            web.post(f"{API_PREFIX}/auth/login", auth.login, name="login"),
            web.post(f"{API_PREFIX}/auth/logout", auth.logout, name="logout"),
            web.post(f"{API_PREFIX}/auth/password", auth.change_password, name="change_password"),
            web.post(f"{API_PREFIX}/auth/verify-email", auth.verify_email, name="verify_email"),
            web.post(
                f"{API_PREFIX}/auth/verify-email/resend", auth.resend_code, name="resend_code"
            ),
            web.get(f"{API_PREFIX}/me", auth.me, name="me"),
            web.get(f"{API_PREFIX}/bank-account", bank_account.bank_account, name="bank_account"),
            web.post(
                f"{API_PREFIX}/bank-account/verification",
                bank_account.start_verification,
                name="start_bank_verification",
            ),
            web.post(
                f"{API_PREFIX}/bank-account/confirm",
                bank_account.confirm_deposits,
                name="confirm_bank_account",
            ),
            web.post(
                f"{API_PREFIX}/bank-account/approvals",
                bank_account.approve_user,
                name="approve_bank_account_user",
            ),
            web.get(f"{API_PREFIX}/wallets", wallets.list_wallets, name="list_wallets"),
            web.post(f"{API_PREFIX}/wallets", wallets.create_wallet, name="create_wallet"),
            web.get(f"{API_PREFIX}/wallets/{{id}}", wallets.get_wallet, name="get_wallet"),
            web.get(
                f"{API_PREFIX}/wallets/{{id}}/transactions",
                wallets.wallet_history,
                name="wallet_history",
            ),
            web.get(f"{API_PREFIX}/wallets/{{id}}/statement", history.statement, name="statement"),
            web.get(f"{API_PREFIX}/wallets/{{id}}/balance", history.balance_at, name="balance_at"),
            web.get(
                f"{API_PREFIX}/wallets/{{id}}/balance/daily",
                history.daily_balances,
                name="daily_balances",
            ),
            web.post(f"{API_PREFIX}/transfers", transfers.create_transfer, name="create_transfer"),
            web.post(f"{API_PREFIX}/transfers/batch", transfers.create_batch, name="create_batch"),
            web.get(f"{API_PREFIX}/transfers/{{id}}", transfers.get_transfer, name="get_transfer"),
            web.post(
                f"{API_PREFIX}/transfers/{{id}}/refund", refunds.create_refund, name="create_refund"
            ),
            web.get(
                f"{API_PREFIX}/transfers/{{id}}/refunds", refunds.list_refunds, name="list_refunds"
            ),
            web.get(f"{API_PREFIX}/recipients", transfers.recipient, name="recipient"),
            web.post(f"{API_PREFIX}/holds", holds.create_hold, name="create_hold"),
            web.get(f"{API_PREFIX}/holds/{{id}}", holds.get_hold, name="get_hold"),
            web.post(f"{API_PREFIX}/holds/{{id}}/post", holds.post_hold, name="post_hold"),
            web.post(f"{API_PREFIX}/holds/{{id}}/void", holds.void_hold, name="void_hold"),
            web.get(f"{API_PREFIX}/live", live, name="live"),
            web.post(f"{API_PREFIX}/deposits", banking.create_deposit, name="create_deposit"),
            web.post(
                f"{API_PREFIX}/withdrawals", banking.create_withdrawal, name="create_withdrawal"
            ),
        ]
    )
    # Spend limits and fraud review (the "Ledger parity" issue).
    app.router.add_routes(
        [
            web.get(f"{API_PREFIX}/wallets/{{id}}/limits", spend_limits.get_limits, name="limits"),
            web.put(
                f"{API_PREFIX}/wallets/{{id}}/limits", spend_limits.set_limits, name="set_limits"
            ),
            web.get(f"{API_PREFIX}/reviews", reviews.list_reviews, name="list_reviews"),
            web.post(
                f"{API_PREFIX}/reviews/{{id}}/approve", reviews.approve, name="approve_review"
            ),
            web.post(f"{API_PREFIX}/reviews/{{id}}/reject", reviews.reject, name="reject_review"),
        ]
    )
    setup_apidocs_routes(app)  # /api/docs: the OpenAPI document as a page
    setup_sandbox_routes(app)  # dev mode only: the sandbox bank's outage mode
