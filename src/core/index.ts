/** gorb's core: desired state, reconciliation with IPVS, health-driven weights. Re-exports only. */
export {
  ConflictError,
  GorbError,
  KernelError,
  NotFoundError,
  StateError,
  ValidationError,
  fromIpvsError,
  type GorbErrorCode,
} from "./errors.ts";
export {
  Gorb,
  type AdoptReport,
  type GorbOptions,
  type ReconcileCounters,
  type ReconcileReport,
  type RepairReport,
  type RestoreReport,
} from "./gorb.ts";
export type { ApplyReport, ChangeReport } from "./apply.ts";
export type { DeclaredBackend, DeclaredService } from "./plan.ts";
export type { SavedState, Source, StateChanges, StateStore } from "./state.ts";
export type { BackendHealth, HealthChecks, HealthChecksFactory, HealthView } from "./health.ts";
export { silentLogger, type Logger } from "./logger.ts";
export { MemoryVipManager } from "./memory-vip.ts";
export { dnsResolver, type HostResolver, type ResolvedAddress } from "./resolve.ts";
export type { BackendInfo, ServiceDetail, ServiceInfo } from "./views.ts";
export { NoVipManager, type VipManager } from "./vip.ts";
