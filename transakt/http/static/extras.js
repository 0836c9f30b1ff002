// Panels that appear only where the node offers them: spend limits (a newer API) and the
// sandbox bank's outage switch (dev mode only). A 404 hides the panel, never an error.
import { ApiError, newIdempotencyKey } from "./api.js";
import { announce, call, report, SessionEnded, state } from "./core.js";
import { byId, clearError, whileBusy } from "./dom.js";
import { formatMoney, parseAmount } from "./money.js";

function absent(error) {
  return error instanceof ApiError && (error.status === 404 || error.status === 405);
}

// ---------------------------------------------------------------------- spend limits

function amountText(amount, currency) {
  if (amount === null || amount === undefined) {
    return "";
  }
  return formatMoney(amount, currency).replace(` ${currency}`, "").replaceAll(",", "");
}

/** Show the chosen wallet's limits, or hide the panel where the node has none. */
export async function loadLimits() {
  const card = byId("limits-card");
  const walletId = byId("limits-wallet").value;
  if (!walletId) {
    card.hidden = true;
    return;
  }
  try {
    showLimits(await call("GET", `/wallets/${encodeURIComponent(walletId)}/limits`));
    card.hidden = false;
  } catch (error) {
    if (absent(error)) {
      card.hidden = true;
    } else if (!(error instanceof SessionEnded)) {
      report(error, byId("limits-form"));
    }
  }
}

function showLimits(limits) {
  const form = byId("limits-form");
  const currency = limits.currency;
  form.elements.daily.value = amountText(limits.daily, currency);
  form.elements.monthly.value = amountText(limits.monthly, currency);
  const spent = limits.spent || {};
  const parts = [];
  if (spent.daily !== undefined) {
    parts.push(`Spent today: ${formatMoney(spent.daily, currency)}`);
  }
  if (spent.monthly !== undefined) {
    parts.push(`this month: ${formatMoney(spent.monthly, currency)}`);
  }
  byId("limits-spent").textContent = parts.join("; ");
}

async function onSaveLimits(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const wallet = state.wallets.get(form.elements.wallet.value);
  if (!wallet) {
    return;
  }
  const body = {};
  try {
    for (const name of ["daily", "monthly"]) {
      const text = form.elements[name].value.trim();
      body[name] = text ? parseAmount(text, wallet.currency, navigator.language) : null;
    }
  } catch (error) {
    report(error, form);
    return;
  }
  await whileBusy(form, async () => {
    try {
      showLimits(await call("PUT", `/wallets/${encodeURIComponent(wallet.id)}/limits`, { body }));
      announce("Limits saved.");
    } catch (error) {
      report(error, form);
    }
  });
}

// ---------------------------------------------------------------------- sandbox bank

const MODES = {
  normal: "answering normally",
  slow: "slow",
  down: "down: deposits and withdrawals wait as pending",
  refusing: "refusing every request",
};

function showBankMode(answer) {
  byId("sandbox-mode").value = answer.mode;
  const latency = answer.latency_ms ? ` (${answer.latency_ms} ms per answer)` : "";
  byId("sandbox-state").textContent = `The sandbox bank is ${MODES[answer.mode] || answer.mode}${latency}.`;
}

/** Show the switch only when the node answers for it (dev mode). */
export async function loadSandbox() {
  const card = byId("sandbox-card");
  try {
    showBankMode(await call("GET", "/sandbox/bank"));
    card.hidden = false;
  } catch (error) {
    card.hidden = true;
    if (!absent(error) && !(error instanceof SessionEnded)) {
      console.warn("sandbox bank control unavailable", error);
    }
  }
}

async function onSetBankMode(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  await whileBusy(form, async () => {
    try {
      const answer = await call("PUT", "/sandbox/bank", {
        body: { mode: form.elements.mode.value },
        idempotencyKey: newIdempotencyKey(),
      });
      showBankMode(answer);
      announce(byId("sandbox-state").textContent);
    } catch (error) {
      report(error, form);
    }
  });
}

export function wireExtras() {
  byId("limits-wallet").addEventListener("change", () => loadLimits());
  byId("limits-form").addEventListener("submit", onSaveLimits);
  byId("sandbox-form").addEventListener("submit", onSetBankMode);
}
