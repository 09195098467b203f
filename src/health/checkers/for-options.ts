/** The default checker factory: picks the checker for a pulse type. The monitor takes it as an injectable. */
import type { Checker } from "../checker.ts";
import type { PulseOptions } from "../options.ts";
import { dnsChecker } from "./dns.ts";
import { DEFAULT_EXEC_DIRS, execChecker } from "./exec.ts";
import { httpChecker } from "./http.ts";
import { noneChecker } from "./none.ts";
import { tcpChecker } from "./tcp.ts";
import { tlsChecker } from "./tls.ts";
import { udpChecker } from "./udp.ts";

/** CheckerFactory makes the checker for one target's options. */
export type CheckerFactory = (options: PulseOptions) => Checker;

/** What real checkers need beyond the options: where exec checks may run programs from. */
export interface CheckerSettings {
  readonly execDirs?: readonly string[];
}

/** checkersWith builds the real-probe factory with these settings. */
export function checkersWith(settings: CheckerSettings): CheckerFactory {
  const execDirs = settings.execDirs ?? DEFAULT_EXEC_DIRS;
  return (options) => {
    switch (options.type) {
      case "tcp":
        return tcpChecker();
      case "http":
      case "https":
        return httpChecker(options.http);
      case "udp":
        return udpChecker(options.udp);
      case "tls":
        return tlsChecker(options.tls);
      case "dns":
        return dnsChecker(options.dns);
      case "exec":
        return execChecker(options.exec, options.timeoutMs, execDirs);
      case "none":
        return noneChecker();
    }
  };
}

/** checkerFor is the CheckerFactory for real probes, with default settings. */
export const checkerFor: CheckerFactory = checkersWith({});
