/**
 * The UI's action registry: every REST route the web UI calls, and the only way it calls one (./api.ts takes an
 * action's name). test/unit/ui/actions.test.ts compares it with the routes of the API app (Elysia's `.routes`),
 * so the UI offers every action of the API and nothing the API lacks.
 */

/** One route of the REST API, as the UI knows it. */
export interface Action {
  readonly method: "GET" | "PUT" | "PATCH" | "DELETE" | "POST";
  /** Elysia's path pattern: ":service" and ":backend" are filled in from the call's params. */
  readonly path: string;
  /** What the UI does with it. */
  readonly use: string;
}

export const ACTIONS = {
  listServices: { method: "GET", path: "/service", use: "the services table (?detail=true), read at start, on resync and every few seconds for rates" },
  createService: { method: "PUT", path: "/service/:service", use: "the New service form" },
  updateService: { method: "PATCH", path: "/service/:service", use: "the Edit service form" },
  deleteService: { method: "DELETE", path: "/service/:service", use: "a service's Delete button" },
  getService: { method: "GET", path: "/service/:service", use: "a service's details after a service event" },
  createBackend: { method: "PUT", path: "/service/:service/:backend", use: "the Add backend form" },
  updateBackend: { method: "PATCH", path: "/service/:service/:backend", use: "the Edit backend form, Weight 0 and Restore, the maintenance checkbox" },
  deleteBackend: { method: "DELETE", path: "/service/:service/:backend", use: "a backend's Delete button" },
  getBackend: { method: "GET", path: "/service/:service/:backend", use: "a backend's details after a backend event" },
  apply: { method: "POST", path: "/apply", use: "the Apply panel: ?dry_run=true shows the plan, then apply" },
  reconcile: { method: "POST", path: "/reconcile", use: "the Reconcile button" },
  events: { method: "GET", path: "/events", use: "the live stream (fetch-based Server-Sent Events)" },
  metrics: { method: "GET", path: "/metrics", use: "the Metrics panel (Prometheus text, as scraped)" },
  openapi: { method: "GET", path: "/openapi.json", use: "the forms' fields, types, ranges and choices" },
  cluster: { method: "GET", path: "/cluster", use: "the Fleet panel: every node, converged or not, backends up on one node and down on another" },
  clusterRevision: { method: "GET", path: "/cluster/revision", use: "the Fleet panel: the etcd revision this node has applied" },
  bgp: { method: "GET", path: "/bgp", use: "the BGP panel: per VIP wanted, confirmed by BIRD, the last error (404: BGP off)" },
  drainBackend: { method: "POST", path: "/service/:service/:backend/drain", use: "a backend's Drain… button (deadline, then remove or keep)" },
  undrainBackend: { method: "DELETE", path: "/service/:service/:backend/drain", use: "a draining backend's Undrain button" },
} as const satisfies Record<string, Action>;

export type ActionName = keyof typeof ACTIONS;

/** The path of an action with its params filled in (percent-encoded). */
export function actionPath(name: ActionName, params: Readonly<Record<string, string>> = {}): string {
  return ACTIONS[name].path.replace(/:(\w+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`${name}: missing path parameter ${key}`);
    return encodeURIComponent(value);
  });
}
