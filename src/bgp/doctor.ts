/**
 * `gorb bgp doctor`: checks a running BIRD against the contract of docs/bird.conf, over its control socket
 * (and bird.conf itself, when it can be read):
 *   - the control socket answers (0001 greeting);
 *   - the include line is in bird.conf (or a file it includes) and matches gorb's include file;
 *   - the static protocols `<name>` (ipv4) and `<name>6` (ipv6) exist: BIRD has loaded gorb's file; and their
 *     routes are BIRD's best for each VIP (no other protocol, such as direct, has a preferred one);
 *   - some BGP protocol has an export filter (not REJECT, the default; ACCEPT would export everything) and,
 *     when its session is up, exports every VIP gorb has in BIRD;
 *   - no kernel protocol exports the VIPs (BIRD would install the blackhole routes in this host's table).
 * Each check is a finding with a level; the caller prints them.
 */
import { globSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { BirdControl, BirdReplyError, BirdSocketError, routePrefixes, type BirdReply } from "./bird-control.ts";
import { protocolNames } from "./include-file.ts";
import { errorCode } from "../errno.ts";

export interface Finding {
  readonly level: "ok" | "warn" | "fail";
  readonly check: string;
  readonly message: string;
}

export interface DoctorOptions {
  readonly socket: string;
  readonly include: string;
  readonly protocol: string;
  /** bird.conf, read to find the include line; null to skip that check. */
  readonly birdConf: string | null;
}

interface ProtocolRow {
  readonly name: string;
  readonly proto: string;
  readonly state: string;
  readonly info: string;
}

/** The rows of `show protocols` (codes 1002, continuation lines included). */
function protocolRows(reply: BirdReply): ProtocolRow[] {
  return reply.lines
    .filter((line) => line.code === 1002)
    .map((line) => {
      const [name = "", proto = "", , state = "", , ...info] = line.text.trim().split(/\s+/);
      return { name, proto, state, info: info.join(" ") };
    });
}

/** The `Output filter:` values of `show protocols all <name>`. */
function outputFilters(reply: BirdReply): string[] {
  return reply.lines.map((line) => /^\s*Output filter:\s*(.+?)\s*$/.exec(line.text)?.[1]).filter((f): f is string => f !== undefined);
}

/** A glob of an include line as a RegExp (`*` and `?` only, as BIRD's wildcard includes). */
function globRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  return new RegExp(`^${escaped}$`);
}

/** BIRD's own limit on nested includes. */
const MAX_INCLUDE_DEPTH = 8;

/**
 * The include line (and the file it is in) whose glob matches `include`: in `file`'s text, or in the files its
 * include lines name, as deep as BIRD follows them (`include "conf.d/*.conf";` holding gorb's line is common). A
 * relative glob is relative to the including file's directory, as in BIRD. Files that cannot be read are skipped.
 */
function findInclude(file: string, text: string, include: string, depth = 1): { readonly glob: string; readonly file: string } | null {
  const globs = [...text.matchAll(/^[ \t]*include[ \t]*"([^"]+)"[ \t]*;/gm)].map((m) => m[1] ?? "").map((g) => (isAbsolute(g) ? g : join(dirname(file), g)));
  const direct = globs.find((glob) => globRegExp(glob).test(include));
  if (direct !== undefined) return { glob: direct, file };
  if (depth >= MAX_INCLUDE_DEPTH) return null;
  for (const glob of globs) {
    for (const nested of globSync(glob)) {
      let nestedText: string;
      try {
        nestedText = readFileSync(nested, "utf8");
      } catch {
        continue;
      }
      const found = findInclude(nested, nestedText, include, depth + 1);
      if (found !== null) return found;
    }
  }
  return null;
}

