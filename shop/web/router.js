// Hash routes (`#/cart`, `#/orders/{id}`): the gateway serves one page at `/`, so a reload or a
// shared link of any view works without a server-side catch-all, and every other path keeps the
// API's 404 envelope.

const routes = [];

/** route("/orders/:id", module): the module's render(view, {params, query}) draws the view. */
export function route(pattern, page) {
  const names = [];
  const source = pattern.replace(/:([a-z]+)/g, (_, name) => {
    names.push(name);
    return "([^/?]+)";
  });
  routes.push({ regex: new RegExp(`^${source}$`), names, page });
}

export function match(hash) {
  const [path, search = ""] = (hash.replace(/^#/, "") || "/").split("?");
  for (const { regex, names, page } of routes) {
    const found = regex.exec(path);
    if (found) {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
      return { page, params, query: new URLSearchParams(search) };
    }
  }
  return null;
}

/** Shows another view; `then`: where a login or sign-up goes on to. */
export function go(hash, { then } = {}) {
  location.hash = then ? `${hash}?then=${encodeURIComponent(then)}` : hash;
}

/** Where to go after logging in: only a view of this page, never another site. */
export function next(query, fallback = "#/") {
  const then = query.get("then");
  return then && /^#\/[A-Za-z0-9/_?=&%.-]*$/.test(then) ? then : fallback;
}
