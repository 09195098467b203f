#!/usr/bin/env bun
/**
 * The gorb executable: run the command line and exit with its code (see src/cli/errors.ts for the codes).
 * No top-level await, so the executable can be compiled with --bytecode.
 */
import { runCli } from "./cli/run.ts";
import { dropProxyEnvironment } from "./proxy-environment.ts";

// Before any request: gorb's own HTTP (the CLI to gorb, the daemon to etcd and Consul) never goes through a proxy.
dropProxyEnvironment();
void runCli(process.argv.slice(2), { handleSigint: true }).then((code) => {
  process.exitCode = code;
});
