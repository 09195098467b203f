/**
 * JSON responses as the original wrote them: indented with one tab per level, no trailing newline,
 * Content-Type application/json.
 */

/** A JSON response with tab indentation. */
export function jsonResponse(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value, null, "\t"), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** The success response of PUT, PATCH and DELETE: 200 with an empty body and no Content-Type (as the original). */
export function emptyOk(): Response {
  return new Response(null, { status: 200 });
}
