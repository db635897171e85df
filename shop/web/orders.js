// Order history: `#/orders`, newest first, a page at a time.

import { el, fill, money, when } from "./dom.js";
import { go } from "./router.js";
import { authed, loggedIn } from "./session.js";
import { STATUS_WORDS } from "./order.js";

export async function render(view) {
  if (!loggedIn()) return go("#/login", { then: "#/orders" });
  const list = el("ul", { class: "history", testid: "order-history" });
  const more = el("button", { type: "button", hidden: true }, "Older orders");
  let cursor = null;
  async function page() {
    const path = "/api/v1/orders?limit=20" + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const { data } = await authed("GET", path);
    for (const order of data.items) list.append(item(order));
    cursor = data.next_cursor;
    more.hidden = !cursor;
    if (!list.children.length) list.append(el("li", { class: "muted" }, "No orders yet."));
  }
  more.addEventListener("click", page);
  fill(view, el("h1", {}, "Your orders"), list, more);
  await page();
}

function item(order) {
  const units = order.items.reduce((sum, line) => sum + line.quantity, 0);
  return el(
    "li",
    { testid: "order-history-item", "data-order-id": order.id },
    el("a", { href: `#/orders/${order.id}` }, when(order.created_at)),
    el("span", { class: `status ${order.status.toLowerCase()}` }, order.status),
    el("span", {}, `${units} item${units === 1 ? "" : "s"}`),
    el("span", { class: "price" }, money(order.total_cents, order.currency)),
    el("span", { class: "muted" }, STATUS_WORDS[order.status] || ""),
  );
}
