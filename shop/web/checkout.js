// Checkout, at most one order however often it is sent: one Idempotency-Key per checkout, made when
// the checkout starts and kept with it in sessionStorage until the shop has answered with the order
// (or refused it). A double click, a reload or an answer lost on the way back all send the same key
// with the same body again, and the API answers them with the one order it made (docs/api.md#orders).

import { authed } from "./session.js";
import * as cart from "./cart.js";

const PENDING = "shop.pending_checkout"; // {key, body}
let inFlight = null;

export function pending() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    return stored && typeof stored.key === "string" && stored.body ? stored : null;
  } catch {
    return null;
  }
}

function bodyOf(lines) {
  return { items: lines.map((l) => ({ product_id: l.product_id, quantity: l.quantity })) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Places the cart (or finishes the checkout this tab already started) and answers the order. A
 * second call while one runs joins it. `onRetry(error)` hears of each retry. */
export function checkout(onRetry = () => {}) {
  if (!inFlight) {
    inFlight = run(onRetry).finally(() => {
      inFlight = null;
    });
  }
  return inFlight;
}

async function run(onRetry) {
  let started = pending();
  if (!started) {
    started = { key: crypto.randomUUID(), body: bodyOf(cart.lines()) };
    // Kept before it is sent: a reload from here on retries this key, never a new one.
    sessionStorage.setItem(PENDING, JSON.stringify(started));
  }
  try {
    const order = await send(started, onRetry);
    sessionStorage.removeItem(PENDING);
    if (JSON.stringify(bodyOf(cart.lines())) === JSON.stringify(started.body)) cart.clear();
    return order;
  } catch (error) {
    // Refused for good: this checkout is over (the cart stays, to be changed and checked out anew).
    // Not answered, or not logged in: it stays pending, and the next try sends the same key.
    if (!error.lost && error.status !== 401 && !retriable(error)) sessionStorage.removeItem(PENDING);
    throw error;
  }
}

function retriable(error) {
  return (
    error.lost ||
    error.code === "idempotency_key_in_flight" ||
    error.code === "rate_limited" ||
    error.status === 503
  );
}

async function send(started, onRetry) {
  const headers = { "Idempotency-Key": started.key };
  for (let attempt = 0; ; attempt += 1) {
    try {
      const { status, data } = await authed("POST", "/api/v1/orders", { body: started.body, headers });
      return status === 201 ? data : await placed(data.placement_id);
    } catch (error) {
      if (!retriable(error) || attempt >= 6) throw error;
      onRetry(error);
      await sleep(Math.min(8000, 500 * 2 ** attempt));
    }
  }
}

/** A placement answered 202: its Location redirects to the order once it exists. */
async function placed(placementId) {
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const { data } = await authed("GET", `/api/v1/orders/placements/${encodeURIComponent(placementId)}`);
    if (data && data.id) return data;
    await sleep(1000);
  }
  throw new Error("the order is still being placed");
}
