// Moving money: payments with a confirmation step, bank deposits and withdrawals, history.
import { newIdempotencyKey } from "./api.js";
import { call, explain, rememberTransfer, report, SessionEnded, state, whenLive } from "./core.js";
import { byId, clearError, showError, whileBusy } from "./dom.js";
import { formatMoney, parseAmount } from "./money.js";
import { historyItem, operationItem } from "./render.js";
import { refreshWalletsUnlessLive, scheduleChart } from "./wallets.js";

const HISTORY_PAGE_SIZE = 10;

/** The form's amount in minor units, or null once the form shows why it is not one. */
function formAmount(form, currency) {
  try {
    return parseAmount(form.elements.amount.value, currency);
  } catch (error) {
    report(error, form);
    form.elements.amount.focus();
    return null;
  }
}

// ---------------------------------------------------------------------- send money

export function onReview(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const wallet = state.wallets.get(form.elements.from_wallet.value);
  const to = form.elements.to.value.trim();
  const memo = form.elements.memo.value.trim();
  if (!wallet) {
    showError(form, "Choose the wallet to pay from.");
    return;
  }
  if (!to) {
    showError(form, "Enter the recipient's e-mail or wallet id.");
    form.elements.to.focus();
    return;
  }
  const amount = formAmount(form, wallet.currency);
  if (amount === null) {
    return;
  }
  const body = { from_wallet: wallet.id, amount, currency: wallet.currency };
  body[to.includes("@") ? "to_email" : "to_wallet"] = to;
  if (memo) {
    body.memo = memo;
  }
  // One key per reviewed payment: a retry after a lost answer can never pay twice.
  state.pendingSend = { body, key: newIdempotencyKey(), to };
  byId("confirm-amount").textContent = formatMoney(amount, wallet.currency);
  byId("confirm-to").textContent = to;
  byId("confirm-from").textContent = `${wallet.currency} wallet (${wallet.id})`;
  byId("confirm-memo").textContent = memo || "—";
  const panel = byId("send-confirm");
  clearError(panel);
  byId("send-result").textContent = "";
  form.hidden = true;
  panel.hidden = false;
  byId("confirm-send").focus();
}

export function closeConfirmation() {
  state.pendingSend = null;
  byId("send-confirm").hidden = true;
  const form = byId("send-form");
  form.hidden = false;
  form.elements.amount.focus();
}

export async function onConfirmSend() {
  const pending = state.pendingSend;
  if (!pending) {
    return;
  }
  const panel = byId("send-confirm");
  clearError(panel);
  await whileBusy(panel, async () => {
    try {
      const transfer = await call("POST", "/transfers", { body: pending.body, idempotencyKey: pending.key });
      rememberTransfer(transfer);
      closeConfirmation();
      byId("send-form").reset();
      byId("send-result").textContent = `Sent ${formatMoney(transfer.amount, transfer.currency)} to ${pending.to}.`;
      upsertHistory(transfer);
      await refreshWalletsUnlessLive();
      scheduleChart(transfer.from_wallet);
    } catch (error) {
      report(error, panel);
    }
  });
}

// -------------------------------------------------------------------- bank transfers

export async function onBankSubmit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const kind = event.submitter && event.submitter.value === "withdrawal" ? "withdrawal" : "deposit";
  const wallet = state.wallets.get(form.elements.wallet.value);
  if (!wallet) {
    showError(form, "Choose a wallet.");
    return;
  }
  const amount = formAmount(form, wallet.currency);
  if (amount === null) {
    return;
  }
  const body = { wallet: wallet.id, amount, currency: wallet.currency };
  // The same request sent again after a failure keeps its key: the bank moves money once.
  const fingerprint = JSON.stringify([kind, body]);
  if (!state.bankAttempt || state.bankAttempt.fingerprint !== fingerprint) {
    state.bankAttempt = { fingerprint, key: newIdempotencyKey() };
  }
  await whileBusy(form, async () => {
    try {
      const transfer = await call("POST", kind === "deposit" ? "/deposits" : "/withdrawals", {
        body,
        idempotencyKey: state.bankAttempt.key,
      });
      state.bankAttempt = null;
      form.elements.amount.value = "";
      if (showTransfer(transfer).status === "pending") {
        confirmOnceLive(transfer.id);
      }
      await refreshWalletsUnlessLive();
    } catch (error) {
      report(error, form);
    }
  });
}

/**
 * Read a pending transfer again once the feed is open. The bank may answer before the feed is
 * (re)connected, and that push is then never seen; anything after the read is pushed.
 */
function confirmOnceLive(id) {
  whenLive()
    .then(() => call("GET", `/transfers/${encodeURIComponent(id)}`))
    .then(showTransfer)
    .catch((error) => report(error));
}

function upsertOperation(transfer) {
  const item = operationItem(transfer);
  const existing = state.operations.get(transfer.id);
  if (existing) {
    existing.replaceWith(item);
  } else {
    byId("operations").prepend(item);
  }
  state.operations.set(transfer.id, item);
  byId("operations-empty").hidden = true;
}

// ------------------------------------------------------------------------- history

export async function loadHistory({ reset }) {
  const select = byId("history-wallet");
  const list = byId("history");
  const more = byId("history-more");
  const errorText = byId("history-error");
  errorText.textContent = "";
  if (reset) {
    state.history = { walletId: select.value || null, cursor: null };
    list.replaceChildren();
  }
  const { walletId, cursor } = state.history;
  if (!walletId) {
    return;
  }
  let path = `/wallets/${encodeURIComponent(walletId)}/transactions?limit=${HISTORY_PAGE_SIZE}`;
  if (cursor) {
    path += `&cursor=${encodeURIComponent(cursor)}`;
  }
  more.disabled = true;
  try {
    const page = await call("GET", path);
    if (state.history.walletId !== walletId) {
      return; // another wallet was chosen meanwhile
    }
    for (const transfer of page.items) {
      if (!list.querySelector(`[data-id="${CSS.escape(transfer.id)}"]`)) {
        list.append(historyItem(rememberTransfer(transfer), walletId, state.wallets));
      }
    }
    state.history.cursor = page.next_cursor || null;
    more.hidden = !state.history.cursor;
    byId("history-empty").hidden = list.childElementCount > 0;
  } catch (error) {
    if (!(error instanceof SessionEnded)) {
      errorText.textContent = explain(error);
    }
  } finally {
    more.disabled = false;
  }
}

function upsertHistory(transfer) {
  const walletId = state.history.walletId;
  if (walletId === null || (transfer.from_wallet !== walletId && transfer.to_wallet !== walletId)) {
    return;
  }
  const list = byId("history");
  const item = historyItem(transfer, walletId, state.wallets);
  const existing = list.querySelector(`[data-id="${CSS.escape(transfer.id)}"]`);
  if (existing) {
    existing.replaceWith(item);
  } else {
    list.prepend(item);
  }
  byId("history-empty").hidden = true;
}

/** Show the newest known state of a transfer everywhere it appears. */
export function showTransfer(incoming) {
  const transfer = rememberTransfer(incoming);
  if (transfer.kind !== "p2p") {
    upsertOperation(transfer);
  }
  upsertHistory(transfer);
  return transfer;
}
