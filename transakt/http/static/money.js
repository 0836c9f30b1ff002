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

/** The decimal separator `locale` writes ("," for de-DE, "." for en-GB). */
export function decimalSeparator(locale = undefined) {
  const part = new Intl.NumberFormat(locale).formatToParts(1.5).find((item) => item.type === "decimal");
  return part ? part.value : ".";
}

/** How to type an amount in `currency` the way `locale` writes it, e.g. "12,34". */
export function amountExample(currency, locale = undefined) {
  const exponent = exponentOf(currency) ?? 2;
  return exponent === 0 ? "1200" : `12${decimalSeparator(locale)}${"3456".slice(0, exponent)}`;
}

/**
 * The text with one "." as its decimal point, or null when it cannot be read. Either mark may
 * be the decimal one: the last of "." and "," when both appear; otherwise a single mark is
 * decimal when it is the locale's, or when fewer or more than three digits follow it (so
 * "12,50" is 12.50 anywhere, and "1,234" is 1234 in en-GB but 1.234 in de-DE).
 */
function normalise(text, exponent, locale) {
  const cleaned = String(text).trim().replace(/[\s_'\u00a0\u202f]/g, "");
  const marks = cleaned.match(/[.,]/g) || [];
  if (marks.length === 0) {
    return cleaned;
  }
  const decimal = decimalSeparator(locale);
  const last = Math.max(cleaned.lastIndexOf("."), cleaned.lastIndexOf(","));
  const mark = cleaned[last];
  const digitsAfter = cleaned.length - last - 1;
  let isDecimal;
  if (new Set(marks).size === 2) {
    isDecimal = true;
  } else if (marks.length > 1) {
    isDecimal = false;
  } else {
    isDecimal = mark === decimal || digitsAfter !== 3 || exponent === 3;
  }
  if (!isDecimal) {
    // Only thousands separators: every group after the first has three digits.
    return /^\d{1,3}([.,]\d{3})+$/.test(cleaned) ? cleaned.replace(/[.,]/g, "") : null;
  }
  const whole = cleaned.slice(0, last);
  if (!/^(\d{1,3}([.,]\d{3})*|\d+)$/.test(whole) || whole.includes(mark)) {
    return null;
  }
  return `${whole.replace(/[.,]/g, "")}.${cleaned.slice(last + 1)}`;
}

/**
 * The minor units of what a user typed ("12.34" or "12,34" EUR is 1234), as a Number safe
 * for JSON. Throws AmountError with a message for the user when the text is not an amount.
 */
export function parseAmount(text, currency, locale = undefined) {
  const exponent = exponentOf(currency);
  if (exponent === undefined) {
    throw new AmountError(`${currency} is not a currency this wallet supports.`);
  }
  if (String(text).trim() === "") {
    throw new AmountError("Enter an amount.");
  }
  const example = amountExample(currency, locale);
  const cleaned = normalise(text, exponent, locale);
  if (cleaned === null) {
    throw new AmountError(`Enter an amount like ${example}.`);
  }
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (match === null) {
    throw new AmountError(exponent === 0 ? "Enter a whole number, e.g. 1200." : `Enter an amount like ${example}.`);
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
