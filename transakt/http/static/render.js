// How wallets, transfers and bank operations look: small builders, text only.
import { el, timeElement } from "./dom.js";
import { formatMoney } from "./money.js";
import { avatar, copyButton, initials, learnNames, personOf, shortId } from "./people.js";

// What the codes a transfer ends with mean to a person; others are read out as words.
const REASONS = {
  insufficient_funds: "the bank account does not have enough money",
  balance_limit_exceeded: "the bank account cannot hold that much",
  account_not_found: "the bank account does not exist",
  currency_mismatch: "the bank account is in another currency",
  expired: "the hold expired before it was released",
  voided_by_payer: "cancelled by the payer",
  voided_by_payee: "cancelled by the payee",
  bank_unavailable: "the bank could not be reached",
  declined: "the bank declined it",
};

// Why a payment waits for review, in words (codes from the review service).
const REVIEW_REASONS = {
  new_recipient: "a first payment to this person",
  unusual_amount: "a larger amount than usual",
  velocity_count: "many payments in a short time",
  velocity_amount: "a lot of money in a short time",
  unrecorded: "a routine check",
};

const KINDS = { p2p: "Payment", deposit: "Deposit", withdrawal: "Withdrawal" };

function words(code) {
  return String(code).replaceAll("_", " ");
}

export function reasonText(code) {
  return REASONS[code] || words(code);
}

/** True while a payment waits for a person at Transakt to look at it. */
export function underReview(transfer) {
  return Boolean(transfer.review && transfer.review.status === "under_review" && transfer.status === "pending");
}

/** "Completed", "Pending", "Under review: …" or "Cancelled: <why in words>". */
export function statusText(transfer) {
  if (transfer.status === "voided") {
    return transfer.reason ? `Voided: ${reasonText(transfer.reason)}` : "Voided";
  }
  if (underReview(transfer)) {
    const reasons = (transfer.review.reasons || []).map((code) => REVIEW_REASONS[code] || words(code));
    return reasons.length ? `Under review: ${reasons.join(", ")}` : "Under review";
  }
  if (transfer.status === "pending" && isHold(transfer)) {
    return "Held";
  }
  return transfer.status === "posted" ? "Posted" : "Pending";
}

/** A refund (its id names the payment it pays back). */
export function isRefund(transfer) {
  return String(transfer.id).startsWith("rfd:");
}

/** A hold itself (not the transfer `<hold id>:post` that moves its money). */
export function isHold(transfer) {
  const id = String(transfer.id);
  return id.startsWith("hld_") && !id.includes(":");
}

function statusElement(transfer) {
  const status = underReview(transfer) ? "review" : transfer.status;
  return el("span", { class: "status", "data-status": status, text: statusText(transfer) });
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
      ),
      chart,
      el("p", { class: "wallet-id hint" }, "Wallet id ", copyButton(wallet.id)),
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

/**
 * Who a transfer is with, from the point of view of `walletId`: {name, detail, badge, kind,
 * other} and its signed amount. Names are the ones banks confirmed (see people.js).
 */
export function describeTransfer(transfer, walletId, ownWallets) {
  learnNames(transfer);
  const incoming = transfer.to_wallet === walletId;
  const other = incoming ? transfer.from_wallet : transfer.to_wallet;
  const signedAmount = incoming ? transfer.amount : -transfer.amount;
  if (transfer.kind === "deposit") {
    return { what: "Deposit from bank", detail: "From your bank account", badge: "⇣", kind: "bank", signedAmount };
  }
  if (transfer.kind === "withdrawal") {
    return { what: "Withdrawal to bank", detail: "To your bank account", badge: "⇡", kind: "bank", signedAmount };
  }
  if (ownWallets.has(other)) {
    const currency = ownWallets.get(other).currency;
    return {
      what: `${incoming ? "From" : "To"} your ${currency} wallet`,
      detail: "Between your wallets",
      badge: "⇄",
      kind: "own",
      signedAmount,
    };
  }
  const person = personOf(other);
  const hold = isHold(transfer) ? "Hold" : isRefund(transfer) ? "Refund" : "Payment";
  if (person) {
    return {
      what: `${incoming ? `${hold} from` : `${hold} to`} ${person.name}`,
      detail: person.email || `Wallet ${shortId(other)}`,
      badge: initials(person.name),
      kind: "person",
      other,
      signedAmount,
    };
  }
  return {
    what: incoming ? `${hold} received` : `${hold} sent`,
    detail: `${incoming ? "From" : "To"} wallet ${shortId(other)} (name not shared)`,
    badge: "?",
    kind: "unknown",
    other,
    signedAmount,
  };
}

/** A small button whose accessible name starts with its visible text, then says which. */
function actionButton(action, transfer, text, what) {
  return el("button", {
    type: "button",
    class: "secondary small",
    "data-action": action,
    "data-id": transfer.id,
    "aria-label": `${text}: ${what}`,
    text,
  });
}

/** What the user may do with a transfer from `walletId`'s side: release, cancel, refund. */
function actions(transfer, walletId, ownWallets, what) {
  const buttons = [];
  if (isHold(transfer) && transfer.status === "pending" && !underReview(transfer)) {
    buttons.push(actionButton("post-hold", transfer, "Release", what));
    buttons.push(actionButton("void-hold", transfer, "Cancel hold", what));
  }
  const received = transfer.to_wallet === walletId && !ownWallets.has(transfer.from_wallet);
  if (transfer.kind === "p2p" && transfer.status === "posted" && received && !isHold(transfer) && !isRefund(transfer)) {
    buttons.push(actionButton("refund", transfer, "Refund", what));
  }
  return buttons.length ? el("div", { class: "tx-actions" }, ...buttons) : null;
}

/** One line of the history list. */
export function historyItem(transfer, walletId, ownWallets) {
  const described = describeTransfer(transfer, walletId, ownWallets);
  const { what, detail, badge, kind, signedAmount } = described;
  const amountClass = signedAmount > 0 ? "tx-amount in" : "tx-amount out";
  const expires =
    isHold(transfer) && transfer.status === "pending" && transfer.expires_at
      ? [" · expires ", timeElement(transfer.expires_at)]
      : [];
  return el(
    "li",
    { class: "tx", "data-id": transfer.id, "data-status": transfer.status },
    avatar(badge, kind),
    el(
      "div",
      { class: "tx-body" },
      el(
        "div",
        { class: "tx-main" },
        el("span", { class: "tx-what", text: what }),
        el("span", {
          class: amountClass,
          text: formatMoney(signedAmount, transfer.currency, { signed: true }),
        }),
      ),
      el("div", { class: "tx-meta" }, el("span", { text: detail }), " · ", timeElement(transfer.created_at), ...expires, " · ", statusElement(transfer)),
      transfer.memo ? el("p", { class: "tx-memo", text: transfer.memo }) : null,
      actions(transfer, walletId, ownWallets, `${what}, ${formatMoney(transfer.amount, transfer.currency)}`),
    ),
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
