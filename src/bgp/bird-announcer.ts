/**
 * The Announcer for BIRD 2: gorb owns one include file (./include-file.ts) and tells BIRD to re-read its
 * configuration over the control socket (./bird-control.ts).
 *
 * One sync, serialised (a change during a sync runs one more sync after it):
 *   1. render the wanted set; when the text differs from the file, write it atomically (the old text is kept);
 *      a file that cannot be written (full or read-only disk) stays as it was, and the prefixes it holds back
 *      (and the speaker's last error) show the error until a sync finds the file holding the wanted set, written
 *      then or needing no write any more;
 *   2. `configure check` (0020): BIRD parses its whole configuration with the new file but applies nothing.
 *      An error (8002 with file:line:col) puts the old file back, so a broken file never reaches BIRD, and
 *      is reported on the prefixes that changed; the next sync checks again even when the file did not change;
 *   3. `configure` (0003 Reconfigured; 0004/0005 in progress/queued are confirmed by the next check);
 *   4. `show route protocol <name>` and `<name>6`: the prefixes BIRD has as its best route (the ones its BGP
 *      sessions can export) are the confirmed ones; one that loses to another protocol's route shows why.
 *      One BIRD lacks although it took the file (protocol disabled with birdc, a loopback route it drops) says so.
 * Re-assertion: when the control socket closes (BIRD stopped or restarted) gorb reconnects every
 * `retryMs` and, once connected, configures and confirms again. BIRD itself re-reads the file when it starts,
 * so routes come back even before that. Every `checkMs` the confirmed set is read again.
 */
import { CoalescedRun } from "./coalesced-run.ts";
import type { Logger } from "../log.ts";
import type { MonitorClock } from "../health/clock.ts";
import type { Announcer, PrefixStatus, SpeakerStatus } from "./announcer.ts";
import { BirdControl, BirdReplyError, BIRD_CODES, routePrefixes } from "./bird-control.ts";
import { IncludeFile, IncludeFileError, protocolNames, renderInclude } from "./include-file.ts";
import { rmSync } from "node:fs";

export interface BirdAnnouncerOptions {
  /** BIRD's control socket (/run/bird/bird.ctl). */
  readonly socket: string;
  /** The include file gorb owns. */
  readonly include: string;
  /** Name of the IPv4 static protocol (the IPv6 one is this name + "6"). */
  readonly protocol: string;
  readonly clock: MonitorClock;
  readonly log: Logger;
  /** Wait between two connection attempts while BIRD is unreachable (default 1 s). */
  readonly retryMs?: number;
  /** Period of the confirmation read (default 10 s). */
  readonly checkMs?: number;
  /** How long BIRD may take to answer a command other than `configure check` and `configure` (default 10 s). */
  readonly replyTimeoutMs?: number;
  /** How long BIRD may take to read its configuration (`configure check`, `configure`; default 2 min). */
  readonly configureTimeoutMs?: number;
}

/** How long BIRD may take to answer a command other than a configure (see BirdAnnouncerOptions). */
const REPLY_TIMEOUT_MS = 10_000;
/**
 * How long BIRD may take to read its configuration: a large one (prefix sets of a full table) takes tens of seconds,
 * and a configure given up on is started over by the next sync, so one shorter than BIRD needs never completes.
 */
const CONFIGURE_TIMEOUT_MS = 120_000;

/** The prefixes of the `route ... blackhole;` lines of an include file's text. */
function routesIn(text: string | null): string[] {
  return [...(text ?? "").matchAll(/route (\S+) blackhole;/g)].map((m) => m[1] ?? "");
}

/** What went wrong, for a prefix or for the speaker as a whole: what kind of failure, and its text for status and logs. */
interface Problem {
  readonly kind: "refused" | "unreachable" | "unwritten" | "shadowed" | "not-loaded" | "absent";
  readonly text: string;
}

/** Text of an error for status and logs. */
function describe(error: unknown): string {
  if (error instanceof BirdReplyError) return `BIRD ${String(error.code).padStart(4, "0")} ${error.text}`;
  return error instanceof Error ? error.message : String(error);
}

