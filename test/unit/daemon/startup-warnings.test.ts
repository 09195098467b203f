/** gorb serve's start-up warnings, by rule: an open API, a token in clear, an etcd password in clear. */
import { describe, expect, test } from "bun:test";
import { parseCidrList } from "../../../src/config/cidr.ts";
import type { SharedStoreOptions } from "../../../src/config/daemon-options.ts";
import { startupWarnings } from "../../../src/daemon/startup-warnings.ts";

const store = (endpoints: string[], user: string | null): SharedStoreOptions => ({
  endpoints,
  prefix: "/gorb",
  caFile: null,
  certFile: null,
  keyFile: null,
  user,
  passwordFile: user === null ? null : "/etc/gorb/etcd-password",
});
const base = { token: null, tls: null, listen: { host: "127.0.0.1", port: 4672 }, allow: [], sharedStore: null };
const tls = { certFile: "/etc/gorb/cert.pem", keyFile: "/etc/gorb/key.pem" };

describe("startupWarnings", () => {
  test.each([
    ["the defaults (loopback, no token)", {}, []],
    ["every address, no token", { listen: { host: null, port: 4672 } }, ["the API listens on every address without a token: anyone"]],
    ["an address with --allow, no token", { listen: { host: "10.0.0.1", port: 80 }, allow: parseCidrList("10.0.0.0/8") }, ["the API listens on 10.0.0.1 without a token: any host in 10.0.0.0/8"]],
    ["::1 with no token", { listen: { host: "::1", port: 4672 } }, []],
    ["LOCALHOST (a host name, any case) with no token", { listen: { host: "LOCALHOST", port: 4672 } }, []],
    ["a token over plain HTTP on every address", { token: "t", listen: { host: null, port: 4672 } }, ["the API token crosses the network in clear text"]],
    ["a token over HTTPS on every address", { token: "t", tls, listen: { host: null, port: 4672 } }, []],
    ["a token over plain HTTP on loopback", { token: "t" }, []],
    ["etcd:// to another host with a password", { sharedStore: store(["http://10.0.0.5:2379", "http://127.0.0.1:2379"], "gorb") }, ["the etcd password of --etcd-user crosses the network in clear text to http://10.0.0.5:2379: use etcds://"]],
    ["etcd:// to [::1] with a password", { sharedStore: store(["http://[::1]:2379"], "gorb") }, []],
    ["etcds:// with a password", { sharedStore: store(["https://10.0.0.5:2379"], "gorb") }, []],
    ["etcd:// to another host without a password", { sharedStore: store(["http://10.0.0.5:2379"], null) }, []],
  ] as const)("%s", (_name, over, starts) => {
    const warnings = startupWarnings({ ...base, ...over } as Parameters<typeof startupWarnings>[0]);
    expect(warnings.length).toBe(starts.length);
    starts.forEach((start, i) => expect(warnings[i]).toStartWith(start));
  });
});
