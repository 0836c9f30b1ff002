// The public wallet API over fetch: JSON in and out, errors as ApiError with a readable message.

export const API = "/api/v1";

/** An answer that is not a success: the contract's error code and message, or a network fault. */
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** One sentence for a person: the server's message, with the fields it names. */
  describe() {
    const sentence = capitalise(this.message);
    const fields = this.details && typeof this.details.fields === "object" ? this.details.fields : null;
    if (fields === null) {
      return sentence;
    }
    const named = Object.entries(fields)
      .filter(([, why]) => typeof why === "string" && why !== this.message)
      .map(([field, why]) => `${field.replaceAll("_", " ")}: ${why}`);
    return named.length ? `${sentence} (${named.join("; ")})` : sentence;
  }
}

function capitalise(text) {
  const trimmed = String(text).trim();
  const sentence = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** Call `method path` of the API; resolve to the decoded body or reject with an ApiError. */
export async function request(method, path, { body, token, idempotencyKey, accept = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  if (idempotencyKey) {
    headers["Idempotency-Key"] = idempotencyKey;
  }
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "network_error", "the server cannot be reached; check the connection and try again");
  }
  let payload = null;
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && accept !== "application/json" && type.startsWith(accept)) {
    return await response.text();
  }
  if (type.startsWith("application/json")) {
    payload = await response.json().catch(() => null);
  }
  if (response.ok) {
    return payload;
  }
  const error = payload && typeof payload.error === "object" ? payload.error : null;
  if (error && typeof error.message === "string") {
    const { code, message, ...details } = error;
    throw new ApiError(response.status, String(code || "error"), message, details);
  }
  throw new ApiError(
    response.status,
    "http_error",
    `the server answered ${response.status} ${response.statusText}`.trim(),
  );
}