/** See the module comment. */
export class BirdAnnouncer implements Announcer {
  readonly #options: BirdAnnouncerOptions;
  readonly #file: IncludeFile;
  readonly #wanted = new Set<string>();
  #confirmed = new Set<string>();
  /** The last error per prefix: BIRD refused the file that changed it, BIRD could not be reached, or the file could not be written. */
  readonly #errors = new Map<string, Problem>();
  /**
   * The routes of the include file BIRD took at its last `configure` answered 0003 (done) on this connection: BIRD
   * should have each of them. One it has not (its static protocol disabled with birdc, or a route BIRD drops, such as
   * to a loopback or link-local address) gets an error saying so instead of none.
   */
  #taken = new Set<string>();
  /** The static protocols BIRD lacked at the last confirmation ("" when none), to log a change once. */
  #notLoaded = "";
  #control: BirdControl | null = null;
  #version: string | null = null;
  /** The speaker's last error (SpeakerStatus.lastError is its text). */
  #lastError: Problem | null = null;
  /** BIRD must be told to configure even if the file did not change (after a reconnect, or a failed try). */
  #mustConfigure = true;
  /**
   * Set when BIRD refused a file and putting the previous one back failed (a full disk): the file on disk is one
   * BIRD refused, `previous` is what it held before. Put back at the next refusal; cleared once BIRD takes a file.
   */
  #restorePending: { readonly previous: string | null } | null = null;
  #timer: unknown = null;
  #closed = false;
  #started = false;

  readonly #syncs = new CoalescedRun(() => this.#syncOnce(), () => this.#closed, () => this.#schedule());

  constructor(options: BirdAnnouncerOptions) {
    this.#options = options;
    this.#file = new IncludeFile(options.include);
  }

