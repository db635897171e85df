// Sign-up: `#/signup`. Register, then the 6-digit code from the email (in development, read in
// Mailpit: its page is linked when the gateway was told where it is), then logged in.

import { request } from "./api.js";
import { config } from "./config.js";
import { credentialsForm, el, fill, messageLine, onSubmit, say } from "./dom.js";
import { next } from "./router.js";
import * as session from "./session.js";

export async function render(view, { query }) {
  const message = messageLine("signup-message");
  const { form, email, password } = credentialsForm("signup", {
    passwordLabel: "Password (10 to 128 characters)",
    password: { minlength: 10, maxlength: 128, autocomplete: "new-password" },
    submitLabel: "Sign up",
    message,
  });
  onSubmit(form, message, async () => {
    await request("POST", "/api/v1/auth/register", { body: { email: email.value, password: password.value } });
    fill(view, el("h1", {}, "Check your email"), verifyForm(email.value, password.value, next(query)));
  });
  fill(
    view,
    el("h1", {}, "Sign up"),
    form,
    el("p", { class: "muted" }, "Already have an account? ", el("a", { href: "#/login" }, "Log in.")),
  );
}

/** The code form; `password` (kept in this closure only) logs the new customer in once verified. */
export function verifyForm(address, password, then) {
  const code = el("input", { type: "text", id: "verify-code", testid: "verify-code", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: 6, autocomplete: "one-time-code", required: true });
  const message = messageLine("verify-message");
  const resend = el("button", { type: "button" }, "Send a new code");
  const form = el(
    "form",
    { class: "form", novalidate: true },
    el("p", {}, "We emailed a 6-digit code to ", el("strong", {}, address), ". It works for 10 minutes."),
    /^https?:\/\//.test(config().mailpit_url || "")
      ? el("p", { class: "dev" }, "Development: read it in ", el("a", { href: config().mailpit_url, target: "_blank", rel: "noopener noreferrer", testid: "mailpit-link" }, "Mailpit"), ".")
      : null,
    el("label", { for: "verify-code" }, "Code"),
    code,
    el("button", { type: "submit", class: "primary", testid: "verify-submit" }, "Verify"),
    resend,
    message,
  );
  resend.addEventListener("click", async () => {
    try {
      await request("POST", "/api/v1/auth/resend", { body: { email: address } });
      say(message, "A new code is on its way; the old one no longer works.", "info");
    } catch (error) {
      say(message, error.words);
    }
  });
  onSubmit(form, message, async () => {
    await request("POST", "/api/v1/auth/verify", { body: { email: address, code: code.value.trim(), password } });
    await session.login(address, password);
    location.hash = then;
  });
  return form;
}
