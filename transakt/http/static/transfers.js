// Moving money: payments (now or held) with a confirmation that names the payee, holds,
// refunds, bank deposits and withdrawals, and the history with its filters and statement.
import { ApiError, newIdempotencyKey } from "./api.js";
import { announce, call, explain, rememberTransfer, report, session, SessionEnded, state, whenLive } from "./core.js";
import { byId, clearError, el, showError, whileBusy } from "./dom.js";
import { amountExample, formatMoney, parseAmount } from "./money.js";
import { initials, personOf, rememberPerson, shortId } from "./people.js";
import { historyItem, isHold, operationItem, reasonText, underReview } from "./render.js";
import { refreshWalletsUnlessLive, scheduleChart } from "./wallets.js";

const HISTORY_PAGE_SIZE = 10;
const RECENT_COUNT = 5;

/** The form's amount in minor units, or null once the form shows why it is not one. */
function formAmount(form, currency, field = "amount") {
  try {
    return parseAmount(form.elements[field].value, currency, navigator.language);
  } catch (error) {
    report(error, form);
    form.elements[field].focus();
    return null;
  }
}

/** Say how to type an amount in the chosen wallet's currency, the user's way. */
export function showAmountHint() {
  const wallet = state.wallets.get(byId("send-from").value);
  byId("send-amount-hint").textContent = wallet ? `For example ${amountExample(wallet.currency, navigator.language)}.` : "";
}

// ---------------------------------------------------------------------- send money

/** Whom `to` reaches: {name, detail, badge}; the API's verified name for an e-mail. */
async function resolvePayee(to, wallet) {
  if (to.includes("@")) {
    const found = await call("GET", `/recipients?email=${encodeURIComponent(to)}`);
    if (Array.isArray(found.currencies) && !found.currencies.includes(wallet.currency)) {
      return {
        name: found.name,
        detail: found.email,
        badge: initials(found.name),
        warning: `${found.name} has no ${wallet.currency} wallet yet: the payment would be refused.`,
      };
    }
    return { name: found.name, detail: found.email, badge: initials(found.name) };
  }
  const own = state.wallets.get(to);
  if (own) {
    return { name: `Your ${own.currency} wallet`, detail: shortId(to), badge: "⇄" };
  }
  const person = personOf(to);
  if (person) {
    return { name: person.name, detail: `${person.email} · wallet ${shortId(to)}`, badge: initials(person.name) };
  }
  // No public endpoint names a wallet's holder: say so rather than guess.
  return {
    name: `Wallet ${shortId(to)}`,
    detail: "The holder's name is not shown for wallet ids. Pay by e-mail to see who receives it.",
    badge: "?",
  };
}

/**
 * Why `amount` would pass a spend limit the owner set on `wallet`, or null. A node without
 * limits (404) or a failed read leaves the decision to the API, which checks them anyway.
 */
async function limitRefusal(wallet, amount) {
  let limits;
  try {
    limits = await call("GET", `/wallets/${encodeURIComponent(wallet.id)}/limits`);
  } catch (error) {
    if (error instanceof SessionEnded) {
      throw error;
    }
    return null;
  }
  const remaining = limits.remaining || {};
  for (const [window, words] of [["daily", "today"], ["monthly", "this month"]]) {
    const left = remaining[window];
    if (typeof left === "number" && amount > left) {
      return `That is above your ${window} spend limit: ${formatMoney(left, wallet.currency)} left ${words}. Change the limit on the Home tab.`;
    }
  }
  return null;
}

