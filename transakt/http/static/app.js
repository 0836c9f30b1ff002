// The Transakt dashboard: log in, see wallets live, pay, move money to and from the bank.
// It uses the public API only (see /api/v1/openapi.json).
import { ApiError, request } from "./api.js";
import {
  announce,
  call,
  EXPIRED,
  forgetLiveWaiters,
  onSessionEnd,
  report,
  session,
  SessionEnded,
  setLiveState,
  show,
  state,
} from "./core.js";
import { byId, clearError, showError, whileBusy } from "./dom.js";
import { LiveFeed } from "./live.js";
import { formatMoney } from "./money.js";
import { loadLimits, loadSandbox, wireExtras } from "./extras.js";
import { forgetPeople, learnNames, loadPeople, personOf, wireCopyButtons } from "./people.js";
import { selectTab, tabFromAddress, wireTabs } from "./tabs.js";
import {
  cancelRecent,
  closeConfirmation,
  downloadStatement,
  loadHistory,
  loadRecent,
  onBankSubmit,
  onConfirmSend,
  onReview,
  showAmountHint,
  showTransfer,
  wireActions,
} from "./transfers.js";
import { showVerification, wireVerification } from "./verify.js";
import {
  fillWalletSelects,
  onOpenWallet,
  refreshWallets,
  scheduleChart,
  setWallets,
  showAvailable,
  upsertWallet,
} from "./wallets.js";

// ------------------------------------------------------------------------- session

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    showError(form, "Enter your e-mail and password.");
    return;
  }
  await enter(form, () => logIn(email, password));
}

async function logIn(email, password) {
  const answer = await request("POST", "/auth/login", { body: { email, password } });
  session.begin(answer.access_token, answer.expires_in);
}

async function onSignup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const body = {
    name: form.elements.name.value.trim(),
    email: form.elements.email.value.trim(),
    password: form.elements.password.value,
    bank_account: form.elements.bank_account.value.trim(),
  };
  const missing = Object.entries(body).find(([, value]) => !value);
  if (missing) {
    showError(form, "Fill in every field.");
    form.elements[missing[0]].focus();
    return;
  }
  await enter(form, async () => {
    await request("POST", "/auth/signup", { body });
    await logIn(body.email, body.password);
  });
}

/** Run a form's way in (log in, or sign up and log in), then open the dashboard. */
async function enter(form, steps) {
  const entered = await whileBusy(form, async () => {
    try {
      await steps();
      form.reset();
      return true;
    } catch (error) {
      report(error, form);
      return false;
    }
  });
  if (entered) {
    await openDashboard();
  }
}

/** Log out: the server ends the token first (it stops working everywhere), then the page. */
async function logOut() {
  if (session.active) {
    try {
      await request("POST", "/auth/logout", { token: session.token });
    } catch {
      // Already ended, or the server is away: the page forgets the token either way.
    }
  }
  endSession("You have logged out.");
}

function showLogin(message = "") {
  byId("login-message").textContent = message;
  show("login");
}

/** Leave the dashboard: forget the token, close the feed, clear every personal figure. */
function endSession(message) {
  session.end();
  if (state.live) {
    state.live.stop();
    state.live = null;
  }
  forgetLiveWaiters();
  state.liveState = "connecting";
  for (const timer of state.chartTimers.values()) {
    clearTimeout(timer);
  }
  state.chartTimers.clear();
  state.wallets.clear();
  state.cards.clear();
  state.transfers.clear();
  state.operations.clear();
  state.history = { walletId: null, cursor: null, filters: new URLSearchParams() };
  state.pendingSend = null;
  state.bankAttempt = null;
  forgetPeople();
  cancelRecent();
  for (const id of ["wallets", "operations", "history", "recent", "holds", "whoami", "send-result"]) {
    byId(id).replaceChildren();
  }
  for (const form of document.querySelectorAll("form")) {
    form.reset();
    clearError(form);
  }
  byId("send-confirm").hidden = true;
  byId("send-form").hidden = false;
  byId("verify-card").hidden = true;
  byId("limits-card").hidden = true;
  selectTab("home"); // the next person to log in starts at home, not where this one left
  byId("sandbox-card").hidden = true;
  state.me = null;
  byId("account").hidden = true;
  byId("notice").hidden = true;
  showLogin(message);
}

/** Show the dashboard; a failure to load it is said in the notice, over the dashboard. */
async function openDashboard() {
  try {
    await enterDashboard();
  } catch (error) {
    report(error);
  }
}

async function enterDashboard() {
  byId("login-message").textContent = "";
  byId("account").hidden = false;
  show("dashboard");
  const me = await call("GET", "/me");
  byId("whoami").textContent = `${me.user.name} · ${me.user.email}`;
  loadPeople();
  showVerification(me);
  setWallets(me.wallets);
  fillWalletSelects();
  showAmountHint();
  selectTab(tabFromAddress());
  startLive();
  await Promise.all([loadHistory({ reset: true }), loadRecent(), loadLimits(), loadSandbox()]);
}

