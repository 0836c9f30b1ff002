// Wallet cards: figures kept current in place, a balance chart each, opening new wallets.
import { newIdempotencyKey } from "./api.js";
import { balanceSeries, renderChart } from "./chart.js";
import { announce, call, report, SessionEnded, state } from "./core.js";
import { byId, clearError, el, whileBusy } from "./dom.js";
import { currencies } from "./money.js";
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

function fillWalletSelects() {
  for (const id of ["send-from", "bank-wallet", "history-wallet"]) {
    const select = byId(id);
    const chosen = select.value;
    select.replaceChildren(
      ...Array.from(state.wallets.values(), (wallet) =>
        el("option", { value: wallet.id, text: `${wallet.currency} wallet` }),
      ),
    );
    if (state.wallets.has(chosen)) {
      select.value = chosen;
    }
  }
  const owned = new Set(Array.from(state.wallets.values(), (wallet) => wallet.currency));
  const open = byId("open-currency");
  open.replaceChildren(
    ...currencies()
      .filter((currency) => !owned.has(currency))
      .map((currency) => el("option", { value: currency, text: currency })),
  );
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

async function drawChart(walletId) {
  const path = `/wallets/${encodeURIComponent(walletId)}/transactions?limit=${CHART_POINTS}`;
  const page = await call("GET", path);
  const wallet = state.wallets.get(walletId);
  const card = state.cards.get(walletId);
  if (wallet && card) {
    card.querySelector(".chart-box").replaceChildren(renderChart(balanceSeries(wallet, page.items), wallet.currency));
  }
}
