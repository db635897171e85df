// The cart: `#/cart`, and the checkout button.

import * as cart from "./cart.js";
import { checkout, pending } from "./checkout.js";
import { el, fill, messageLine, money, say } from "./dom.js";
import { go } from "./router.js";
import { loggedIn } from "./session.js";

export async function render(view) {
  const lines = cart.lines();
  const unfinished = pending();
  if (!lines.length && !unfinished) {
    fill(view, el("h1", {}, "Your cart"), el("p", { class: "muted" }, "Your cart is empty. ", el("a", { href: "#/" }, "Browse the catalogue.")));
    return;
  }
  const currencies = [...new Set(lines.map((l) => l.currency))];
  const message = messageLine("checkout-message");
  const button = el("button", { type: "button", class: "primary", testid: "checkout" }, unfinished ? "Finish checkout" : "Check out");
  button.addEventListener("click", async () => {
    if (!loggedIn()) {
      go("#/login", { then: "#/cart" });
      return;
    }
    button.disabled = true;
    say(message, "Placing your order…", "info");
    try {
      const order = await checkout((error) => say(message, `${error.words} Trying again with the same checkout, so it cannot order twice…`, "info"));
      go(`#/orders/${order.id}`);
    } catch (error) {
      say(message, error.words || String(error));
      button.disabled = false;
    }
  });
  fill(
    view,
    el("h1", {}, "Your cart"),
    el(
      "table",
      { class: "lines" },
      el("thead", {}, el("tr", {}, el("th", {}, "Product"), el("th", {}, "Price"), el("th", {}, "Quantity"), el("th", {}, ""))),
      el("tbody", {}, lines.map((line) => row(line, () => render(view)))),
    ),
    currencies.length === 1
      ? el("p", { class: "total" }, "Total ", el("strong", { testid: "cart-total" }, money(lines.reduce((s, l) => s + l.price_cents * l.quantity, 0), currencies[0])))
      : null,
    currencies.length > 1 ? el("p", { class: "message error" }, "One order has one currency: check out the products of one currency at a time.") : null,
    unfinished ? el("p", { class: "muted" }, "A checkout of this tab has not been answered yet: finishing it sends the same order again, which the shop places once.") : null,
    el("p", {}, button),
    message,
    el("p", { class: "muted" }, "Prices are confirmed by the shop when you check out; you pay on the order's page."),
  );
}

function row(line, redraw) {
  const quantity = el("input", { type: "number", min: 0, max: 1000, value: String(line.quantity), "aria-label": "quantity", testid: "cart-quantity" });
  quantity.addEventListener("change", () => {
    cart.setQuantity(line.product_id, Math.max(0, Number.parseInt(quantity.value, 10) || 0));
    redraw();
  });
  return el(
    "tr",
    { testid: "cart-line" },
    el("td", {}, el("a", { href: `#/products/${line.product_id}` }, line.name)),
    el("td", {}, money(line.price_cents, line.currency)),
    el("td", {}, quantity),
    el("td", {}, el("button", { type: "button", onclick: () => { cart.setQuantity(line.product_id, 0); redraw(); } }, "Remove")),
  );
}
