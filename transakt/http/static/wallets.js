// Wallet cards: figures kept current in place, a balance chart each, opening new wallets.
import { newIdempotencyKey } from "./api.js";
import { balanceSeries, dailySeries, renderChart } from "./chart.js";
import { announce, call, report, SessionEnded, state } from "./core.js";
import { byId, clearError, el, whileBusy } from "./dom.js";
import { currencies, formatMoney } from "./money.js";
import { walletCard, walletCardUpdate } from "./render.js";

const CHART_POINTS = 50;
const CHART_DELAY_MS = 300;

export function setWallets(wallets) {
  for (const wallet of wallets) {
    upsertWallet(wallet);
  }
}

export function upsertWallet(wallet) {
  const isNew = !state.wallets.has(wallet.id);
  state.wallets.set(wallet.id, wallet);
  if (isNew) {
    const card = walletCard(wallet, state.cards.size);
    state.cards.set(wallet.id, card);
    byId("wallets").append(card);
    fillWalletSelects();
    scheduleChart(wallet.id, 0);
  } else {
    walletCardUpdate(state.cards.get(wallet.id), wallet);
    showAvailable();
  }
}

export async function refreshWallets() {
  const answer = await call("GET", "/wallets");
  setWallets(answer.wallets);
}

/**
 * After the page moved money. The live feed brings the wallets of every commit, so a fetch is
 * needed only while the feed is down. While it is up a fetch can even do harm: its answer may
 * land after the push of a later commit (the bank refuses a withdrawal within milliseconds)
 * and show the older figures until the next push.
 */
export async function refreshWalletsUnlessLive() {
  if (state.liveState !== "live") {
    await refreshWallets();
  }
}

// The currency a locale's region usually holds, to suggest a first wallet (never AED by
// accident of the alphabet). Only a hint: every currency stays in the list.
const REGION_CURRENCIES = {
  AT: "EUR", BE: "EUR", CY: "EUR", DE: "EUR", EE: "EUR", ES: "EUR", FI: "EUR", FR: "EUR",
  GR: "EUR", HR: "EUR", IE: "EUR", IT: "EUR", LT: "EUR", LU: "EUR", LV: "EUR", MT: "EUR",
  NL: "EUR", PT: "EUR", SI: "EUR", SK: "EUR", GB: "GBP", US: "USD", CH: "CHF", JP: "JPY",
  CA: "CAD", AU: "AUD", SE: "SEK", NO: "NOK", DK: "DKK", PL: "PLN", CZ: "CZK", IN: "INR",
};

/** The bank account's currency, when the user has one. */
export function bankCurrency() {
  return state.me && state.me.bank_account ? state.me.bank_account.currency : null;
}

function localeCurrency() {
  try {
    const region = new Intl.Locale(navigator.language).maximize().region;
    return REGION_CURRENCIES[region] || null;
  } catch {
    return null;
  }
}

/** Every currency, the likeliest first: the bank account's, the locale's, then A to Z. */
function suggestedCurrencies(owned) {
  const first = [bankCurrency(), localeCurrency(), "EUR", "USD", "GBP"].filter(
    (currency, index, list) => currency && list.indexOf(currency) === index,
  );
  const all = currencies();
  return [...first.filter((currency) => all.includes(currency)), ...all.filter((currency) => !first.includes(currency))].filter(
    (currency) => !owned.has(currency),
  );
}

function fill(select, wallets) {
  const chosen = select.value;
  select.replaceChildren(
    ...wallets.map((wallet) => el("option", { value: wallet.id, text: `${wallet.currency} wallet` })),
  );
  if (wallets.some((wallet) => wallet.id === chosen)) {
    select.value = chosen;
  }
}

export function fillWalletSelects() {
  const wallets = Array.from(state.wallets.values());
  for (const id of ["send-from", "history-wallet", "limits-wallet"]) {
    fill(byId(id), wallets);
  }
  // The bank moves money only in its account's currency: other wallets are not offered.
  const currency = bankCurrency();
  const bankWallets = currency ? wallets.filter((wallet) => wallet.currency === currency) : [];
  fill(byId("bank-wallet"), bankWallets);
  const line = byId("bank-account-line");
  const form = byId("bank-form");
  if (!state.me || !state.me.bank_account) {
    line.textContent = "No bank account is linked to this login.";
  } else if (bankWallets.length === 0) {
    line.textContent = `Your bank account ${state.me.bank_account.account} is in ${currency}: open a ${currency} wallet on the Home tab to move money to and from it.`;
  } else {
    line.textContent = `Your bank account ${state.me.bank_account.account} holds ${currency}: deposits and withdrawals are in ${currency}.`;
  }
  form.hidden = bankWallets.length === 0;
  const owned = new Set(wallets.map((wallet) => wallet.currency));
  const open = byId("open-currency");
  const choices = suggestedCurrencies(owned);
  open.replaceChildren(...choices.map((code) => el("option", { value: code, text: code })));
  showAvailable();
}

/** Under the "From wallet" choice: how much that wallet can spend now. */
export function showAvailable() {
  const wallet = state.wallets.get(byId("send-from").value);
  byId("send-available").textContent = wallet
    ? `Available: ${formatMoney(wallet.available, wallet.currency)}`
    : "";
}

export async function onOpenWallet(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const currency = form.elements.currency.value;
  await whileBusy(form, async () => {
    try {
      const wallet = await call("POST", "/wallets", {
        body: { currency },
        idempotencyKey: newIdempotencyKey(),
      });
      upsertWallet(wallet);
      announce(`Opened a ${currency} wallet.`);
    } catch (error) {
      report(error, form);
    }
  });
}

/** Redraw a wallet's balance chart soon (pushes come in bursts: one fetch per burst). */
export function scheduleChart(walletId, delay = CHART_DELAY_MS) {
  clearTimeout(state.chartTimers.get(walletId));
  state.chartTimers.set(
    walletId,
    setTimeout(() => {
      state.chartTimers.delete(walletId);
      drawChart(walletId).catch((error) => {
        if (!(error instanceof SessionEnded)) {
          const card = state.cards.get(walletId);
          card?.querySelector(".chart-box").replaceChildren(el("p", { class: "hint", text: "Chart unavailable." }));
        }
      });
    }, delay),
  );
}

const CHART_DAYS = 30;

function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The last 30 days' closing balances; the last transfers where the node has no daily series. */
async function drawChart(walletId) {
  const today = new Date();
  const first = new Date(today);
  first.setUTCDate(first.getUTCDate() - (CHART_DAYS - 1));
  let series;
  let span = null;
  const wallet = state.wallets.get(walletId);
  try {
    const query = new URLSearchParams({ from: utcDay(first), to: utcDay(today) });
    const answer = await call("GET", `/wallets/${encodeURIComponent(walletId)}/balance/daily?${query}`);
    series = dailySeries(state.wallets.get(walletId) || wallet, answer.days);
    span = `the last ${CHART_DAYS} days`;
  } catch (error) {
    if (error instanceof SessionEnded) {
      throw error;
    }
    const page = await call("GET", `/wallets/${encodeURIComponent(walletId)}/transactions?limit=${CHART_POINTS}`);
    series = balanceSeries(state.wallets.get(walletId) || wallet, page.items);
  }
  const current = state.wallets.get(walletId);
  const card = state.cards.get(walletId);
  if (current && card) {
    card.querySelector(".chart-box").replaceChildren(renderChart(series, current.currency, span));
  }
}
