// One order, live: `#/orders/{id}`. The page asks the API with `Prefer: wait=10` while the stock is
// being reserved (the answer comes as soon as it is reserved or rejected: docs/api.md#orders), then
// every few seconds while the order can still change (its expiry is a timer on the server). It
// shows the countdown to expires_at, the payment reminders, the pay form and cancel.

import { request } from "./api.js";
import { config } from "./config.js";
import { duration, el, fill, messageLine, money, say, when } from "./dom.js";
import { go } from "./router.js";
import { authed, loggedIn } from "./session.js";

export const STATUS_WORDS = {
  PENDING: "waiting for payment",
  PAID: "paid; it completes when its payment window closes",
  COMPLETED: "completed",
  CANCELLED: "cancelled",
};
const STOCK_WORDS = {
  reserving: "the shop is reserving the stock…",
  reserved: "the stock is set aside for this order",
  rejected: "nothing was set aside",
};
const REASON_WORDS = {
  customer_request: "you cancelled it",
  out_of_stock: "not enough stock for every line (out of stock)",
  payment_timeout: "it was not paid in time (payment timeout)",
};
const names = new Map(); // product id → name, for this page's life

export async function render(view, { params }) {
  if (!loggedIn()) return go("#/login", { then: `#/orders/${params.id}` });
  const path = `/api/v1/orders/${encodeURIComponent(params.id)}`;
  let order = (await authed("GET", path)).data;
  let alive = true;

  const status = el("strong", { testid: "order-status" });
  const statusWords = el("span", { class: "muted" });
  const stock = el("strong", { testid: "order-stock" });
  const stockWords = el("span", { class: "muted" });
  const reason = el("p", { testid: "order-reason", class: "reason", hidden: true });
  const expires = el("span", { testid: "order-expires" });
  const paid = el("span");
  const lines = el("tbody");
  const total = el("strong", { testid: "order-total" });
  const reminders = el("ul", { testid: "order-reminders", class: "reminders" });
  const message = messageLine("order-message");
  const reference = el("input", { type: "text", id: "pay-reference", testid: "pay-reference", maxlength: 255, required: true, placeholder: "e.g. the bank transfer's reference" });
  const payButton = el("button", { type: "submit", class: "primary", testid: "pay-submit" }, "Pay");
  const payForm = el("form", { class: "form pay", novalidate: true }, el("label", { for: "pay-reference" }, "Payment reference"), reference, payButton);
  const cancel = el("button", { type: "button", class: "danger", testid: "cancel-order" }, "Cancel order");

  async function act(button, method, url, body, done) {
    button.disabled = true;
    say(message, "");
    try {
      order = (await authed(method, url, { body })).data;
      show();
      say(message, done, "info");
    } catch (error) {
      say(message, error.words);
    } finally {
      button.disabled = false;
    }
  }
  payForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!reference.value.trim()) return say(message, "Enter the payment's reference.");
    act(payButton, "POST", `${path}/pay`, { payment_reference: reference.value }, "Paid. Thank you!");
  });
  cancel.addEventListener("click", () => act(cancel, "POST", `${path}/cancel`, {}, "The order is cancelled; its stock is back on sale."));

  function show() {
    status.textContent = order.status;
    status.className = `status ${order.status.toLowerCase()}`;
    statusWords.textContent = ` ${STATUS_WORDS[order.status] || ""}`;
    stock.textContent = order.stock;
    stockWords.textContent = ` ${STOCK_WORDS[order.stock] || ""}`;
    reason.hidden = !order.cancel_reason;
    reason.textContent = order.cancel_reason ? `Why it was cancelled: ${REASON_WORDS[order.cancel_reason] || order.cancel_reason}.` : "";
    paid.textContent = order.paid_at ? when(order.paid_at) : order.status === "PENDING" ? "not yet" : "never";
    const pending = order.status === "PENDING";
    payForm.hidden = !pending;
    payButton.disabled = order.stock !== "reserved";
    payButton.title = order.stock === "reserved" ? "" : "The stock is still being reserved";
    cancel.hidden = !pending;
    fill(lines, order.items.map((line) => el("tr", {}, el("td", {}, productName(line.product_id)), el("td", {}, String(line.quantity)), el("td", {}, money(line.unit_price_cents, order.currency)))));
    total.textContent = money(order.total_cents, order.currency);
    tick();
  }

  function tick() {
    const left = Date.parse(order.expires_at) - Date.now();
    const at = when(order.expires_at);
    expires.textContent = {
      PENDING: left > 0 ? `pay within ${duration(left)} (by ${at}), or it is cancelled` : `its payment window closed at ${at}`,
      PAID: `completes at ${at}`,
      COMPLETED: `completed at ${at}`,
      CANCELLED: "no longer runs",
    }[order.status];
    fill(reminders, reminderItems(order));
  }

  fill(
    view,
    el("p", {}, el("a", { href: "#/orders" }, "← Your orders")),
    el("h1", {}, "Order ", el("code", {}, order.id)),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Status"), el("dd", {}, status, statusWords),
      el("dt", {}, "Stock"), el("dd", {}, stock, stockWords),
      el("dt", {}, "Placed"), el("dd", {}, when(order.created_at)),
      el("dt", {}, "Payment"), el("dd", {}, expires),
      el("dt", {}, "Paid"), el("dd", {}, paid),
    ),
    reason,
    el("table", { class: "lines" }, el("thead", {}, el("tr", {}, el("th", {}, "Product"), el("th", {}, "Quantity"), el("th", {}, "Unit price"))), lines),
    el("p", { class: "total" }, "Total ", total),
    el("h2", {}, "Payment reminders"),
    reminders,
    payForm,
    el("p", {}, cancel),
    message,
  );
  show();

  const clock = setInterval(tick, 1000);
  (async () => {
    while (alive) {
      const changing = order.stock === "reserving" || order.status === "PENDING" || order.status === "PAID";
      if (!changing) break;
      try {
        const waiting = order.stock === "reserving";
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 5000));
        if (!alive) break;
        const headers = waiting ? { Prefer: "wait=10" } : {};
        const fresh = (await authed("GET", path, { headers })).data;
        if (alive) {
          order = fresh;
          show();
        }
      } catch (error) {
        if (alive) say(message, error.words);
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  })();
  return () => {
    alive = false;
    clearInterval(clock);
  };
}

