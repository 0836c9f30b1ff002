// A small balance-over-time line per wallet, drawn as SVG (no library, no canvas).
import { formatMoney } from "./money.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 240;
const HEIGHT = 56;
const PAD = 4;

/**
 * Each day's closing balance from GET /balance/daily (oldest first), the last one replaced by
 * the wallet's balance now (today is not closed yet, and pushes are newer than any read).
 */
export function dailySeries(wallet, days) {
  const series = days.map((day) => BigInt(day.closing_balance));
  if (series.length === 0) {
    return [BigInt(wallet.balance)];
  }
  series[series.length - 1] = BigInt(wallet.balance);
  return series;
}

/**
 * The wallet's balance before and after each posted transfer of `items` (newest first, as the
 * history answers), oldest first, ending at the current balance. BigInt keeps it exact.
 */
export function balanceSeries(wallet, items) {
  let running = BigInt(wallet.balance);
  const series = [running];
  for (const item of items) {
    if (item.status !== "posted") {
      continue; // pending holds and voided transfers never moved the posted balance
    }
    const amount = BigInt(item.amount);
    if (item.to_wallet === wallet.id) {
      running -= amount;
    }
    if (item.from_wallet === wallet.id) {
      running += amount;
    }
    series.push(running);
  }
  return series.reverse();
}

/** An SVG image of `series` with a text alternative naming where it starts and ends. */
export function renderChart(series, currency, span = null) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const first = series[0];
  const last = series[series.length - 1];
  const count = series.length - 1;
  const over = span || (count === 1 ? "the last posted transaction" : `the last ${count} posted transactions`);
  svg.setAttribute(
    "aria-label",
    count > 0
      ? `Balance over ${over}: from ${formatMoney(first, currency)} to ${formatMoney(last, currency)}`
      : `Balance ${formatMoney(last, currency)}, no posted transactions yet`,
  );
  let low = series[0];
  let high = series[0];
  for (const value of series) {
    low = value < low ? value : low;
    high = value > high ? value : high;
  }
  // Geometry only: pixel positions may be fractional, the amounts above never are.
  const range = Number(high - low) || 1;
  const stepX = series.length > 1 ? (WIDTH - 2 * PAD) / (series.length - 1) : 0;
  const points = series.map((value, index) => {
    const x = series.length > 1 ? PAD + index * stepX : WIDTH / 2;
    const y = HEIGHT - PAD - (Number(value - low) / range) * (HEIGHT - 2 * PAD);
    return `${x.toFixed(1)},${(high === low ? HEIGHT / 2 : y).toFixed(1)}`;
  });
  if (points.length === 1) {
    points.unshift(`${PAD},${HEIGHT / 2}`);
    points[1] = `${WIDTH - PAD},${HEIGHT / 2}`;
  }
  const baseline = document.createElementNS(SVG, "line");
  baseline.setAttribute("x1", String(PAD));
  baseline.setAttribute("x2", String(WIDTH - PAD));
  baseline.setAttribute("y1", String(HEIGHT - PAD));
  baseline.setAttribute("y2", String(HEIGHT - PAD));
  baseline.setAttribute("class", "chart-axis");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("class", "chart-line");
  svg.append(baseline, line);
  return svg;
}
