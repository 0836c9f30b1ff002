// Building the page safely: user text only ever goes in as text nodes, never parsed as HTML.

export const byId = (id) => document.getElementById(id);

/**
 * A new element. `props`: "class", "text" (set as textContent) or an attribute name; each
 * child is a node or a string (appended as a text node, so "<img ...>" stays literal text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name === "class") {
      node.className = value;
    } else if (name === "text") {
      node.textContent = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The error line of a form or panel (its `.form-error` element). */
export function errorLine(container) {
  return container.querySelector(".form-error");
}

export function showError(container, message) {
  const line = errorLine(container);
  line.textContent = message;
  line.hidden = false;
}

export function clearError(container) {
  const line = errorLine(container);
  line.textContent = "";
}

/** Run `work` with the container's buttons disabled and aria-busy set, whatever happens. */
export async function whileBusy(container, work) {
  const buttons = Array.from(container.querySelectorAll("button"));
  // A disabled button drops the focus; a keyboard user gets it back afterwards.
  const focused = document.activeElement;
  container.setAttribute("aria-busy", "true");
  for (const button of buttons) {
    button.disabled = true;
  }
  try {
    return await work();
  } finally {
    container.removeAttribute("aria-busy");
    for (const button of buttons) {
      button.disabled = false;
    }
    const lost = document.activeElement === null || document.activeElement === document.body;
    if (lost && focused instanceof HTMLElement && focused.isConnected && !focused.closest("[hidden]")) {
      focused.focus();
    }
  }
}

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> element for an RFC 3339 string, shown in the reader's locale. */
export function timeElement(rfc3339) {
  const date = new Date(rfc3339);
  const text = Number.isNaN(date.getTime()) ? String(rfc3339) : TIME_FORMAT.format(date);
  return el("time", { datetime: rfc3339, text });
}
