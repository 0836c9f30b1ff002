// The live feed: one websocket to /api/v1/live, reconnecting with backoff until stopped.
import { API } from "./api.js";

const FIRST_DELAY_MS = 1000;
const LAST_DELAY_MS = 30000;
// The server closes with this code when the token expires: reconnecting cannot help.
const CLOSE_TOKEN_EXPIRED = 4001;

/**
 * Calls `onMessage(message)` for each pushed message, `onState(state)` with "connecting",
 * "live" or "offline", `onOpen()` after each (re)connection, when missed events may need
 * a catch-up, and `onExpired()` when the server ends the feed because the token expired.
 */
export class LiveFeed {
  constructor(token, { onMessage, onState, onOpen, onExpired }) {
    this.token = token;
    this.handlers = { onMessage, onState, onOpen, onExpired };
    this.socket = null;
    this.retryTimer = null;
    this.delay = FIRST_DELAY_MS;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // The one URL a token may appear in: a browser cannot set headers on a websocket.
    const url = `${scheme}//${location.host}${API}/live?token=${encodeURIComponent(this.token)}`;
    this.handlers.onState("connecting");
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = FIRST_DELAY_MS;
      this.handlers.onState("live");
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not ours to show
      }
      if (message && typeof message === "object") {
        this.handlers.onMessage(message);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      if (event.code === CLOSE_TOKEN_EXPIRED) {
        this.stopped = true;
        this.handlers.onExpired();
      } else {
        this.retry();
      }
    });
  }

  retry() {
    if (this.stopped) {
      return;
    }
    this.handlers.onState("offline");
    // Jitter keeps many pages from reconnecting in the same instant after a restart.
    const wait = this.delay / 2 + Math.random() * (this.delay / 2);
    this.delay = Math.min(this.delay * 2, LAST_DELAY_MS);
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.close(1000, "logged out");
    }
  }
}
