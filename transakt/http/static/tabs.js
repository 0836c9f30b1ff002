// The dashboard's sections as tabs (the WAI-ARIA tabs pattern): one panel shown at a time,
// arrow keys move between tabs, the URL's hash remembers the tab across a reload.
import { byId } from "./dom.js";

const NAMES = ["home", "send", "bank", "activity"];
const listeners = [];

function tabOf(name) {
  return byId(`tab-${name}`);
}

/** Call `handler(name)` whenever a tab is opened. */
export function onTab(handler) {
  listeners.push(handler);
}

/** Show the panel `name`; `focus` moves the keyboard focus to its tab. */
export function selectTab(name, { focus = false } = {}) {
  const chosen = NAMES.includes(name) ? name : "home";
  for (const other of NAMES) {
    const selected = other === chosen;
    const tab = tabOf(other);
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    byId(`panel-${other}`).hidden = !selected;
  }
  if (focus) {
    tabOf(chosen).focus();
  }
  if (location.hash !== `#${chosen}`) {
    history.replaceState(null, "", chosen === "home" ? location.pathname : `#${chosen}`);
  }
  for (const handler of listeners) {
    handler(chosen);
  }
}

export function currentTab() {
  return NAMES.find((name) => tabOf(name).getAttribute("aria-selected") === "true") || "home";
}

export function wireTabs() {
  for (const name of NAMES) {
    const tab = tabOf(name);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (event) => {
      const index = NAMES.indexOf(name);
      const moves = {
        ArrowRight: (index + 1) % NAMES.length,
        ArrowLeft: (index + NAMES.length - 1) % NAMES.length,
        Home: 0,
        End: NAMES.length - 1,
      };
      if (event.key in moves) {
        event.preventDefault();
        selectTab(NAMES[moves[event.key]], { focus: true });
      }
    });
  }
}

/** The tab the address asks for (#send, #bank, #activity), or home. */
export function tabFromAddress() {
  const name = location.hash.slice(1);
  return NAMES.includes(name) ? name : "home";
}
