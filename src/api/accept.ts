/**
 * Content negotiation headers read by quality (RFC 9110, 12.4.2): `Accept` for GET /service's text table, and
 * `Accept-Encoding` for the web UI's gzipped files. A quality of 0 means "not acceptable".
 */

/** The items of a comma-separated header, each lower-cased, with its quality (1 when not given; 0 when unreadable). */
export function qualities(header: string | null): { readonly name: string; readonly q: number }[] {
  const items: { name: string; q: number }[] = [];
  for (const item of (header ?? "").split(",")) {
    const [name = "", ...params] = item.split(";").map((part) => part.trim().toLowerCase());
    if (name === "") continue;
    const param = params.find((p) => p.startsWith("q="));
    const q = param === undefined ? 1 : Number(param.slice(2));
    items.push({ name, q: Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0 });
  }
  return items;
}

/** The quality an Accept header gives `type` ("text/plain"): that of its most specific range (type, type/*, *\/*). */
function qualityOf(items: readonly { name: string; q: number }[], type: string): number {
  const range = `${type.slice(0, type.indexOf("/"))}/*`;
  let found: { rank: number; q: number } = { rank: 0, q: 0 };
  for (const { name, q } of items) {
    const rank = name === type ? 3 : name === range ? 2 : name === "*/*" ? 1 : 0;
    if (rank > found.rank) found = { rank, q };
  }
  return found.q;
}

/**
 * Whether an Accept header asks for text/plain over JSON: text/plain acceptable, and of a higher quality than
 * application/json. JSON is the default: no header, `*\/*`, a browser's list, and a tie all get JSON.
 */
export function prefersText(header: string | null): boolean {
  if (header === null) return false;
  const items = qualities(header);
  const text = qualityOf(items, "text/plain");
  return text > 0 && text > qualityOf(items, "application/json");
}
