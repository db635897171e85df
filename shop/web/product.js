// One product: `#/products/{id}`.

import { request } from "./api.js";
import { addButton, stockWords } from "./catalog.js";
import { el, fill, money } from "./dom.js";

export async function render(view, { params }) {
  const { data: product } = await request("GET", `/api/v1/products/${encodeURIComponent(params.id)}`);
  const quantity = el("input", { type: "number", min: 1, max: 1000, value: "1", id: "quantity", testid: "quantity" });
  fill(
    view,
    el("p", {}, el("a", { href: "#/" }, "← Catalogue")),
    el(
      "article",
      { class: "product", testid: "product-card" },
      el("h1", { testid: "product-name" }, product.name),
      el("p", { class: "price", testid: "product-price" }, money(product.price_cents, product.currency)),
      el("p", { class: "description" }, product.description || ""),
      el("p", { class: "muted" }, `${stockWords(product.stock_available)} · SKU ${product.sku}`),
      el(
        "p",
        { class: "row" },
        el("label", { for: "quantity" }, "Quantity "),
        quantity,
        addButton(product, () => Math.max(1, Math.min(1000, Number.parseInt(quantity.value, 10) || 1))),
      ),
    ),
  );
}
