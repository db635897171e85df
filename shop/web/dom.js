// Building the page from data: every text goes in as a text node (textContent), never as markup, so
// a product named `<img src=x onerror=alert(1)>` shows exactly those characters.

/** el("button", {testid: "pay-submit", onclick: fn, class: "primary"}, "Pay", ...) */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "testid") node.dataset.testid = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `node` holds with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function money(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

export function when(iso) {
  return new Date(iso).toLocaleString();
}

/** "3 h 05 min 09 s" for a number of milliseconds (0 when past). */
export function duration(ms) {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h} h ${two(m)} min ${two(s)} s` : m ? `${m} min ${two(s)} s` : `${s} s`;
}

/** A message for the person at the top of the page (role=alert); empty hides it. */
export function notify(text, kind = "error") {
  const notice = document.getElementById("notice");
  notice.className = `notice ${kind}`;
  notice.textContent = text || "";
  notice.hidden = !text;
}

/** A form's own message line. */
export function messageLine(testid) {
  return el("p", { class: "message", role: "alert", testid, hidden: true });
}

export function say(line, text, kind = "error") {
  line.className = `message ${kind}`;
  line.textContent = text || "";
  line.hidden = !text;
}

/**
 * Runs `work` when `form` is submitted, with its submit button disabled meanwhile. An error `work`
 * throws is said in `message` (in words) and the button works again; on success the page moves on.
 */
export function onSubmit(form, message, work) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    say(message, "");
    try {
      await work();
    } catch (error) {
      say(message, error.words);
      submit.disabled = false;
    }
  });
}

/** An email and password form (`prefix`-email, `prefix`-password, `prefix`-submit), for sign-up and login. */
export function credentialsForm(prefix, { passwordLabel, password, submitLabel, message }) {
  const emailInput = el("input", { type: "email", id: `${prefix}-email`, testid: `${prefix}-email`, required: true, autocomplete: prefix === "login" ? "username" : "email" });
  const passwordInput = el("input", { type: "password", id: `${prefix}-password`, testid: `${prefix}-password`, required: true, ...password });
  const form = el(
    "form",
    { class: "form", novalidate: true },
    el("label", { for: `${prefix}-email` }, "Email"),
    emailInput,
    el("label", { for: `${prefix}-password` }, passwordLabel),
    passwordInput,
    el("button", { type: "submit", class: "primary", testid: `${prefix}-submit` }, submitLabel),
    message,
  );
  return { form, email: emailInput, password: passwordInput };
}
