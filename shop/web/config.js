// What the gateway tells the page (`GET /storefront.json`): Mailpit's page in development, and the
// payment reminders' delays after placement.

let loaded = { mailpit_url: null, reminders_s: [] };

export async function load() {
  try {
    const response = await fetch("/storefront.json", { cache: "no-store" });
    if (response.ok) loaded = await response.json();
  } catch {
    // The pages work without it: no Mailpit link, no reminder times.
  }
}

export function config() {
  return loaded;
}
