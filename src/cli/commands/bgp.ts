/**
 * `gorb bgp status`: what this node announces over BGP (GET /bgp). `gorb bgp doctor`: checks a running BIRD
 * against docs/bird.conf (src/bgp/doctor.ts); exit 7 when a check fails.
 */
import { defineCommand } from "citty";
import { withExamples } from "../_command.ts";
import { boolArg, jsonArgs, serverArgs, stringArg } from "../_shared.ts";
import { GorbClient, clientOptionsFrom } from "../client.ts";
import { cliContext } from "../context.ts";
import { CliError, EXIT } from "../errors.ts";
import { jsonText } from "../../render/format.ts";
import { DEFAULT_BGP_INCLUDE, DEFAULT_BGP_PROTOCOL } from "../../config/daemon-options.ts";
import { fetchBgp } from "../bgp-view.ts";
import { bgpTable } from "../../render/bgp.ts";

/** Where BIRD 2 keeps its control socket and its configuration on Debian: `gorb bgp doctor`'s defaults. */
const BIRD_SOCKET = "/run/bird/bird.ctl";
const BIRD_CONF = "/etc/bird/bird.conf";

const status = defineCommand({
  meta: { name: "gorb bgp status", description: "What this node announces over BGP: per VIP wanted, confirmed by BIRD, last error" },
  args: { ...serverArgs, ...jsonArgs },
  async run({ args }) {
    const ctx = cliContext();
    const bgp = await fetchBgp(new GorbClient(clientOptionsFrom(args, ctx.env, ctx.signal)));
    if (bgp === null) throw new CliError(EXIT.NOT_FOUND, "BGP is off: the daemon runs without --bgp-bird-socket");
    ctx.io.stdout(boolArg(args, "json") === true ? jsonText(bgp) : bgpTable(bgp));
    return EXIT.OK;
  },
});

const doctor = defineCommand({
  meta: { name: "gorb bgp doctor", description: "Check a running BIRD against gorb's contract (docs/bird.conf)" },
  args: {
    socket: { type: "string", description: `BIRD's control socket (default: ${BIRD_SOCKET})`, valueHint: "socket" },
    include: { type: "string", description: `gorb's include file (default: ${DEFAULT_BGP_INCLUDE})`, valueHint: "file" },
    protocol: { type: "string", description: `gorb's static protocol name (default: ${DEFAULT_BGP_PROTOCOL})`, valueHint: "name" },
    "bird-conf": { type: "string", description: `BIRD's configuration file, checked for the include line (default: ${BIRD_CONF})`, valueHint: "file" },
    ...jsonArgs,
  },
  async run({ args }) {
    const ctx = cliContext();
    const { runDoctor } = await import("../../bgp/doctor.ts");
    const findings = await runDoctor({
      socket: stringArg(args, "socket") ?? BIRD_SOCKET,
      include: stringArg(args, "include") ?? DEFAULT_BGP_INCLUDE,
      protocol: stringArg(args, "protocol") ?? DEFAULT_BGP_PROTOCOL,
      birdConf: stringArg(args, "bird-conf") ?? BIRD_CONF,
    });
    if (boolArg(args, "json") === true) ctx.io.stdout(jsonText(findings));
    else ctx.io.stdout(findings.map((f) => `${f.level.toUpperCase().padEnd(4)} ${f.check.padEnd(8)} ${f.message}\n`).join(""));
    return findings.some((f) => f.level === "fail") ? EXIT.SERVER : EXIT.OK;
  },
});

export default withExamples(
  defineCommand({
    meta: { name: "gorb bgp", description: "BGP announcements through BIRD: status, doctor" },
    subCommands: { status, doctor },
  }),
  [
    "gorb bgp status",
    `gorb bgp doctor --socket ${BIRD_SOCKET} --bird-conf ${BIRD_CONF}`,
  ],
);
