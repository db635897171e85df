// Login: `#/login` (with `?then=#/cart` to go back where the person was).

import { credentialsForm, el, fill, messageLine, onSubmit } from "./dom.js";
import { next } from "./router.js";
import * as session from "./session.js";
import { verifyForm } from "./signup.js";

export async function render(view, { query }) {
  const message = messageLine("login-message");
  const { form, email, password } = credentialsForm("login", {
    passwordLabel: "Password",
    password: { autocomplete: "current-password" },
    submitLabel: "Log in",
    message,
  });
  onSubmit(form, message, async () => {
    try {
      await session.login(email.value, password.value);
    } catch (error) {
      if (error.code !== "email_not_verified") throw error;
      fill(view, el("h1", {}, "Verify your email"), verifyForm(email.value.trim(), password.value, next(query)));
      return;
    }
    location.hash = next(query);
  });
  fill(
    view,
    el("h1", {}, "Log in"),
    form,
    el("p", { class: "muted" }, "New here? ", el("a", { href: `#/signup?then=${encodeURIComponent(next(query))}` }, "Sign up.")),
  );
}