  inherited(): readonly string[] {
    try {
      return routesIn(this.#file.read());
    } catch (error) {
      if (!(error instanceof IncludeFileError)) throw error;
      this.#options.log.warn(`cannot read what the previous run announced: ${error.message}`);
      return [];
    }
  }

  start(): void {
    this.#started = true;
    void this.#sync();
  }

  announce(prefixes: readonly string[]): Promise<void> {
    for (const prefix of prefixes) this.#wanted.add(prefix);
    return this.#sync();
  }

  withdraw(prefixes: readonly string[]): Promise<void> {
    for (const prefix of prefixes) this.#wanted.delete(prefix);
    return this.#sync();
  }

  status(): readonly PrefixStatus[] {
    const all = new Set([...this.#wanted, ...this.#confirmed]);
    return [...all].sort().map((prefix) => ({
      prefix,
      wanted: this.#wanted.has(prefix),
      confirmed: this.#confirmed.has(prefix),
      error: this.#errors.get(prefix)?.text ?? null,
    }));
  }

  speaker(): SpeakerStatus {
    return { kind: "bird", reachable: this.#control?.open === true, version: this.#version, lastError: this.#lastError?.text ?? null };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) this.#options.clock.clearTimer(this.#timer);
    this.#timer = null;
    await this.#syncs.idle();
    this.#control?.close();
    this.#control = null;
  }

  /** Runs a sync now, or once more after the one running; resolves when the set given so far was handled. */
  #sync(): Promise<void> {
    return this.#syncs.run();
  }

  #schedule(): void {
    if (this.#closed || !this.#started) return;
    if (this.#timer !== null) this.#options.clock.clearTimer(this.#timer);
    const pending = [...this.#wanted].some((p) => !this.#confirmed.has(p)) || [...this.#confirmed].some((p) => !this.#wanted.has(p));
    const delay = this.#control === null || pending ? (this.#options.retryMs ?? 1000) : (this.#options.checkMs ?? 10_000);
    this.#timer = this.#options.clock.setTimer(() => {
      this.#timer = null;
      void this.#sync();
    }, delay);
  }

  async #connection(): Promise<BirdControl> {
    if (this.#control?.open === true) return this.#control;
    const control = await BirdControl.connect(this.#options.socket, { timeoutMs: this.#options.replyTimeoutMs ?? REPLY_TIMEOUT_MS });
    this.#version = control.greeting;
    this.#control = control;
    this.#mustConfigure = true;
    this.#taken = new Set();
    this.#options.log.info(`BIRD control socket ${this.#options.socket}: ${control.greeting}`);
    control.onClose(() => {
      if (this.#control !== control) return;
      this.#control = null;
      this.#confirmed = new Set();
      if (!this.#closed) {
        this.#lastError = { kind: "unreachable", text: "BIRD control socket closed (BIRD stopped or restarted); reconnecting" };
        this.#options.log.warn(this.#lastError.text);
        this.#schedule();
      }
    });
    return control;
  }

  async #syncOnce(): Promise<void> {
    const wanted = [...this.#wanted];
    const text = renderInclude(this.#options.protocol, wanted);
    let previous: string | null = null;
    let changed = false;
    let unwritten: IncludeFileError | null = null;
    try {
      previous = this.#file.read();
      changed = previous !== text;
      if (changed) this.#file.write(text);
    } catch (error) {
      if (!(error instanceof IncludeFileError)) throw error;
      // The file stays as it was (a full or read-only disk): BIRD is configured and read as usual, the error is
      // reported on the prefixes it holds back, and the next sync (every retryMs while they differ) tries again.
      unwritten = error;
      changed = false;
    }
    if (unwritten === null) this.#fileHoldsWanted();
    try {
      await this.#configureAndConfirm(changed, changed ? this.#changedPrefixes(previous, wanted) : [], previous, changed ? wanted : routesIn(previous));
    } finally {
      if (unwritten !== null) this.#unwritten(unwritten);
    }
  }

  async #configureAndConfirm(changed: boolean, touched: readonly string[], previous: string | null, onDisk: readonly string[]): Promise<void> {
    let control: BirdControl;
    try {
      control = await this.#connection();
    } catch (error) {
      this.#unreachable(error);
      return;
    }
    try {
      if (changed || this.#mustConfigure) {
        try {
          const configureMs = this.#options.configureTimeoutMs ?? CONFIGURE_TIMEOUT_MS;
          await control.command("configure check", configureMs);
          const reply = await control.command("configure", configureMs);
          if (reply.code !== BIRD_CODES.reconfigured && reply.code !== BIRD_CODES.reconfigurationInProgress && reply.code !== BIRD_CODES.reconfigurationQueued) {
            this.#options.log.warn(`BIRD answered configure with ${reply.code}: ${reply.lines.at(-1)?.text ?? ""}`);
          }
          this.#mustConfigure = false;
          if (reply.code === BIRD_CODES.reconfigured) this.#taken = new Set(onDisk);
          this.#restorePending = null;
          this.#errors.clear();
          this.#lastError = null;
        } catch (error) {
          if (!(error instanceof BirdReplyError)) throw error;
          if (error.code !== BIRD_CODES.configurationError) {
            // Not the file's fault (a control socket restricted to reading answers 8007 Access denied): the new file
            // stays, for BIRD to read when it can, and the configure is tried again at the next sync.
            this.#mustConfigure = true;
            const hint = error.code === BIRD_CODES.accessDenied ? " (a restricted control socket: gorb needs BIRD's full one)" : "";
            const why = `${describe(error)}${hint}`;
            const failed = `configure not done: ${why}`;
            if (this.#lastError?.text !== failed) this.#options.log.error(`BIRD: ${failed}`);
            this.#lastError = { kind: "unreachable", text: failed };
            for (const prefix of touched) this.#errors.set(prefix, { kind: "unreachable", text: why });
            await this.#confirm(control);
            return;
          }
          // The new file is refused: put the old one back so that BIRD never loads it (not even at its next start).
          // When that fails too, the file on disk equals the wanted text at the next sync, so that sync must still
          // configure (check) rather than take the unchanged file for one BIRD has, and put the old file back then.
          const back = this.#restorePending ?? (changed ? { previous } : null);
          if (back !== null) this.#restore(back);
          this.#mustConfigure = true;
          const why = describe(error);
          const restored = this.#restorePending === null ? "previous include file restored" : "previous include file not restored yet";
          const refused = `configuration refused, ${restored}: ${why}`;
          // Tried again every retryMs until BIRD takes it: logged once, not every second.
          if (this.#lastError?.text !== refused) this.#options.log.error(`BIRD: ${refused}`);
          this.#lastError = { kind: "refused", text: refused };
          for (const prefix of touched) this.#errors.set(prefix, { kind: "refused", text: why });
        }
      }
      await this.#confirm(control);
    } catch (error) {
      this.#unreachable(error);
    }
  }

  /** Prefixes whose presence differs between the old file and the new wanted set. */
  #changedPrefixes(previous: string | null, wanted: readonly string[]): string[] {
    const before = new Set(routesIn(previous));
    const after = new Set(wanted);
    return [...new Set([...before, ...after])].filter((p) => before.has(p) !== after.has(p));
  }

  /** Puts `back.previous` in the file's place; on failure it stays pending for the next refusal (#restorePending). */
  #restore(back: { readonly previous: string | null }): void {
    try {
      if (back.previous === null) rmSync(this.#file.path, { force: true });
      else this.#file.write(back.previous);
      this.#restorePending = null;
    } catch (error) {
      if (this.#restorePending === null) this.#options.log.error(`cannot restore ${this.#file.path}: ${describe(error)}`);
      this.#restorePending = back;
    }
  }

  async #confirm(control: BirdControl): Promise<void> {
    const names = protocolNames(this.#options.protocol);
    const confirmed = new Set<string>();
    const shadowed = new Set<string>();
    /** The family ("4" or "6") whose protocol BIRD does not have, with its name. */
    const missing = new Map<string, string>();
    for (const [family, name] of [["4", names.inet], ["6", names.inet6]] as const) {
      try {
        const reply = await control.command(`show route protocol ${name}`);
        const primary = new Set(routePrefixes(reply, { primary: true }));
        for (const prefix of routePrefixes(reply)) (primary.has(prefix) ? confirmed : shadowed).add(prefix);
      } catch (error) {
        // 9001: BIRD has no such protocol (its configuration does not include the file): it announces nothing of ours.
        if (!(error instanceof BirdReplyError)) throw error;
        missing.set(family, name);
      }
    }
    this.#confirmed = confirmed;
    const familyOf = (prefix: string) => (prefix.includes(":") ? "6" : "4");
    for (const [prefix, error] of this.#errors) {
      const gone = !this.#wanted.has(prefix) && !confirmed.has(prefix);
      const done = this.#wanted.has(prefix) === confirmed.has(prefix);
      const stale =
        (error.kind === "unreachable" && confirmed.has(prefix)) ||
        (error.kind === "unwritten" && done) ||
        (error.kind === "shadowed" && !shadowed.has(prefix)) ||
        (error.kind === "not-loaded" && !missing.has(familyOf(prefix))) ||
        (error.kind === "absent" && (confirmed.has(prefix) || shadowed.has(prefix)));
      if (gone || stale) this.#errors.delete(prefix);
    }
    for (const prefix of this.#wanted) {
      if (!this.#taken.has(prefix) || confirmed.has(prefix) || shadowed.has(prefix) || missing.has(familyOf(prefix))) continue;
      const name = familyOf(prefix) === "6" ? names.inet6 : names.inet;
      this.#errors.set(prefix, {
        kind: "absent",
        text: `BIRD took the include file but has no route to it: ${name} is disabled (birdc disable), or BIRD drops the route (a loopback or link-local address is not routed)`,
      });
    }
    for (const prefix of shadowed) {
      if (this.#wanted.has(prefix)) this.#errors.set(prefix, { kind: "shadowed", text: "BIRD has it, but another protocol's route to it is preferred, so it is not exported" });
    }
    const notLoaded = [...missing.values()].join(", ");
    if (notLoaded !== "" && notLoaded !== this.#notLoaded) {
      this.#options.log.warn(`BIRD has no protocol ${notLoaded}: its configuration does not include ${this.#file.path} (see gorb bgp doctor)`);
    }
    this.#notLoaded = notLoaded;
    for (const prefix of this.#wanted) {
      const name = missing.get(familyOf(prefix));
      if (name !== undefined) this.#errors.set(prefix, { kind: "not-loaded", text: `BIRD has no protocol ${name}: its configuration does not include ${this.#file.path}` });
    }
  }

  /** The include file could not be written: every prefix whose announcement it holds back shows why. */
  #unwritten(error: IncludeFileError): void {
    const why = `include file not written: ${describe(error)}`;
    if (this.#lastError?.text !== why) this.#options.log.error(why);
    this.#lastError = { kind: "unwritten", text: why };
    for (const prefix of this.#wanted) if (!this.#confirmed.has(prefix)) this.#errors.set(prefix, { kind: "unwritten", text: why });
    for (const prefix of this.#confirmed) if (!this.#wanted.has(prefix)) this.#errors.set(prefix, { kind: "unwritten", text: why });
  }

  /** The include file holds the wanted set (written now, or needing no write): an error saying it could not be written is old. */
  #fileHoldsWanted(): void {
    for (const [prefix, error] of this.#errors) if (error.kind === "unwritten") this.#errors.delete(prefix);
    if (this.#lastError?.kind !== "unwritten") return;
    this.#options.log.info(`include file ${this.#file.path} holds the wanted set again`);
    this.#lastError = null;
  }

  #unreachable(error: unknown): void {
    const why = `BIRD unreachable: ${describe(error)}`;
    if (this.#lastError?.text !== why) this.#options.log.warn(why);
    this.#lastError = { kind: "unreachable", text: why };
    this.#confirmed = new Set();
    this.#control?.close();
    this.#control = null;
    for (const prefix of this.#wanted) if (!this.#errors.has(prefix)) this.#errors.set(prefix, { kind: "unreachable", text: why });
  }
}
