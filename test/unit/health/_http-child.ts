/**
 * Child of raw-probe.test.ts: an HTTP server on 127.0.0.1 (a random port, printed on stdout) answering every
 * request with 200. A child so the test can stop it (SIGSTOP) while its accept queue fills up.
 */
const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
console.log(server.port);