export async function onReview(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const wallet = state.wallets.get(form.elements.from_wallet.value);
  const to = form.elements.to.value.trim();
  const memo = form.elements.memo.value.trim();
  const hold = form.elements.mode.value === "hold";
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
  // Checked before the confirmation, against what the wallet can spend now.
  if (amount > wallet.available) {
    showError(
      form,
      `Not enough money: your ${wallet.currency} wallet has ${formatMoney(wallet.available, wallet.currency)} available.`,
    );
    form.elements.amount.focus();
    return;
  }
  const overLimit = await limitRefusal(wallet, amount);
  if (overLimit) {
    showError(form, overLimit);
    form.elements.amount.focus();
    return;
  }
  if (to === wallet.id) {
    showError(form, "That is the wallet you are paying from.");
    form.elements.to.focus();
    return;
  }
  const payee = await whileBusy(form, async () => {
    try {
      return await resolvePayee(to, wallet);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        showError(form, "Nobody has this e-mail address. Check it, or ask them to sign up.");
      } else if (error instanceof ApiError && error.code === "recipient_unverified") {
        showError(form, "This person has not verified their e-mail yet, so they cannot be paid by e-mail.");
      } else {
        report(error, form);
      }
      form.elements.to.focus();
      return null;
    }
  });
  if (payee === null) {
    return;
  }
  const body = { from_wallet: wallet.id, amount, currency: wallet.currency };
  body[to.includes("@") ? "to_email" : "to_wallet"] = to;
  if (memo) {
    body.memo = memo;
  }
  // One key per reviewed payment: a retry after a lost answer can never pay twice.
  state.pendingSend = { body, key: newIdempotencyKey(), to, payee, hold };
  byId("confirm-avatar").textContent = payee.badge;
  byId("confirm-name").textContent = payee.name;
  byId("confirm-to").textContent = payee.detail;
  byId("confirm-amount").textContent = formatMoney(amount, wallet.currency);
  byId("confirm-from").textContent = `${wallet.currency} wallet`;
  byId("confirm-left").textContent = formatMoney(wallet.available - amount, wallet.currency);
  byId("confirm-mode").textContent = hold
    ? "Held for 7 days: release it to pay, or cancel it"
    : "Paid now";
  byId("confirm-memo").textContent = memo || "—";
  byId("confirm-send").textContent = hold ? "Confirm and hold" : "Confirm and send";
  const panel = byId("send-confirm");
  clearError(panel);
  if (payee.warning) {
    showError(panel, payee.warning);
  }
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
      const transfer = await call("POST", pending.hold ? "/holds" : "/transfers", {
        body: pending.body,
        idempotencyKey: pending.key,
      });
      if (pending.body.to_email) {
        rememberPerson(transfer.to_wallet, pending.payee.name, pending.body.to_email);
      }
      rememberTransfer(transfer);
      closeConfirmation();
      byId("send-form").reset();
      showAmountHint();
      const money = formatMoney(transfer.amount, transfer.currency);
      const whom = pending.body.to_email || pending.payee.name;
      let result = `Sent ${money} to ${whom}.`;
      if (underReview(transfer)) {
        result = `${money} to ${pending.payee.name} is under review: it is sent once we have checked it, usually within a day.`;
      } else if (pending.hold) {
        result = `Holding ${money} for ${pending.payee.name}. Release or cancel it under Holds.`;
      }
      byId("send-result").textContent = result;
      showTransfer(transfer);
      await refreshWalletsUnlessLive();
      scheduleChart(transfer.from_wallet);
    } catch (error) {
      report(error, panel);
    }
  });
}

// ---------------------------------------------------------------- holds and refunds

