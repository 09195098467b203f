/**
 * What restore does with destinations the kernel serves in a gorb service and the saved state does not know
 * (added while the state could not be saved, or by hand): "report" logs them and leaves them serving (the
 * default), "adopt" takes them as API-owned backends with pulse none, "remove" deletes them. No imports, so
 * the command line can check the flag without loading the core.
 */
export const UNKNOWN_DESTINATION_MODES = ["report", "adopt", "remove"] as const;
export type UnknownDestinationMode = (typeof UNKNOWN_DESTINATION_MODES)[number];
