// Money in integer minor units: formatted and parsed with strings and BigInt, never floats.
import { CURRENCY_EXPONENTS, MAX_AMOUNT } from "./currencies.js";

/** A user's input that is not an amount; its message is written for them. */
export class AmountError extends Error {}

/** How many decimals `currency` has (EUR 2, JPY 0, BHD 3), or undefined for an unknown one. */
export function exponentOf(currency) {
  return Object.hasOwn(CURRENCY_EXPONENTS, currency) ? CURRENCY_EXPONENTS[currency] : undefined;
}

/** Every currency the API accepts, sorted. */
export function currencies() {
  return Object.keys(CURRENCY_EXPONENTS).sort();
}

function group(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * "1,234.56 EUR" for (123456, "EUR"). `signed` adds "+" to positive amounts.
 * Amounts arrive as JSON integers below 2**53, so BigInt(amount) is exact.
 */
export function formatMoney(amount, currency, { signed = false } = {}) {
  const minor = BigInt(amount);
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString();
  const exponent = exponentOf(currency);
  let number;
  if (exponent === undefined) {
    number = `${group(digits)} minor units of`;
  } else if (exponent === 0) {
    number = group(digits);
  } else {
    const padded = digits.padStart(exponent + 1, "0");
    const whole = padded.slice(0, padded.length - exponent);
    number = `${group(whole)}.${padded.slice(padded.length - exponent)}`;
  }
  const sign = negative ? "-" : signed && minor > 0n ? "+" : "";
  return `${sign}${number} ${currency}`;
}

/**
 * The minor units of what a user typed ("12.34" EUR is 1234), as a Number safe for JSON.
 * Throws AmountError with a message for the user when the text is not a valid amount.
 */
export function parseAmount(text, currency) {
  const exponent = exponentOf(currency);
  if (exponent === undefined) {
    throw new AmountError(`${currency} is not a currency this wallet supports.`);
  }
  const cleaned = String(text).trim().replace(/[\s_]/g, "");
  if (cleaned === "") {
    throw new AmountError("Enter an amount.");
  }
  if (cleaned.includes(",")) {
    throw new AmountError("Use a dot for decimals and no thousands separators, e.g. 1234.56.");
  }
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (match === null) {
    throw new AmountError(exponent === 0 ? "Enter a whole number, e.g. 1200." : "Enter an amount like 12.34.");
  }
  const [, whole, fraction = ""] = match;
  if (fraction.length > exponent) {
    throw new AmountError(
      exponent === 0
        ? `${currency} has no decimals: enter a whole number.`
        : `${currency} has at most ${exponent} decimals.`,
    );
  }
  const minor = BigInt(whole + fraction.padEnd(exponent, "0"));
  if (minor <= 0n) {
    throw new AmountError("Enter an amount above zero.");
  }
  if (minor > MAX_AMOUNT) {
    throw new AmountError(`That is more than the largest amount, ${formatMoney(MAX_AMOUNT, currency)}.`);
  }
  return Number(minor);
}
