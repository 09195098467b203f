/**
 * `bun bench/floor-client.ts FILE URL`, inside the rig guest: the least a `gorb apply -f` client does, against
 * bench/floor-server.ts: read the JSON file, POST its services to URL/apply, print one line per change of the
 * report. Exits 1 when the server answered an error or reported a failed change.
 */
const [file, url] = process.argv.slice(2);
if (file === undefined || url === undefined) throw new Error("usage: floor-client.ts FILE URL");
const doc = JSON.parse(await Bun.file(file).text()) as { services?: unknown };
const response = await fetch(`${url}/apply`, { method: "POST", body: JSON.stringify({ services: doc.services }) });
const report = (await response.json()) as { ok: boolean; changes: { action: string; service: string; backend: string | null; status: string }[] };
console.log(report.changes.map((c) => `${c.action}\t${c.backend === null ? c.service : `${c.service}/${c.backend}`}\t${c.status}`).join("\n"));
process.exitCode = response.ok && report.ok ? 0 : 1;
export {};
