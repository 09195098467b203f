/**
 * SIGHUP: the configuration file read again and checked as `gorb serve` checks it at start (its syntax and
 * values, and, when it holds `token:` or `consul_token:`, that no other user may read it), then its services
 * handed to the daemon to apply. A file start-up would refuse is refused whole, with why, and nothing changes.
 */
import { ConfigError, loadConfigFile } from "../config/load.ts";
import type { DaemonFlags } from "../config/daemon-options.ts";
import { changedSettings } from "../config/settings.ts";
import type { DeclaredService } from "../core/plan.ts";
import type { Logger } from "../log.ts";
import { SecretFileError, checkPrivateFile, checkPrivateStat } from "./secrets.ts";

/**
 * Re-read the configuration file `path` and apply its services with `apply` (the file's name for its log lines).
 * `started`: the file's settings gorb runs with; those the file now gives otherwise are named in a warning, since
 * they take effect only at the next start.
 */
export async function reloadConfig(
  path: string,
  log: Logger,
  apply: (services: readonly DeclaredService[], file: string) => Promise<void>,
  started: DaemonFlags | null = null,
): Promise<void> {
  let file;
  try {
    file = await loadConfigFile(path);
    if (file.flags.token !== undefined || file.flags.consulToken !== undefined) {
      // As at start: the descriptor read is checked, not the path again.
      if (file.stat !== undefined) checkPrivateStat("config", file.file, file.stat);
      else checkPrivateFile("config", file.file, null);
    }
  } catch (error) {
    const why = error instanceof ConfigError || error instanceof SecretFileError ? error.message : String(error);
    log.error(`SIGHUP: ${why}; the file is refused whole and nothing changed`);
    return;
  }
  const changed = started === null ? [] : changedSettings(started, file.flags);
  if (changed.length === 0) log.info(`SIGHUP: re-read ${file.file}; settings other than services take effect at the next start`);
  else {
    log.warn(
      `SIGHUP: re-read ${file.file}; ${changed.join(", ")} changed since gorb started: ${changed.length === 1 ? "it takes" : "they take"} ` +
        "effect at the next start (systemctl restart gorb); only services are applied now",
    );
  }
  if (file.services === null) {
    log.info("SIGHUP: the file declares no services (no `services` key); gorb's services are left as they are");
    return;
  }
  await apply(file.services, file.file);
}