/** Put the focus back near where it was once a list item was rebuilt (its button is gone). */
function refocus(section, id, preferred = null) {
  const again = preferred || (section && section.querySelector(`li[data-id="${CSS.escape(id)}"] button`));
  const heading = section && section.querySelector("h2");
  if (again) {
    again.focus();
  } else if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

async function settleHold(id, action, button) {
  const item = button.closest("li");
  const section = button.closest("section");
  await whileBusy(item, async () => {
    try {
      const answer = await call("POST", `/holds/${encodeURIComponent(id)}/${action}`, {
        body: {},
        idempotencyKey: newIdempotencyKey(),
      });
      showTransfer(answer);
      showTransfer(await call("GET", `/holds/${encodeURIComponent(id)}`));
      announce(action === "post" ? "The hold is released: the money is paid." : "The hold is cancelled: the money is back.");
      refocus(section, id);
      await refreshWalletsUnlessLive();
    } catch (error) {
      announce(explain(error));
      report(error);
    }
  });
}

/** A small form under a received payment: refund all of it or part. */
function openRefund(id, button) {
  const transfer = state.transfers.get(id);
  const item = button.closest("li");
  if (!transfer || item.querySelector(".refund-form")) {
    item.querySelector(".refund-form input")?.focus();
    return;
  }
  const fieldId = `refund-${id.replace(/[^a-zA-Z0-9]/g, "")}-${item.closest("ol, ul").id}`;
  const form = el(
    "form",
    { class: "refund-form inline-form", method: "post", action: "/", novalidate: true },
    el("label", { for: fieldId, text: `Refund amount (up to ${formatMoney(transfer.amount, transfer.currency)})` }),
    el("input", { id: fieldId, name: "amount", inputmode: "decimal", autocomplete: "off", placeholder: "All of it" }),
    el("button", { type: "submit", text: "Send refund" }),
    el("button", { type: "button", class: "secondary", "data-cancel": "", text: "Cancel" }),
    el("p", { class: "form-error", role: "alert" }),
  );
  form.addEventListener("submit", (event) => onRefund(event, transfer));
  form.querySelector("[data-cancel]").addEventListener("click", () => {
    form.remove();
    button.focus();
  });
  button.closest(".tx-actions").after(form);
  form.elements.amount.focus();
}

async function onRefund(event, transfer) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const body = {};
  if (form.elements.amount.value.trim()) {
    const amount = formAmount(form, transfer.currency);
    if (amount === null) {
      return;
    }
    body.amount = amount;
  }
  await whileBusy(form, async () => {
    try {
      const refund = await call("POST", `/transfers/${encodeURIComponent(transfer.id)}/refund`, {
        body,
        idempotencyKey: newIdempotencyKey(),
      });
      const section = form.closest("section");
      form.remove();
      announce(`Refunded ${formatMoney(refund.amount, refund.currency)}.`);
      refocus(section, transfer.id);
      showTransfer(refund);
      await refreshWalletsUnlessLive();
    } catch (error) {
      if (error instanceof ApiError && error.code === "refund_refused") {
        showError(form, "That is more than is left to refund on this payment.");
      } else {
        report(error, form);
      }
    }
  });
}

/** One listener for every action button in the lists (they are rebuilt as states change). */
export function wireActions() {
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
    if (!button) {
      return;
    }
    const { action, id } = button.dataset;
    if (action === "post-hold" || action === "void-hold") {
      settleHold(id, action === "post-hold" ? "post" : "void", button).catch((error) => report(error));
    } else if (action === "refund") {
      openRefund(id, button);
    }
  });
}

