// The catalogue, a page at a time with the API's cursors: `#/` is the first page, `#/?cursor=C` the
// page after C. "Previous" goes back in the browser's history, which holds the pages seen.

import { request } from "./api.js";
import * as cart from "./cart.js";
import { el, fill, money, notify } from "./dom.js";

const PAGE_SIZE = 12;

export async function render(view, { query }) {
  const cursor = query.get("cursor");
  const path = `/api/v1/products?limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
  const { data } = await request("GET", path);
  const cards = data.items.map(card);
  fill(
    view,
    el("h1", {}, "Catalogue"),
    cards.length ? el("ul", { class: "cards", testid: "catalogue" }, cards) : el("p", { class: "muted" }, "Nothing for sale yet."),
    el(
      "nav",
      { class: "pager" },
      cursor ? el("button", { type: "button", onclick: () => history.back() }, "← Previous") : null,
      cursor ? el("a", { href: "#/" }, "First page") : null,
      data.next_cursor ? el("a", { href: `#/?cursor=${encodeURIComponent(data.next_cursor)}`, testid: "next-page" }, "Next →") : null,
    ),
  );
}

export function card(product) {
  return el(
    "li",
    { class: "card", testid: "product-card", "data-product-id": product.id },
    el("a", { href: `#/products/${product.id}`, class: "name", testid: "product-name" }, product.name),
    el("span", { class: "price", testid: "product-price" }, money(product.price_cents, product.currency)),
    el("span", { class: "stock muted" }, stockWords(product.stock_available)),
    addButton(product),
  );
}

export function stockWords(available) {
  return available > 0 ? `${available} in stock` : "Out of stock";
}

export function addButton(product, quantity = () => 1) {
  return el(
    "button",
    {
      type: "button",
      class: "primary",
      testid: "add-to-cart",
      disabled: product.stock_available <= 0,
      onclick: () => {
        cart.add(product, quantity());
        notify(`Added to your cart: ${product.name}`, "info");
      },
    },
    "Add to cart",
  );
}
