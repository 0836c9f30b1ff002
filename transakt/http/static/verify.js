// Finishing set-up: the e-mail code, and the two micro-deposits that link the bank account.
import { newIdempotencyKey } from "./api.js";
import { announce, call, report, state } from "./core.js";
import { byId, clearError, showError, whileBusy } from "./dom.js";
import { parseAmount } from "./money.js";

/** Show what is left to prove (nothing: the card hides) from GET /me's answer. */
export function showVerification(me) {
  state.me = me;
  const emailDone = Boolean(me.user.email_verified);
  const link = me.bank_account || null;
  const bankDone = link === null || link.status === "linked";
  byId("verify-email").hidden = emailDone;
  byId("verify-email-address").textContent = me.user.email;
  byId("verify-bank").hidden = bankDone;
  if (link !== null) {
    byId("verify-bank-account").textContent = `(${link.account}, ${link.currency})`;
    byId("verify-bank-text").textContent = bankText(link);
  }
  byId("verify-card").hidden = emailDone && bankDone;
  const bankForm = byId("bank-form");
  for (const button of bankForm.querySelectorAll("button")) {
    button.disabled = !bankDone;
  }
  bankForm.title = bankDone ? "" : "Link your bank account first (see Finish setting up).";
}

function bankText(link) {
  if (link.status === "failed") {
    return "That verification can no longer be used. Ask the bank for new deposits, then enter both amounts.";
  }
  if (!link.verification_started) {
    return "The bank has not sent the deposits yet. Ask for them, then enter both amounts.";
  }
  return 'Your bank sent two small deposits to this account. Find them in your bank statement (described "TRANSAKT ACCTVERIFY") and enter both amounts. Deposits and withdrawals work once the account is linked.';
}

async function refresh() {
  showVerification(await call("GET", "/me"));
}

async function onEmailCode(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const code = form.elements.code.value.trim();
  if (!/^[0-9]{6}$/.test(code)) {
    showError(form, "Enter the 6-digit code from the e-mail.");
    return;
  }
  await whileBusy(form, async () => {
    try {
      await call("POST", "/auth/verify-email", { body: { code }, idempotencyKey: newIdempotencyKey() });
      form.reset();
      announce("Your e-mail address is verified.");
      await refresh();
    } catch (error) {
      report(error, form);
    }
  });
}

async function onResend() {
  const form = byId("email-code-form");
  clearError(form);
  await whileBusy(form, async () => {
    try {
      await call("POST", "/auth/verify-email/resend", { idempotencyKey: newIdempotencyKey() });
      announce("A new code is on its way.");
    } catch (error) {
      report(error, form);
    }
  });
}

async function onBankConfirm(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearError(form);
  const currency = state.me && state.me.bank_account ? state.me.bank_account.currency : "EUR";
  let amounts;
  try {
    amounts = [parseAmount(form.elements.first.value, currency), parseAmount(form.elements.second.value, currency)];
  } catch (error) {
    report(error, form);
    return;
  }
  await whileBusy(form, async () => {
    try {
      await call("POST", "/bank-account/confirm", { body: { amounts }, idempotencyKey: newIdempotencyKey() });
      form.reset();
      announce("Your bank account is linked.");
      await refresh();
    } catch (error) {
      report(error, form);
      await refresh().catch(() => {});
    }
  });
}

async function onBankRestart() {
  const form = byId("bank-confirm-form");
  clearError(form);
  await whileBusy(form, async () => {
    try {
      await call("POST", "/bank-account/verification", { idempotencyKey: newIdempotencyKey() });
      announce("The bank is sending two new deposits.");
      await refresh();
    } catch (error) {
      report(error, form);
    }
  });
}

export function wireVerification() {
  byId("email-code-form").addEventListener("submit", onEmailCode);
  byId("email-resend").addEventListener("click", onResend);
  byId("bank-confirm-form").addEventListener("submit", onBankConfirm);
  byId("bank-restart").addEventListener("click", onBankRestart);
}
