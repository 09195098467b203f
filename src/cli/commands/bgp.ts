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
    socket: { type: "string", description: "BIRD's control socket (default: /run/bird/bird.ctl)", valueHint: "socket" },
    include: { type: "string", description: `gorb's include file (default: ${DEFAULT_BGP_INCLUDE})`, valueHint: "file" },
    protocol: { type: "string", description: `gorb's static protocol name (default: ${DEFAULT_BGP_PROTOCOL})`, valueHint: "name" },
    "bird-conf": { type: "string", description: "BIRD's configuration file, checked for the include line (default: /etc/bird/bird.conf)", valueHint: "file" },
    ...jsonArgs,
  },
  async run({ args }) {
    const ctx = cliContext();
    const { runDoctor } = await import("../../bgp/doctor.ts");
    const findings = await runDoctor({
      socket: stringArg(args, "socket") ?? "/run/bird/bird.ctl",
      include: stringArg(args, "include") ?? DEFAULT_BGP_INCLUDE,
      protocol: stringArg(args, "protocol") ?? DEFAULT_BGP_PROTOCOL,
      birdConf: stringArg(args, "bird-conf") ?? "/etc/bird/bird.conf",
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
    "gorb bgp doctor --socket /run/bird/bird.ctl --bird-conf /etc/bird/bird.conf",
  ],
);
