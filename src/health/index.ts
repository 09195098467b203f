/** The health-check engine ("pulse"): options, checkers, the monitor and the weight policy. Re-exports only. */
export type { CheckResult, Checker } from "./checker.ts";
export { checkerFor, type CheckerFactory } from "./checkers/for-options.ts";
export { httpChecker } from "./checkers/http.ts";
export { noneChecker } from "./checkers/none.ts";
export { tcpChecker } from "./checkers/tcp.ts";
export { udpChecker } from "./checkers/udp.ts";
export { type MonitorClock, systemClock } from "./clock.ts";
export { type Duration, formatDuration, parseDuration } from "./duration.ts";
export { PulseOptionsError } from "./errors.ts";
export { type ExpectSpec, type StatusRange, formatExpect, matchesExpect, parseExpect } from "./expect.ts";
export { HealthWindow, WINDOW_SIZE } from "./health-window.ts";
export {
  HealthMonitor,
  type HealthSnapshot,
  type HealthStatus,
  type HealthUpdate,
  type MonitorOptions,
  type MonitorStats,
} from "./monitor.ts";
export {
  type HttpProbe,
  type ProbeTarget,
  type PulseOptions,
  type PulseType,
  type PulseWire,
  type RenderedPulseWire,
  type UdpProbe,
  parsePulseOptions,
  probeTarget,
  renderPulseWire,
} from "./options.ts";
export { DEFAULT_WEIGHT_POLICY, type WeightInput, type WeightPolicy, type WeightState, initialWeightState, nextWeight } from "./weight.ts";
