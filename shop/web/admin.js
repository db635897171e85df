// The admin pages' home: `#/admin`. Products a page at a time (each leads to its edit page), the
// form that creates one, and the way to an order's journey. A person who is not an admin is told so
// here; the API refuses them anyway (403), whatever a page shows.

import { el, fill, messageLine, money, onSubmit } from "./dom.js";
import { go } from "./router.js";
import * as session from "./session.js";

const PAGE_SIZE = 20;
// One Idempotency-Key per intended change (the same request to the same path), kept until the shop
// has answered it for good: a retry after a lost answer is the same change, not a second one.
const keys = new Map();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** True for an admin; otherwise the view says why it shows nothing (and a login leads back here). */
export function admitted(view, here) {
  if (!session.loggedIn()) {
    go("#/login", { then: here });
    return false;
  }
  const account = session.current();
  if (account && (account.roles || []).includes("admin")) return true;
  fill(
    view,
    el("h1", {}, "Admins only"),
    el(
      "p",
      { class: "message error", role: "alert", testid: "admin-refusal" },
      `These pages are for the shop's admins, and ${account ? account.email : "this account"} is not one. Nothing here is shown to you, and the shop refuses these requests from you anyway.`,
    ),
    el("p", {}, el("a", { href: "#/" }, "Back to the catalogue.")),
  );
  return false;
}

/** A write with its Idempotency-Key: sent again with the same key (up to 3 times) while the answer
 * is lost or the shop is busy; the key is forgotten once the shop answered, so the next change with
 * the same values is a new change. A change that still failed keeps its key for the person's retry. */
export async function keyed(method, path, body, headers = {}) {
  const intent = JSON.stringify([method, path, body, headers]);
  if (!keys.has(intent)) keys.set(intent, crypto.randomUUID());
  const sent = { ...headers, "Idempotency-Key": keys.get(intent) };
  for (let attempt = 1; ; attempt++) {
    try {
      const answer = await session.authed(method, path, { body, headers: sent });
      keys.delete(intent);
      return answer;
    } catch (error) {
      const again = error.lost || error.status === 503 || error.code === "idempotency_key_in_flight";
      if (!again) keys.delete(intent);
      if (!again || attempt >= 3) throw error;
      await sleep(400 * attempt);
    }
  }
}

/** "12.50" → 1250 (NaN when it is not an amount with at most two decimals). */
export function cents(text) {
  const found = /^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  return found ? Number(found[1]) * 100 + Number((found[2] || "0").padEnd(2, "0")) : Number.NaN;
}

/** A labelled input of a form (id and test id `admin-<name>`). */
export function field(name, label, attributes = {}) {
  const input = el(attributes.multiline ? "textarea" : "input", { id: `admin-${name}`, testid: `admin-${name}`, ...attributes, multiline: null });
  return { input, nodes: [el("label", { for: `admin-${name}` }, label), input] };
}

export async function render(view, { query }) {
  if (!admitted(view, "#/admin")) return;
  const cursor = query.get("cursor");
  const path = `/api/v1/products?limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
  const { data } = await session.authed("GET", path);
  fill(
    view,
    el("h1", {}, "Admin"),
    el("h2", {}, "An order's journey"),
    journeyForm(),
    el("h2", {}, "New product"),
    createForm(),
    el("h2", {}, "Products"),
    el(
      "table",
      { class: "lines", testid: "admin-products" },
      el("thead", {}, el("tr", {}, ["Name", "SKU", "Price", "Available", "Version"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        data.items.map((p) =>
          el(
            "tr",
            { testid: "admin-product-row", "data-product-id": p.id },
            el("td", {}, el("a", { href: `#/admin/products/${p.id}` }, p.name)),
            el("td", {}, p.sku),
            el("td", {}, money(p.price_cents, p.currency)),
            el("td", {}, String(p.stock_available)),
            el("td", {}, String(p.version)),
          ),
        ),
      ),
    ),
    el(
      "nav",
      { class: "pager" },
      cursor ? el("button", { type: "button", onclick: () => history.back() }, "← Previous") : null,
      data.next_cursor ? el("a", { href: `#/admin?cursor=${encodeURIComponent(data.next_cursor)}` }, "Next →") : null,
    ),
  );
}

function journeyForm() {
  const message = messageLine("journey-message");
  const order = field("journey-order", "Order id", { type: "text", required: true, placeholder: "the order's id, e.g. from the customer" });
  const form = el("form", { class: "form", novalidate: true }, order.nodes, el("button", { type: "submit", testid: "journey-submit" }, "Show its journey"), message);
  onSubmit(form, message, async () => {
    const id = order.input.value.trim().toLowerCase();
    if (!/^[0-9a-f-]{36}$/.test(id)) throw { words: "An order id is 36 characters of 0–9, a–f and dashes." };
    go(`#/admin/orders/${id}`);
  });
  return form;
}

function createForm() {
  const message = messageLine("admin-create-message");
  const sku = field("sku", "SKU", { type: "text", required: true, maxlength: 64 });
  const name = field("name", "Name", { type: "text", required: true, maxlength: 200 });
  const description = field("description", "Description", { multiline: true, maxlength: 5000, rows: 3 });
  const price = field("price", "Price", { type: "text", required: true, inputmode: "decimal", placeholder: "12.50" });
  const currency = field("currency", "Currency", { type: "text", required: true, value: "EUR", maxlength: 3 });
  const stock = field("stock", "Stock", { type: "number", min: 0, value: "0" });
  const form = el(
    "form",
    { class: "form", novalidate: true, testid: "admin-product-form" },
    sku.nodes, name.nodes, description.nodes, price.nodes, currency.nodes, stock.nodes,
    el("button", { type: "submit", class: "primary", testid: "admin-create-submit" }, "Create product"),
    message,
  );
  onSubmit(form, message, async () => {
    const body = {
      sku: sku.input.value.trim(),
      name: name.input.value,
      description: description.input.value,
      price_cents: cents(price.input.value),
      currency: currency.input.value.trim().toUpperCase(),
      stock: Number.parseInt(stock.input.value || "0", 10),
    };
    if (Number.isNaN(body.price_cents)) throw { words: "The price is an amount like 12.50." };
    const { data } = await keyed("POST", "/api/v1/products", body);
    go(`#/admin/products/${data.id}`);
  });
  return form;
}
