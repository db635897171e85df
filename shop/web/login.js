// Login: `#/login` (with `?then=#/cart` to go back where the person was).

import { el, fill, messageLine, say } from "./dom.js";
import { next } from "./router.js";
import * as session from "./session.js";
import { verifyForm } from "./signup.js";

export async function render(view, { query }) {
  const email = el("input", { type: "email", id: "login-email", testid: "login-email", required: true, autocomplete: "username" });
  const password = el("input", { type: "password", id: "login-password", testid: "login-password", required: true, autocomplete: "current-password" });
  const message = messageLine("login-message");
  const form = el(
    "form",
    { class: "form", novalidate: true },
    el("label", { for: "login-email" }, "Email"),
    email,
    el("label", { for: "login-password" }, "Password"),
    password,
    el("button", { type: "submit", class: "primary", testid: "login-submit" }, "Log in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button");
    submit.disabled = true;
    say(message, "");
    try {
      await session.login(email.value, password.value);
      location.hash = next(query);
    } catch (error) {
      if (error.code === "email_not_verified") {
        fill(view, el("h1", {}, "Verify your email"), verifyForm(email.value.trim(), password.value, next(query)));
        return;
      }
      say(message, error.words);
      submit.disabled = false;
    }
  });
  fill(
    view,
    el("h1", {}, "Log in"),
    form,
    el("p", { class: "muted" }, "New here? ", el("a", { href: `#/signup?then=${encodeURIComponent(next(query))}` }, "Sign up.")),
  );
}
