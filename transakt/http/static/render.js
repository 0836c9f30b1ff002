// How wallets, transfers and bank operations look: small builders, text only.
import { el, timeElement } from "./dom.js";
import { formatMoney } from "./money.js";

// What the bank's refusal codes mean to a person; unknown codes are shown as they are.
const REASONS = {
  insufficient_funds: "the bank account does not have enough money",
  balance_limit_exceeded: "the bank account cannot hold that much",
  account_not_found: "the bank account does not exist",
  currency_mismatch: "the bank account is in another currency",
};

const KINDS = { p2p: "Payment", deposit: "Deposit", withdrawal: "Withdrawal" };

/** "Posted", "Pending" or "Voided: <why> (<code>)". */
export function statusText(transfer) {
  if (transfer.status === "voided") {
    if (!transfer.reason) {
      return "Voided";
    }
    const meaning = REASONS[transfer.reason];
    return meaning ? `Voided: ${meaning} (${transfer.reason})` : `Voided: ${transfer.reason}`;
  }
  return transfer.status === "posted" ? "Posted" : "Pending";
}

function statusElement(transfer) {
  return el("span", { class: "status", "data-status": transfer.status, text: statusText(transfer) });
}

/** A wallet's card; `walletCardUpdate` refreshes its figures in place. */
export function walletCard(wallet, index) {
  const titleId = `wallet-title-${index}`;
  const chart = el("div", { class: "chart-box" });
  const card = el(
    "li",
    { class: "wallet", "data-wallet-id": wallet.id },
    el(
      "section",
      { "aria-labelledby": titleId },
      el("h3", { id: titleId, text: `${wallet.currency} wallet` }),
      el(
        "p",
        { class: "balance" },
        el("span", { class: "label", text: "Balance" }),
        el("span", { class: "amount", "data-testid": "balance" }),
      ),
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "Available" }),
        el("dd", { "data-testid": "available" }),
        el("dt", { text: "Pending in" }),
        el("dd", { "data-testid": "pending-in" }),
        el("dt", { text: "Pending out" }),
        el("dd", { "data-testid": "pending-out" }),
        el("dt", { text: "Wallet id" }),
        el("dd", {}, el("code", { class: "wallet-id", text: wallet.id })),
      ),
      chart,
    ),
  );
  walletCardUpdate(card, wallet);
  return card;
}

export function walletCardUpdate(card, wallet) {
  const figures = {
    balance: wallet.balance,
    available: wallet.available,
    "pending-in": wallet.pending_in,
    "pending-out": wallet.pending_out,
  };
  for (const [name, amount] of Object.entries(figures)) {
    const node = card.querySelector(`[data-testid="${name}"]`);
    const text = formatMoney(amount, wallet.currency);
    if (node.textContent !== text) {
      node.textContent = text;
      if (name === "balance") {
        // Restart the highlight so that a change is seen, not only read.
        card.classList.remove("changed");
        void card.offsetWidth;
        card.classList.add("changed");
      }
    }
  }
}

/** What a transfer is from the point of view of `walletId`, and its signed amount. */
export function describeTransfer(transfer, walletId, ownWallets) {
  const incoming = transfer.to_wallet === walletId;
  const other = incoming ? transfer.from_wallet : transfer.to_wallet;
  let what;
  if (transfer.kind === "deposit") {
    what = "Deposit from bank";
  } else if (transfer.kind === "withdrawal") {
    what = "Withdrawal to bank";
  } else if (ownWallets.has(other)) {
    what = `${incoming ? "From" : "To"} your ${ownWallets.get(other).currency} wallet`;
  } else {
    what = `Payment ${incoming ? "from" : "to"} ${other}`;
  }
  return { what, signedAmount: incoming ? transfer.amount : -transfer.amount };
}

/** One line of the history list. */
export function historyItem(transfer, walletId, ownWallets) {
  const { what, signedAmount } = describeTransfer(transfer, walletId, ownWallets);
  const amountClass = signedAmount > 0 ? "tx-amount in" : "tx-amount out";
  return el(
    "li",
    { class: "tx", "data-id": transfer.id, "data-status": transfer.status },
    el(
      "div",
      { class: "tx-main" },
      el("span", { class: "tx-what", text: what }),
      el("span", {
        class: amountClass,
        text: formatMoney(signedAmount, transfer.currency, { signed: true }),
      }),
    ),
    el("div", { class: "tx-meta" }, timeElement(transfer.created_at), " · ", statusElement(transfer)),
    transfer.memo ? el("p", { class: "tx-memo", text: transfer.memo }) : null,
  );
}

/** One line of the bank operations list: kind, amount and the live status. */
export function operationItem(transfer) {
  return el(
    "li",
    { class: "operation", "data-id": transfer.id, "data-status": transfer.status },
    el("span", { class: "op-kind", text: KINDS[transfer.kind] || transfer.kind }),
    " ",
    el("span", { class: "op-amount", text: formatMoney(transfer.amount, transfer.currency) }),
    " ",
    statusElement(transfer),
  );
}
