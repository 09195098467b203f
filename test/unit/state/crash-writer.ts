/**
 * A writer for the crash test (sqlite-store.test.ts): commits to the state in `argv[2]` forever, one service
 * per commit ("s<n>", with backend "b" holding n as its weight), and prints "<n>\n" after each commit returns.
 * The test kills it with SIGKILL mid-stream.
 */
import { SqliteStateStore } from "../../../src/state/sqlite-store.ts";

const store = SqliteStateStore.open(process.argv[2] ?? "");
for (let n = 1; ; n++) {
  store.commit({
    putServices: [{ id: `s${n}`, source: "api", fields: { port: 80, host: "10.0.0.1", n }, key: { family: "inet", protocol: "tcp", address: "10.0.0.1", port: 1 + (n % 65535) }, vip: false }],
    deleteServices: n > 1 && n % 3 === 0 ? [`s${n - 1}`] : [],
    putBackends: [{ service: `s${n}`, id: "b", source: "api", fields: { host: "10.1.0.1", weight: n }, address: { address: "10.1.0.1", family: "inet" } }],
    deleteBackends: [],
  });
  process.stdout.write(`${n}\n`);
}
