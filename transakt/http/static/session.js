// The access token: kept in memory and in sessionStorage (this tab only), never in a URL
// except the websocket's. It ends on logout, on any 401, or when its `exp` passes.

const STORAGE_KEY = "transakt.session";

/** When a JWT expires, in milliseconds since the epoch, or null when it cannot be read. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return Number.isInteger(claims.exp) ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** The signed-in session: a token and when it ends; calls `onExpired` once that time passes. */
export class Session {
  constructor(onExpired) {
    this.onExpired = onExpired;
    this.token = null;
    this.expiresAt = 0;
    this.timer = null;
  }

  /** Start a session from a login answer `{access_token, expires_in}`. */
  begin(accessToken, expiresIn) {
    const expiresAt = tokenExpiry(accessToken) ?? Date.now() + expiresIn * 1000;
    this.adopt(accessToken, expiresAt);
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ token: accessToken, expiresAt }));
    } catch {
      // Storage may be disabled; the session then lasts as long as the page.
    }
  }

  /** Take back this tab's session after a reload: "restored", "expired" or "none". */
  restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    } catch {
      saved = null;
    }
    if (!saved || typeof saved.token !== "string" || typeof saved.expiresAt !== "number") {
      return "none";
    }
    if (saved.expiresAt <= Date.now()) {
      this.end();
      return "expired";
    }
    this.adopt(saved.token, saved.expiresAt);
    return "restored";
  }

  adopt(token, expiresAt) {
    this.token = token;
    this.expiresAt = expiresAt;
    clearTimeout(this.timer);
    // setTimeout may fire late (a sleeping laptop): `active` checks the clock as well.
    this.timer = setTimeout(() => this.expire(), Math.max(0, expiresAt - Date.now()));
  }

  /** True while there is a token whose time has not passed. */
  get active() {
    return this.token !== null && this.expiresAt > Date.now();
  }

  expire() {
    if (this.token !== null) {
      this.end();
      this.onExpired();
    }
  }

  /** Forget the token everywhere. */
  end() {
    clearTimeout(this.timer);
    this.timer = null;
    this.token = null;
    this.expiresAt = 0;
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // Nothing stored.
    }
  }
}
