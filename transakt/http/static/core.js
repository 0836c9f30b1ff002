// What every part of the dashboard shares: the session, the state, API calls, messages.
import { ApiError, request } from "./api.js";
import { byId, showError } from "./dom.js";
import { AmountError } from "./money.js";
import { Session } from "./session.js";

export const EXPIRED = "Your session has expired. Please log in again.";
export const ENDED = "Your session has ended. Please log in again.";
const MAX_REMEMBERED_TRANSFERS = 500;

/** Thrown once the session has ended (the login form already says why). */
export class SessionEnded extends Error {}

// Set by the app: leaves the dashboard for the login form with a message.
let sessionEnds = () => {};

/** Tell the core how to end the session (the app owns the views). */
export function onSessionEnd(handler) {
  sessionEnds = handler;
}

export const session = new Session(() => sessionEnds(EXPIRED));

export const state = {
  me: null, // GET /me's answer: the user and where their proofs stand
  wallets: new Map(), // id -> wallet, in the order the API lists them
  cards: new Map(), // id -> wallet card element
  transfers: new Map(), // id -> newest known state of a transfer (answers race with pushes)
  operations: new Map(), // id -> bank operation list item
  history: { walletId: null, cursor: null, filters: new URLSearchParams() },
  chartTimers: new Map(),
  live: null,
  liveState: "connecting",
  liveOpened: false,
  pendingSend: null,
  bankAttempt: null, // {fingerprint, key} of a bank request whose answer never came
};

/** An API call with the session's token; a 401 ends the session. */
export async function call(method, path, options = {}) {
  if (!session.active) {
    sessionEnds(EXPIRED);
    throw new SessionEnded();
  }
  try {
    return await request(method, path, { ...options, token: session.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      sessionEnds(ENDED);
      throw new SessionEnded();
    }
    throw error;
  }
}

/** The sentence to show for a failure. */
export function explain(error) {
  if (error instanceof ApiError) {
    return error.describe();
  }
  if (error instanceof AmountError) {
    return error.message;
  }
  console.error(error);
  return `Something went wrong in this page: ${error && error.message ? error.message : error}. Reload to try again.`;
}

/** Show `error` in `container`'s error line (or the page notice); nothing once logged out. */
export function report(error, container = null) {
  if (error instanceof SessionEnded) {
    return;
  }
  if (container === null) {
    showNotice(explain(error));
  } else {
    showError(container, explain(error));
  }
}

export function showNotice(message) {
  byId("notice-text").textContent = message;
  byId("notice").hidden = false;
}

export function announce(message) {
  byId("announcer").textContent = message;
}

export function show(view) {
  byId("loading").hidden = true;
  for (const name of ["login", "signup", "dashboard"]) {
    byId(`${name}-view`).hidden = name !== view;
  }
  byId(`${view}-title`).focus();
}

export function rememberTransfer(transfer) {
  const known = state.transfers.get(transfer.id);
  // A final state never goes back to pending, whichever answer arrives last.
  if (known && known.status !== "pending" && transfer.status === "pending") {
    return known;
  }
  state.transfers.delete(transfer.id);
  state.transfers.set(transfer.id, transfer);
  if (state.transfers.size > MAX_REMEMBERED_TRANSFERS) {
    state.transfers.delete(state.transfers.keys().next().value); // the least recently seen
  }
  return transfer;
}

// Resolvers of whenLive() promises, settled when the feed next opens.
let liveWaiters = [];

/** Resolves once the live feed is open (at once when it is): every later event will arrive. */
export function whenLive() {
  return state.liveState === "live" ? Promise.resolve() : new Promise((resolve) => liveWaiters.push(resolve));
}

export function setLiveState(liveState) {
  state.liveState = liveState;
  if (liveState === "live") {
    for (const resolve of liveWaiters.splice(0)) {
      resolve();
    }
  }
}

/** Forget everyone waiting for the feed (the session ended: it will not open again). */
export function forgetLiveWaiters() {
  liveWaiters = [];
}
