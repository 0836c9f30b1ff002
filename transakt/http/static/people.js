// Who is on the other side of a transfer, in words a person recognises.
//
// The API names people by the names their banks confirmed: a recipient looked up by e-mail
// (GET /recipients?email=), and both holders of a transfer read back (history pages and
// GET /transfers/{id} carry from_name and to_name; a live push does not). The page remembers,
// for this tab's session, the name behind each wallet it has seen, and shows a short masked id
// for anyone else. Nothing is guessed: an unknown wallet is said to be unknown.
import { el } from "./dom.js";

const STORE = "transakt.people";

let people = new Map(); // wallet id -> {name, email}

/** Load what this tab learned earlier (the session's storage, cleared at log-out). */
export function loadPeople() {
  try {
    people = new Map(Object.entries(JSON.parse(sessionStorage.getItem(STORE) || "{}")));
  } catch {
    people = new Map();
  }
}

export function forgetPeople() {
  people = new Map();
  sessionStorage.removeItem(STORE);
}

/** Remember that `walletId` is the wallet of the verified `name` at `email`. */
export function rememberPerson(walletId, name, email) {
  if (!walletId || !name) {
    return;
  }
  people.set(walletId, { name, email });
  sessionStorage.setItem(STORE, JSON.stringify(Object.fromEntries(people)));
}

export function personOf(walletId) {
  return people.get(walletId) || null;
}

/**
 * Learn the holders' names a transfer read back from the API carries (`from_name`, `to_name`:
 * the names their banks confirmed; a live push has none). Returns true when it named someone
 * this tab did not know.
 */
export function learnNames(transfer) {
  let learned = false;
  for (const [wallet, name] of [
    [transfer.from_wallet, transfer.from_name],
    [transfer.to_wallet, transfer.to_name],
  ]) {
    const known = people.get(wallet);
    if (wallet && name && (!known || known.name !== name)) {
      people.set(wallet, { name, email: known ? known.email : "" });
      learned = true;
    }
  }
  if (learned) {
    sessionStorage.setItem(STORE, JSON.stringify(Object.fromEntries(people)));
  }
  return learned;
}

/** "wal_…c74b": enough to tell wallets apart, not a wall of hex. */
export function shortId(id) {
  const text = String(id);
  const cut = text.indexOf("_");
  return text.length > 12 ? `${text.slice(0, cut + 1)}…${text.slice(-4)}` : text;
}

/** "AL" for "Ada Lovelace"; letters of any script, emoji skipped. */
export function initials(name) {
  const words = String(name).split(/\s+/).filter((word) => /\p{L}/u.test(word));
  const letters = words.map((word) => word.match(/\p{L}/u)[0]);
  const picked = letters.length > 1 ? [letters[0], letters[letters.length - 1]] : letters.slice(0, 1);
  return picked.join("").toUpperCase() || "?";
}

/** A round badge with initials (or a symbol), hidden from screen readers (the name is read). */
export function avatar(label, kind = "person") {
  return el("span", { class: "avatar", "data-kind": kind, "aria-hidden": "true", text: label });
}

/** A button that copies `id` to the clipboard; its label says what it copies. */
export function copyButton(id, what = "wallet id") {
  const button = el("button", {
    type: "button",
    class: "copy link",
    "data-copy": id,
    "aria-label": `Copy ${what} ${id}`,
    title: id,
    text: `${shortId(id)} · Copy`,
  });
  return button;
}

/** Copy handler for every copy button (one listener on the document). */
export function wireCopyButtons(announce) {
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
    if (!button) {
      return;
    }
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      announce("Copied.");
    } catch {
      announce(`Copy failed: select the id ${button.dataset.copy} by hand.`);
    }
  });
}
