// The cart, kept in the browser (localStorage: it holds product ids, quantities and what the page
// last saw of each product; never a token). Prices are the shop's at checkout, not these.

const KEY = "shop.cart";
const listeners = new Set();

export function onChange(listener) {
  listeners.add(listener);
}

/** [{product_id, quantity, name, price_cents, currency}] */
export function lines() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(stored) ? stored.filter((l) => l && typeof l.product_id === "string") : [];
  } catch {
    return [];
  }
}

function save(next) {
  localStorage.setItem(KEY, JSON.stringify(next));
  for (const listener of listeners) listener(next);
}

export function count() {
  return lines().reduce((sum, line) => sum + line.quantity, 0);
}

export function add(product, quantity = 1) {
  const next = lines();
  const line = next.find((l) => l.product_id === product.id);
  const seen = { name: product.name, price_cents: product.price_cents, currency: product.currency };
  if (line) Object.assign(line, seen, { quantity: Math.min(1000, line.quantity + quantity) });
  else next.push({ product_id: product.id, quantity, ...seen });
  save(next);
}

export function setQuantity(productId, quantity) {
  save(
    lines()
      .map((l) => (l.product_id === productId ? { ...l, quantity: Math.min(1000, quantity) } : l))
      .filter((l) => l.quantity > 0),
  );
}

export function clear() {
  save([]);
}

// Another tab changed the cart.
window.addEventListener("storage", (event) => {
  if (event.key === KEY) for (const listener of listeners) listener(lines());
});
