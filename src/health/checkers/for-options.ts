/** The default checker factory: picks the checker for a pulse type. The monitor takes it as an injectable. */
import type { Checker } from "../checker.ts";
import type { PulseOptions } from "../options.ts";
import { httpChecker } from "./http.ts";
import { noneChecker } from "./none.ts";
import { tcpChecker } from "./tcp.ts";
import { udpChecker } from "./udp.ts";

/** CheckerFactory makes the checker for one target's options. */
export type CheckerFactory = (options: PulseOptions) => Checker;

/** checkerFor is the CheckerFactory for real probes. */
export const checkerFor: CheckerFactory = (options) => {
  switch (options.type) {
    case "tcp":
      return tcpChecker();
    case "http":
    case "https":
      return httpChecker(options.http);
    case "udp":
      return udpChecker(options.udp);
    case "none":
      return noneChecker();
  }
};
