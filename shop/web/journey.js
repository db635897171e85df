// An order's journey, for an admin: `#/admin/orders/{id}`. The order's trace as the stack's trace
// store holds it (GET /api/v1/admin/orders/{id}/journey), drawn as a waterfall: a row per span with
// its service, name, start and duration, and a bar placed on the trace's time line; next to it the
// events the order caused. Bars are placed through the CSSOM (element.style), which the page's
// Content-Security-Policy allows, never through a style attribute. Spans reach the store a moment
// after the work (each process sends them in batches), so the view asks again for a while.

import { admitted } from "./admin.js";
import { el, fill, when } from "./dom.js";
import * as session from "./session.js";

const TRACE_WORDS = {
  recorded: "Recorded: every span the trace store holds for this order.",
  not_traced: "No trace:",
  not_recorded: "Not recorded:",
  unavailable: "Unavailable:",
};
const ASK_EVERY_MS = 2500;
const ASK_AT_MOST = 12;

export async function render(view, { params }) {
  if (!admitted(view, `#/admin/orders/${params.id}`)) return;
  const path = `/api/v1/admin/orders/${encodeURIComponent(params.id)}/journey`;
  let journey = (await session.authed("GET", path)).data;
  let alive = true;

  const state = el("p", { testid: "trace-state" });
  const reason = el("p", { class: "message info", testid: "trace-reason", hidden: true });
  const services = el("ul", { class: "services", testid: "trace-services" });
  const waterfall = el("div", { class: "waterfall hide-clients", testid: "trace-waterfall" });
  const events = el("ol", { class: "events", testid: "order-events" });
  const clients = el("input", { type: "checkbox", id: "trace-show-clients", testid: "trace-show-clients" });
  clients.addEventListener("change", () => waterfall.classList.toggle("hide-clients", !clients.checked));
  const refresh = el("button", { type: "button", testid: "trace-refresh", onclick: () => ask().catch(() => {}) }, "Ask again");

  function show() {
    state.textContent = `Trace ${journey.trace_id || "—"} · ${TRACE_WORDS[journey.trace] || journey.trace}`;
    reason.hidden = !journey.reason;
    reason.textContent = journey.reason || "";
    const counts = new Map();
    for (const span of journey.spans) counts.set(span.service, (counts.get(span.service) || 0) + 1);
    fill(services, [...counts].map(([service, n]) => el("li", { class: `service ${serviceClass(service)}`, testid: "trace-service" }, `${service} (${n})`)));
    fill(waterfall, rows(journey.spans));
    const placed = Date.parse(journey.placed_at);
    fill(
      events,
      journey.events.length
        ? journey.events.map((event) =>
            el(
              "li",
              { testid: "order-event" },
              el("strong", {}, event.topic),
              // max: the order's time is the worker's clock, the outbox row's the database's.
              ` · ${event.database} · written ${offset(Math.max(0, Date.parse(event.created_at) - placed))} after placement`,
              event.published_at ? `, on Kafka ${offset(Date.parse(event.published_at) - Date.parse(event.created_at))} later` : ", not sent yet",
            ),
          )
        : [el("li", { class: "muted" }, "No events in the outboxes (sent rows are deleted after SHOP_OUTBOX_RETENTION).")],
    );
  }

  async function ask() {
    const fresh = (await session.authed("GET", path)).data;
    if (!alive) return;
    journey = fresh;
    show();
  }

  fill(
    view,
    el("p", {}, el("a", { href: "#/admin" }, "← Admin")),
    el("h1", {}, "Journey of order ", el("code", { testid: "journey-order" }, journey.order_id)),
    el("p", { class: "muted" }, `Placed ${when(journey.placed_at)}.`),
    state,
    reason,
    el("p", { class: "row" }, clients, el("label", { for: "trace-show-clients" }, "Show database and Redis calls"), refresh),
    services,
    el(
      "div",
      { class: "columns journey" },
      el("section", {}, el("h2", {}, "Trace"), el("div", { class: "waterfall-head" }, el("span", {}, "service"), el("span", {}, "span"), el("span", {}, "start"), el("span", {}, "duration"), el("span", {}, "")), waterfall),
      el("section", {}, el("h2", {}, "Domain events"), events),
    ),
  );
  show();

  (async () => {
    // Until the spans stop coming (the same count twice), or for half a minute.
    let last = -1;
    let same = 0;
    for (let i = 0; i < ASK_AT_MOST && alive && same < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, ASK_EVERY_MS));
      if (!alive) break;
      await ask().catch(() => {});
      same = journey.spans.length === last && last > 0 ? same + 1 : 0;
      last = journey.spans.length;
    }
  })();
  return () => {
    alive = false;
  };
}

function rows(spans) {
  if (!spans.length) return [el("p", { class: "muted" }, "No spans to draw.")];
  const end = Math.max(...spans.map((s) => s.start_us + s.duration_us), 1);
  return spans.map((span) => {
    const name = el("span", { class: "span-name", testid: "span-name", title: span.name }, span.name);
    name.style.paddingLeft = `${Math.min(span.depth, 16) * 0.8}rem`;
    const bar = el("span", { class: `span-bar ${serviceClass(span.service)}`, title: `${span.service}: ${span.name}, ${offset(span.duration_us / 1000)}` });
    bar.style.left = `${(100 * span.start_us) / end}%`;
    bar.style.width = `${Math.max((100 * span.duration_us) / end, 0.3)}%`;
    return el(
      "div",
      { class: `span kind-${span.kind}${span.status === "error" ? " failed" : ""}`, testid: "trace-span", "data-service": span.service, "data-kind": span.kind },
      el("span", { class: "span-service", testid: "span-service" }, span.service),
      name,
      el("span", { class: "num", testid: "span-start" }, offset(span.start_us / 1000)),
      el("span", { class: "num", testid: "span-duration" }, offset(span.duration_us / 1000)),
      el("span", { class: "track" }, bar),
    );
  });
}

/** "12.7 ms", "1.52 s" for a number of milliseconds. */
function offset(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** A colour class per known service (the rest share one). */
function serviceClass(service) {
  const known = ["gateway", "workers", "relay", "streams"];
  const found = known.find((name) => service.endsWith(name));
  return found ? `svc-${found}` : "svc-other";
}
