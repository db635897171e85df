// The storefront's entry point: the header (cart count, who is logged in), the views by hash route,
// and, at load, the session of this tab and any checkout it left unanswered.

import * as admin from "./admin.js";
import * as adminProduct from "./adminproduct.js";
import * as cart from "./cart.js";
import * as cartView from "./cartview.js";
import * as catalog from "./catalog.js";
import { checkout, pending } from "./checkout.js";
import { load } from "./config.js";
import { el, fill, notify } from "./dom.js";
import * as journey from "./journey.js";
import * as login from "./login.js";
import * as order from "./order.js";
import * as orders from "./orders.js";
import * as product from "./product.js";
import { match, route } from "./router.js";
import * as session from "./session.js";
import * as signup from "./signup.js";

route("/", catalog);
route("/products/:id", product);
route("/cart", cartView);
route("/signup", signup);
route("/login", login);
route("/orders", orders);
route("/orders/:id", order);
route("/admin", admin);
route("/admin/products/:id", adminProduct);
route("/admin/orders/:id", journey);

const view = document.getElementById("view");
let leave = null; // the current view's cleanup (stops an order page's live updates)
let drawn = 0;

async function show() {
  const shown = ++drawn;
  if (leave) leave();
  leave = null;
  notify("");
  const found = match(location.hash);
  if (!found) {
    fill(view, el("h1", {}, "Not found"), el("p", {}, el("a", { href: "#/" }, "Back to the catalogue.")));
    return;
  }
  view.dataset.view = location.hash.split("?")[0] || "#/";
  // Each view draws into a slot of its own: a slow view left behind draws into a slot no longer shown.
  const slot = el("div", { class: "slot" }, el("p", { class: "muted" }, "Loading…"));
  fill(view, slot);
  try {
    const cleanup = await found.page.render(slot, found);
    if (shown === drawn) leave = cleanup || null;
    else if (cleanup) cleanup();
  } catch (error) {
    if (shown !== drawn) return;
    if (error.status === 401) {
      location.hash = `#/login?then=${encodeURIComponent(location.hash || "#/")}`;
      return;
    }
    fill(slot, el("h1", {}, "Sorry"), el("p", { class: "message error", role: "alert", testid: "page-error" }, error.words || String(error)));
  }
}

function header() {
  document.getElementById("cart-count").textContent = String(cart.count());
  const who = session.current();
  fill(
    document.getElementById("account"),
    who
      ? [(who.roles || []).includes("admin") ? el("a", { href: "#/admin", testid: "nav-admin" }, "Admin") : null, el("span", { class: "muted", testid: "account-email" }, who.email), " ", el("button", { type: "button", class: "link", testid: "logout", onclick: () => session.logout().then(() => (location.hash = "#/")) }, "Log out")]
      : [el("a", { href: "#/login", testid: "nav-login" }, "Log in"), " ", el("a", { href: "#/signup", testid: "nav-signup" }, "Sign up")],
  );
}

cart.onChange(header);
session.onChange(header);
window.addEventListener("hashchange", show);

async function start() {
  header();
  await Promise.all([load(), session.resume()]);
  await show();
  // A checkout this tab sent without an answer (a reload, a lost answer): send it again, same key.
  if (pending() && session.loggedIn()) {
    notify("Finishing your checkout…", "info");
    try {
      const placed = await checkout();
      location.hash = `#/orders/${placed.id}`;
    } catch (error) {
      notify(`Your checkout did not go through: ${error.words || error}`);
    }
  }
}

start();
