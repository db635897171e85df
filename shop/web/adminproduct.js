// One product, for an admin: `#/admin/products/{id}`. The edit form sends the version it was filled
// from as If-Match (the ETag of the last answer), so an edit made over someone else's is refused (412)
// and said in words instead of overwriting theirs; a stock adjustment carries an Idempotency-Key of
// its own, the same on every retry of it; the product's event history, oldest first.

import { admitted, cents, field, keyed } from "./admin.js";
import { el, fill, messageLine, money, onSubmit, say, when } from "./dom.js";
import * as session from "./session.js";

export async function render(view, { params }) {
  const path = `/api/v1/products/${encodeURIComponent(params.id)}`;
  if (!admitted(view, `#/admin/products/${params.id}`)) return;
  let product = null;
  let etag = null; // the version the edit form shows, as the shop said it (ETag)

  const title = el("h1", { testid: "admin-product-name" });
  const summary = el("p", { class: "muted", testid: "admin-product-summary" });
  const editMessage = messageLine("admin-edit-message");
  const name = field("edit-name", "Name", { type: "text", required: true, maxlength: 200 });
  const description = field("edit-description", "Description", { multiline: true, maxlength: 5000, rows: 3 });
  const price = field("edit-price", "Price", { type: "text", required: true, inputmode: "decimal" });
  const currency = field("edit-currency", "Currency", { type: "text", required: true, maxlength: 3 });
  const reload = el("button", { type: "button", testid: "admin-reload", onclick: () => load().catch((error) => say(editMessage, error.words)) }, "Reload the product");
  const editForm = el(
    "form",
    { class: "form", novalidate: true, testid: "admin-edit-form" },
    name.nodes, description.nodes, price.nodes, currency.nodes,
    el("p", { class: "row" }, el("button", { type: "submit", class: "primary", testid: "admin-edit-submit" }, "Save changes"), reload),
    editMessage,
  );
  const stockMessage = messageLine("admin-stock-message");
  const delta = field("stock-delta", "Restock (+) or write off (−)", { type: "number", required: true, step: 1, placeholder: "e.g. 10 or -3" });
  const stockForm = el(
    "form",
    { class: "form", novalidate: true, testid: "admin-stock-form" },
    delta.nodes,
    el("button", { type: "submit", testid: "admin-stock-submit" }, "Adjust stock"),
    stockMessage,
  );
  const events = el("ol", { class: "events", testid: "admin-product-events" });

  function show(answer) {
    product = answer.data;
    etag = answer.headers.get("ETag");
    title.textContent = product.name;
    summary.textContent = `SKU ${product.sku} · ${money(product.price_cents, product.currency)} · ${product.stock_available} available · version ${product.version} · updated ${when(product.updated_at)}`;
    name.input.value = product.name;
    description.input.value = product.description || "";
    price.input.value = (product.price_cents / 100).toFixed(2);
    currency.input.value = product.currency;
  }

  async function history() {
    const { data } = await session.authed("GET", `${path}/events`);
    fill(
      events,
      data.items.map((event) =>
        el(
          "li",
          { testid: "admin-product-event" },
          el("strong", { testid: "admin-event-type" }, event.type),
          ` · version ${event.version} · ${when(event.occurred_at)} `,
          el("code", {}, JSON.stringify(event.data)),
        ),
      ),
    );
  }

  async function load() {
    show(await session.authed("GET", path));
    await history();
  }

  onSubmit(editForm, editMessage, async () => {
    const changes = {
      name: name.input.value,
      description: description.input.value,
      price_cents: cents(price.input.value),
      currency: currency.input.value.trim().toUpperCase(),
    };
    if (Number.isNaN(changes.price_cents)) throw { words: "The price is an amount like 12.50." };
    show(await keyed("PATCH", path, changes, { "If-Match": etag }));
    say(editMessage, `Saved: version ${product.version}.`, "info");
    editForm.querySelector("button[type=submit]").disabled = false;
    await history();
  });

  onSubmit(stockForm, stockMessage, async () => {
    const amount = Number(delta.input.value);
    if (!Number.isInteger(amount) || amount === 0) throw { words: "Say how many units: a whole number, not 0." };
    show(await keyed("POST", `${path}/stock`, { delta: amount }));
    say(stockMessage, `${amount > 0 ? "Restocked" : "Written off"}: ${product.stock_available} available now.`, "info");
    delta.input.value = "";
    stockForm.querySelector("button[type=submit]").disabled = false;
    await history();
  });

  await load();
  fill(
    view,
    el("p", {}, el("a", { href: "#/admin" }, "← Admin")),
    title,
    summary,
    el("div", { class: "columns" }, el("section", {}, el("h2", {}, "Edit"), editForm), el("section", {}, el("h2", {}, "Stock"), stockForm)),
    el("h2", {}, "Event history"),
    events,
  );
}
