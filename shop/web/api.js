// The one way the pages speak to the API: JSON in and out, and every refusal turned into an ApiError
// holding the envelope ({"error": {"code", "message", "request_id"}}) and words for a person.

export class ApiError extends Error {
  constructor(status, code, message, requestId, retryAfter) {
    super(message);
    this.status = status; // 0: no answer came back (the network, or the answer was lost)
    this.code = code;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** True when the request may or may not have reached the server: only an idempotent retry is safe. */
  get lost() {
    return this.status === 0;
  }

  get words() {
    const said = WORDS[this.code];
    const text = typeof said === "function" ? said(this) : said || this.message || "Something went wrong.";
    return this.requestId ? `${text} (${this.code}; request ${this.requestId})` : text;
  }
}

// What each code of the contract (docs/contract.md) means to the person in front of the page.
const WORDS = {
  network: "The shop could not be reached. Check your connection and try again.",
  invalid_credentials: "That email and password do not match an account.",
  email_not_verified: "This email address is not verified yet: enter the code we emailed you.",
  invalid_email: "That does not look like an email address.",
  invalid_password: "The password must be 10 to 128 characters long.",
  invalid_code: "That code is wrong, expired or used up. Ask for a new one.",
  password_required: "This address was registered more than once: enter the password you want with the code.",
  resend_too_soon: (e) => `A code was sent less than a minute ago. Try again in ${e.retryAfter || 60} s.`,
  too_many_attempts: "Too many failed logins. Wait a while and try again.",
  rate_limited: (e) => `Too many requests. Try again in ${e.retryAfter || "a few"} s.`,
  unauthorized: "Please log in.",
  invalid_token: "Your session ended. Please log in again.",
  token_expired: "Your session ended. Please log in again.",
  invalid_refresh_token: "Your session ended. Please log in again.",
  refresh_token_reused: "Your session was ended for safety. Please log in again.",
  forbidden: "You may not do that: it needs the admin role (granted since you logged in? Log out and in again).",
  not_found: "There is nothing here: it does not exist or it is not yours.",
  unknown_product: "A product in your cart is no longer sold. Remove it and try again.",
  invalid_order: "The order is not valid: at most 1000 of one product, one currency per order.",
  too_many_unpaid_orders: "You have too many unpaid orders. Pay or cancel one first.",
  idempotency_key_reused: "This checkout was already placed with other items. Start the checkout again.",
  stock_not_reserved: "The stock is still being reserved. Try again in a moment.",
  invalid_transition: (e) => `That is no longer possible: ${e.message}`,
  duplicate_sku: "Another product already has that SKU. Choose another.",
  invalid_product: (e) => `The product is not valid: ${e.message}`,
  invalid_field: (e) => `A field is not valid: ${e.message}`,
  version_conflict: "Someone changed this product since you opened it, so your edit was not saved. Reload it to see their change, then edit again.",
  stock_below_reserved: "That write-off would take stock that orders have reserved. Write off less.",
  idempotency_key_in_flight: "The same change is still being made. Wait a moment and try again.",
  tracing_not_configured: "This shop has no trace store configured (SHOP_TRACE_QUERY_URL), so journeys cannot be shown.",
  service_unavailable: "The shop is busy for a moment. Try again.",
  command_timeout: "The shop is slow to answer right now. Try again.",
  rate_limiter_unavailable: "The shop is busy for a moment. Try again.",
};

/** fetch, then the JSON answer; an error answer or no answer at all throws an ApiError. */
export async function request(method, path, { body, headers = {}, token } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (token) sent.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", // the API reads tokens from Authorization only
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "no answer", null, null);
  }
  let data = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      throw new ApiError(0, "network", "the answer was cut off", null, null);
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || response.statusText,
      error.request_id || response.headers.get("X-Request-Id"),
      response.headers.get("Retry-After"),
    );
  }
  return { status: response.status, data, headers: response.headers, url: response.url };
}
