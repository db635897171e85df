// Who is logged in. The access token lives in this module's memory only: no storage a script of
// another page could read, and gone with the tab. The refresh token is kept in sessionStorage (never
// localStorage): it survives a reload of this tab, so a reload mid-checkout can still retry the
// checkout as the same customer, and it dies with the tab and is not shared with other tabs. The
// access token is refreshed before it runs out (at 3/4 of its life, at most a minute before).

import { ApiError, request } from "./api.js";

const REFRESH_KEY = "shop.refresh_token";
let access = null; // {token, expiresAt}
let account = null; // GET /api/v1/auth/me
let timer = null;
let refreshing = null; // one refresh at a time: a refresh token works once, a second use revokes them all
const listeners = new Set();

export function onChange(listener) {
  listeners.add(listener);
}

function changed() {
  for (const listener of listeners) listener(account);
}

export function current() {
  return account;
}

export function loggedIn() {
  return access !== null;
}

async function adopt(tokens) {
  access = { token: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  clearTimeout(timer);
  const lead = Math.min(tokens.expires_in / 4, 60);
  timer = setTimeout(() => refresh().catch(() => {}), Math.max(1, tokens.expires_in - lead) * 1000);
}

export async function login(email, password) {
  const { data } = await request("POST", "/api/v1/auth/login", { body: { email, password } });
  await adopt(data);
  account = (await request("GET", "/api/v1/auth/me", { token: access.token })).data;
  changed();
}

/** A new token pair from the refresh token; a refused one ends the session. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY);
      if (!token) throw new ApiError(401, "unauthorized", "not logged in", null, null);
      try {
        const { data } = await request("POST", "/api/v1/auth/refresh", { body: { refresh_token: token } });
        await adopt(data);
      } catch (error) {
        if (error.status === 401) forget();
        throw error;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** At page load: the session of this tab, if it has one. */
export async function resume() {
  if (!sessionStorage.getItem(REFRESH_KEY)) return;
  try {
    await refresh();
    account = (await request("GET", "/api/v1/auth/me", { token: access.token })).data;
  } catch {
    // Logged out (or the shop is away): the pages ask to log in when they need it.
  }
  changed();
}

export async function logout() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (token) await request("POST", "/api/v1/auth/logout", { body: { refresh_token: token } }).catch(() => {});
}

function forget() {
  access = null;
  account = null;
  clearTimeout(timer);
  sessionStorage.removeItem(REFRESH_KEY);
  changed();
}

/** A request as the logged-in customer: refreshed first when the token is (nearly) out, and once
 * more if the API says it expired. */
export async function authed(method, path, options = {}) {
  if (!access) throw new ApiError(401, "unauthorized", "not logged in", null, null);
  if (access.expiresAt - Date.now() < 5000) await refresh();
  try {
    return await request(method, path, { ...options, token: access.token });
  } catch (error) {
    if (error.status !== 401 || !sessionStorage.getItem(REFRESH_KEY)) throw error;
    await refresh();
    return request(method, path, { ...options, token: access.token });
  }
}