// ------------------------------------------------------------------------ live feed

function startLive() {
  state.liveOpened = false;
  state.live = new LiveFeed(session.token, {
    onMessage: onLiveMessage,
    onState: showLiveState,
    onOpen: () => {
      catchUp(state.liveOpened).catch((error) => report(error));
      state.liveOpened = true;
    },
    onExpired: () => endSession(EXPIRED),
  });
  state.live.start();
}

const LIVE_LABELS = { connecting: "Connecting…", live: "Live", offline: "Offline, reconnecting…" };

function showLiveState(liveState) {
  setLiveState(liveState);
  const badge = byId("live-state");
  badge.dataset.state = liveState;
  badge.textContent = LIVE_LABELS[liveState];
  if (liveState === "offline" && session.token !== null) {
    // A refused reconnection may mean the token ended: any call tells (401 logs out).
    call("GET", "/wallets")
      .then((answer) => setWallets(answer.wallets))
      .catch((error) => {
        if (!(error instanceof SessionEnded) && !(error instanceof ApiError)) {
          report(error);
        }
      });
  }
}

/** After a (re)connection: fetch what may have changed while no push could arrive. */
async function catchUp(reconnected) {
  await refreshWallets();
  for (const [id, item] of state.operations) {
    if (item.dataset.status === "pending") {
      showTransfer(await call("GET", `/transfers/${encodeURIComponent(id)}`));
    }
  }
  if (reconnected) {
    await loadHistory({ reset: true });
  }
}

/** Read a pushed transfer back from the API, which names its holders, and show it again. */
async function nameFromApi(transfer) {
  try {
    const read = await call("GET", `/transfers/${encodeURIComponent(transfer.id)}`);
    if (learnNames(read)) {
      showTransfer(read);
    }
  } catch {
    // Unnamed for now: the next history page names it.
  }
}

/** A push: on connect one `balance` per wallet, then `balance` and `transfer` as they happen. */
function onLiveMessage(message) {
  if (message.type === "balance" && message.wallet) {
    upsertWallet(message.wallet);
    scheduleChart(message.wallet.id);
  } else if (message.type === "transfer" && message.transfer) {
    const transfer = showTransfer(message.transfer);
    const other = state.wallets.has(transfer.to_wallet) ? transfer.from_wallet : transfer.to_wallet;
    if (transfer.kind === "p2p" && !state.wallets.has(other) && !personOf(other)) {
      void nameFromApi(transfer); // a push carries no names: read the transfer back for them
    }
    const mine = state.wallets.has(transfer.to_wallet) && !state.wallets.has(transfer.from_wallet);
    if (mine && transfer.kind === "p2p" && transfer.status === "posted") {
      const person = personOf(transfer.from_wallet);
      const from = person ? ` from ${person.name}` : "";
      announce(`Received ${formatMoney(transfer.amount, transfer.currency)}${from}.`);
    }
  }
  // Other message types are for newer pages: ignored, never an error.
}

// ---------------------------------------------------------------------------- start

function wire() {
  byId("login-form").addEventListener("submit", onLogin);
  byId("signup-form").addEventListener("submit", onSignup);
  byId("show-signup").addEventListener("click", () => show("signup"));
  byId("show-login").addEventListener("click", () => showLogin());
  byId("logout").addEventListener("click", logOut);
  byId("notice-close").addEventListener("click", () => {
    byId("notice").hidden = true;
  });
  byId("open-wallet-form").addEventListener("submit", onOpenWallet);
  wireVerification();
  byId("send-form").addEventListener("submit", onReview);
  byId("confirm-send").addEventListener("click", onConfirmSend);
  byId("cancel-send").addEventListener("click", closeConfirmation);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !byId("send-confirm").hidden) {
      closeConfirmation();
    }
  });
  byId("bank-form").addEventListener("submit", onBankSubmit);
  byId("history-wallet").addEventListener("change", () => loadHistory({ reset: true }));
  byId("history-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadHistory({ reset: true });
  });
  byId("history-filters").addEventListener("reset", () => {
    // After the form has put its fields back (the reset event fires before).
    setTimeout(() => {
      if (session.active) {
        loadHistory({ reset: true });
      }
    }, 0);
  });
  byId("statement").addEventListener("click", () => downloadStatement());
  byId("recent-all").addEventListener("click", () => selectTab("activity", { focus: true }));
  byId("send-from").addEventListener("change", () => {
    showAvailable();
    showAmountHint();
  });
  wireTabs();
  wireActions();
  wireExtras();
  wireCopyButtons(announce);
  byId("history-more").addEventListener("click", () => loadHistory({ reset: false }));
  // Never a blank page: whatever escapes a handler is said in the notice.
  window.addEventListener("error", (event) => report(event.error || new Error(event.message)));
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    report(event.reason);
  });
}

async function start() {
  onSessionEnd(endSession);
  wire();
  const restored = session.restore();
  if (restored === "restored") {
    await openDashboard();
  } else {
    showLogin(restored === "expired" ? EXPIRED : "");
  }
}

start();
