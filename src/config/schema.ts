/**
 * The configuration document: every `gorb serve` option under its flag's name in snake_case, and optionally
 * the declarative `services` with their `backends`, whose fields are the REST API's:
 *
 *   listen: "127.0.0.1:4672"        interface: eth0          flush: false
 *   consul: http://127.0.0.1:8500   vip_interface: lo        token: secret
 *   body_limit: 64k                 state: true              state_dir: /var/lib/gorb
 *   reconcile_interval: 30s         token_file: /etc/gorb/token   allow: [10.0.0.0/8]
 *   allow_origin: https://ops.example.com   max_connections: 256
 *   tls_cert: /etc/gorb/cert.pem    tls_key: /etc/gorb/key.pem
 *   consul_token_file: /etc/gorb/consul-token   unknown_destinations: report
 *   max_services: 1000              max_backends: 20000   ui: true
 *   bgp_bird_socket: /run/bird/bird.ctl   bgp_include: /run/gorb/bird-vips.conf
 *   bgp_protocol: gorb_vips         bgp_hold_down: 3s        bgp_keep_on_exit: false
 *   services:
 *     web:                          # the service id, as in PUT /service/web
 *       host: 10.0.0.1              # PUT /service/web's body
 *       port: 80
 *       backends:
 *         b1: { host: 10.1.0.1, port: 8080, pulse: { type: http, interval: 5s } }
 *
 * An unknown key is refused (a typo would otherwise go unnoticed). Every value is checked without I/O: the
 * settings by ./settings.ts, the services by ./services.ts. An error is a PathError naming the path.
 */
import type { DeclaredService } from "../core/plan.ts";
import type { DaemonFlags } from "./daemon-options.ts";
import { readServices } from "./services.ts";
import { readDocument } from "./settings.ts";

/** What a configuration document holds. */
export interface ConfigDocument {
  /** The server settings, as the flags they stand for (checked; flags given on the command line win). */
  readonly flags: DaemonFlags;
  /** The declared services; null when the document has no `services` key. */
  readonly services: readonly DeclaredService[] | null;
}

/** Check a parsed configuration document (null = an empty file). Throws PathError naming the path. */
export function readConfigDocument(doc: unknown): ConfigDocument {
  return readDocument(doc, readServices);
}