/** Runs every check; see the module comment. */
export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (level: Finding["level"], check: string, message: string) => findings.push({ level, check, message });

  if (options.birdConf !== null) {
    let text: string | null = null;
    try {
      text = readFileSync(options.birdConf, "utf8");
    } catch (error) {
      add("warn", "include", `cannot read ${options.birdConf} (${errorCode(error) || String(error)}); include line not checked`);
    }
    if (text !== null) {
      const match = findInclude(options.birdConf, text, options.include);
      if (match !== null) {
        const where = match.file === options.birdConf ? "" : ` in ${match.file}`;
        add("ok", "include", `${options.birdConf} includes ${options.include} (include "${match.glob}"${where})`);
      } else {
        add("fail", "include", `${options.birdConf} has no include line for ${options.include} (only blanks before it on its line); add: include "${options.include.replace(/\/([^/]+)\/([^/]+)\.conf$/, "/$1*/$2*.conf")}";`);
      }
    }
  }

  let control: BirdControl;
  try {
    control = await BirdControl.connect(options.socket, { timeoutMs: 5000 });
  } catch (error) {
    if (!(error instanceof BirdSocketError)) throw error;
    add("fail", "socket", `${error.message}; is BIRD running, and is --bgp-bird-socket its control socket?`);
    return findings;
  }
  try {
    add("ok", "socket", `${options.socket}: ${control.greeting}`);
    const rows = protocolRows(await control.command("show protocols"));
    const names = protocolNames(options.protocol);
    const vips: string[] = [];
    for (const name of [names.inet, names.inet6]) {
      const row = rows.find((r) => r.name === name);
      if (row === undefined) {
        add("fail", "static", `BIRD has no protocol ${name}: gorb's include file is not loaded (is gorb running with --bgp-include ${options.include}, and bird.conf including it?)`);
      } else if (row.proto !== "Static") {
        add("fail", "static", `${name} is a ${row.proto} protocol; the name belongs to gorb's static protocol (choose another --bgp-protocol)`);
      } else {
        const reply = await control.command(`show route protocol ${name}`);
        const routes = routePrefixes(reply);
        const primary = new Set(routePrefixes(reply, { primary: true }));
        const shadowed = routes.filter((r) => !primary.has(r));
        vips.push(...routes);
        if (shadowed.length === 0) add("ok", "static", `${name}: static, ${row.state}, ${routes.length} route(s)`);
        else add("fail", "static", `${name}: another protocol's route is preferred for ${shadowed.join(", ")}, so BGP does not export gorb's (a protocol direct with the VIP on lo?); keep the VIPs out of it`);
      }
    }

    const bgp = rows.filter((r) => r.proto === "BGP");
    if (bgp.length === 0) add("fail", "export", "BIRD has no BGP protocol: nothing is announced to routers");
    let exporting = 0;
    for (const row of bgp) {
      const filters = outputFilters(await control.command(`show protocols all ${row.name}`));
      if (filters.includes("ACCEPT")) add("warn", "export", `${row.name} exports everything (export all): use export where proto = "${names.inet}"`);
      if (filters.some((f) => f !== "REJECT")) exporting++;
      if (row.state !== "up") {
        add("warn", "session", `${row.name} is ${row.state}${row.info !== "" ? ` (${row.info})` : ""}`);
        continue;
      }
      let exported: string[] = [];
      try {
        exported = routePrefixes(await control.command(`show route export ${row.name}`));
      } catch (error) {
        if (!(error instanceof BirdReplyError)) throw error;
      }
      const missing = vips.filter((v) => !exported.includes(v));
      if (missing.length === 0) add("ok", "export", `${row.name} exports the ${vips.length} VIP(s)`);
      else add("fail", "export", `${row.name} does not export ${missing.join(", ")}: its export filter must accept proto = "${names.inet}" / "${names.inet6}"`);
    }
    if (bgp.length > 0 && exporting === 0) {
      add("fail", "export", `no BGP channel has an export filter: add export where proto = "${names.inet}"; (and "${names.inet6}" on ipv6)`);
    }

    for (const row of rows.filter((r) => r.proto === "Kernel")) {
      let exported: string[] = [];
      try {
        exported = routePrefixes(await control.command(`show route export ${row.name}`));
      } catch (error) {
        if (!(error instanceof BirdReplyError)) throw error;
      }
      const leaked = vips.filter((v) => exported.includes(v));
      if (leaked.length > 0) {
        add("fail", "kernel", `${row.name} exports ${leaked.join(", ")} to the kernel as blackhole routes: add where proto != "${names.inet}" to its export`);
      } else add("ok", "kernel", `${row.name} does not export gorb's VIPs`);
    }
  } finally {
    control.close();
  }
  return findings;
}
