/** Browser origins ("https://ops.example.com"): parsed and normalised. Pure; imports nothing. */

/** normalizeOrigin returns "scheme://host[:port]" for an http(s) origin, or null when `text` is not one. */
export function normalizeOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "" || url.username !== "") return null;
  return url.origin;
}