function upsertHold(transfer) {
  if (!isHold(transfer) || !state.wallets.has(transfer.from_wallet) && !state.wallets.has(transfer.to_wallet)) {
    return;
  }
  const list = byId("holds");
  const existing = list.querySelector(`[data-id="${CSS.escape(transfer.id)}"]`);
  const side = state.wallets.has(transfer.from_wallet) ? transfer.from_wallet : transfer.to_wallet;
  const item = historyItem(transfer, side, state.wallets);
  if (existing) {
    existing.replaceWith(item);
  } else {
    list.prepend(item);
  }
  byId("holds-empty").hidden = list.childElementCount > 0;
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
  if (kind === "withdrawal" && amount > wallet.available) {
    showError(form, `Not enough money: ${formatMoney(wallet.available, wallet.currency)} is available.`);
    form.elements.amount.focus();
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
  if (transfer.status === "voided" && existing) {
    announce(`${transfer.kind === "deposit" ? "Deposit" : "Withdrawal"} refused: ${reasonText(transfer.reason || "")}.`);
  }
}

// ------------------------------------------------------------------------- history

function dayStart(value) {
  return `${value}T00:00:00Z`;
}

function nextDayStart(value) {
  const date = new Date(`${value}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().replace(".000Z", "Z");
}

/** The filters of the history form as query parameters, or null once the form says why not. */
function historyFilters(walletId) {
  const form = byId("history-filters");
  clearError(form);
  const wallet = state.wallets.get(walletId);
  const query = new URLSearchParams();
  const { kind, status, from, to } = form.elements;
  if (kind.value) {
    query.set("kind", kind.value);
  }
  if (status.value) {
    query.set("status", status.value);
  }
  if (from.value) {
    query.set("from", dayStart(from.value));
  }
  if (to.value) {
    query.set("to", nextDayStart(to.value));
  }
  for (const field of ["min_amount", "max_amount"]) {
    if (form.elements[field].value.trim() && wallet) {
      const amount = formAmount(form, wallet.currency, field);
      if (amount === null) {
        return null;
      }
      query.set(field, String(amount));
    }
  }
  return query;
}

export async function loadHistory({ reset }) {
  const select = byId("history-wallet");
  const list = byId("history");
  const more = byId("history-more");
  const errorText = byId("history-error");
  errorText.textContent = "";
  if (reset) {
    const filters = historyFilters(select.value);
    if (filters === null) {
      return;
    }
    state.history = { walletId: select.value || null, cursor: null, filters };
    list.replaceChildren();
  }
  const { walletId, cursor, filters } = state.history;
  if (!walletId) {
    return;
  }
  const query = new URLSearchParams(filters);
  query.set("limit", String(HISTORY_PAGE_SIZE));
  if (cursor) {
    query.set("cursor", cursor);
  }
  more.disabled = true;
  try {
    const page = await call("GET", `/wallets/${encodeURIComponent(walletId)}/transactions?${query}`);
    if (state.history.walletId !== walletId || state.history.filters !== filters) {
      return; // another wallet or filter was chosen meanwhile
    }
    for (const transfer of page.items) {
      if (!list.querySelector(`[data-id="${CSS.escape(transfer.id)}"]`)) {
        const known = rememberTransfer(transfer);
        list.append(historyItem(known, walletId, state.wallets));
        upsertHold(known);
      }
    }
    state.history.cursor = page.next_cursor || null;
    more.hidden = !state.history.cursor;
    const filtered = Array.from(filters.keys()).length > 0;
    byId("history-empty").textContent = filtered ? "No transactions match these filters." : "No transactions yet.";
    byId("history-empty").hidden = list.childElementCount > 0;
    byId("history-summary").textContent = filtered
      ? `Showing ${list.childElementCount}${state.history.cursor ? "+" : ""} matching transactions.`
      : "";
  } catch (error) {
    if (!(error instanceof SessionEnded)) {
      errorText.textContent = explain(error);
    }
  } finally {
    more.disabled = false;
  }
}

/** Download the chosen wallet's statement as CSV for the filter's dates (30 days by default). */
export async function downloadStatement() {
  const form = byId("history-filters");
  const walletId = byId("history-wallet").value;
  const wallet = state.wallets.get(walletId);
  if (!wallet) {
    return;
  }
  const { from, to } = form.elements;
  const end = to.value ? nextDayStart(to.value) : new Date().toISOString();
  const startDate = new Date(end);
  startDate.setUTCDate(startDate.getUTCDate() - 30);
  const start = from.value ? dayStart(from.value) : startDate.toISOString();
  const query = new URLSearchParams({ from: start, to: end });
  await whileBusy(form, async () => {
    try {
      const csv = await call("GET", `/wallets/${encodeURIComponent(walletId)}/statement?${query}`, { accept: "text/csv" });
      const link = el("a", {
        href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })),
        download: `transakt-${wallet.currency}-${start.slice(0, 10)}-${end.slice(0, 10)}.csv`,
        hidden: true,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      announce("Statement downloaded.");
    } catch (error) {
      report(error, form);
    }
  });
}

function upsertHistory(transfer) {
  const walletId = state.history.walletId;
  if (walletId === null || (transfer.from_wallet !== walletId && transfer.to_wallet !== walletId)) {
    return;
  }
  const list = byId("history");
  const existing = list.querySelector(`[data-id="${CSS.escape(transfer.id)}"]`);
  if (!existing && Array.from(state.history.filters?.keys() || []).length > 0) {
    return; // a filtered list shows only what its query answered
  }
  const item = historyItem(transfer, walletId, state.wallets);
  if (existing) {
    if (!existing.querySelector(".refund-form")) {
      existing.replaceWith(item);
    }
  } else {
    list.prepend(item);
  }
  byId("history-empty").hidden = true;
}

// -------------------------------------------------------------------- recent activity

let recentTimer = null;

/** The newest few transfers over every wallet, for the home view. */
export async function loadRecent() {
  const wallets = Array.from(state.wallets.keys());
  const pages = await Promise.all(
    wallets.map((id) => call("GET", `/wallets/${encodeURIComponent(id)}/transactions?limit=${RECENT_COUNT}`)),
  );
  const seen = new Map();
  for (const [index, page] of pages.entries()) {
    for (const transfer of page.items) {
      const known = rememberTransfer(transfer);
      seen.set(known.id, { transfer: known, walletId: wallets[index] });
      upsertHold(known);
    }
  }
  const newest = Array.from(seen.values())
    .sort((a, b) => (a.transfer.created_at < b.transfer.created_at ? 1 : -1))
    .slice(0, RECENT_COUNT);
  const list = byId("recent");
  if (list.querySelector(".refund-form")) {
    scheduleRecent(); // never under a person's typing: again once the refund is sent or cancelled
    return;
  }
  // A rebuilt list keeps the keyboard focus on the same button of the same transfer.
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusedItem = focused ? focused.closest("li")?.dataset.id : null;
  const focusedAction = focused ? focused.dataset.action : null;
  list.replaceChildren(...newest.map(({ transfer, walletId }) => historyItem(transfer, walletId, state.wallets)));
  byId("recent-empty").hidden = newest.length > 0;
  if (focusedItem) {
    const again = list.querySelector(
      `li[data-id="${CSS.escape(focusedItem)}"] button[data-action="${CSS.escape(focusedAction || "")}"]`,
    );
    refocus(list.closest("section"), focusedItem, again);
  }
}

function scheduleRecent() {
  clearTimeout(recentTimer);
  recentTimer = setTimeout(() => {
    if (!session.active) {
      return; // logged out meanwhile: nothing to show, and no reason to say the session ended
    }
    loadRecent().catch((error) => {
      if (!(error instanceof SessionEnded)) {
        report(error);
      }
    });
  }, 250);
}

/** Forget the pending refresh of the recent list (the session ended). */
export function cancelRecent() {
  clearTimeout(recentTimer);
}

/** Show the newest known state of a transfer everywhere it appears. */
export function showTransfer(incoming) {
  const transfer = rememberTransfer(incoming);
  if (transfer.kind !== "p2p") {
    upsertOperation(transfer);
  }
  upsertHistory(transfer);
  upsertHold(transfer);
  const inRecent = byId("recent").querySelector(`[data-id="${CSS.escape(transfer.id)}"]`);
  if (inRecent && !inRecent.querySelector(".refund-form")) {
    const side = state.wallets.has(transfer.to_wallet) ? transfer.to_wallet : transfer.from_wallet;
    inRecent.replaceWith(historyItem(transfer, side, state.wallets));
  }
  scheduleRecent();
  return transfer;
}