function productName(id) {
  const cell = el("span", {}, names.get(id) || id);
  if (!names.has(id)) {
    request("GET", `/api/v1/products/${encodeURIComponent(id)}`)
      .then(({ data }) => {
        names.set(id, data.name);
        cell.textContent = data.name;
      })
      .catch(() => {});
  }
  return cell;
}

/** When each payment reminder went or will go out, from the placement time and the reminders' delays
 * (SHOP_ORDER_REMINDERS, from /storefront.json): the API's order does not carry its timers. A
 * reminder goes out only while the order is PENDING at its time. */
function reminderItems(order) {
  const delays = config().reminders_s || [];
  if (!delays.length) return [el("li", { class: "muted" }, "This shop sends no payment reminders.")];
  const placed = Date.parse(order.created_at);
  const ended = order.status === "PENDING" ? Infinity : Date.parse(order.paid_at || order.updated_at);
  return delays.map((delay, i) => {
    const due = placed + delay * 1000;
    const at = new Date(due).toLocaleString();
    let text;
    if (due <= Math.min(ended, Date.now())) text = `sent at ${at}`;
    else if (order.status === "PENDING") text = `will go out at ${at}, in ${duration(due - Date.now())}, if the order is still unpaid`;
    else text = `not sent: the order was ${order.status === "CANCELLED" ? "cancelled" : "paid"} before ${at}`;
    return el("li", { testid: "order-reminder" }, `Reminder ${i + 1}: ${text}`);
  });
}
