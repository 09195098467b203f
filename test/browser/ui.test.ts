/**
 * The web UI in a real browser, against the compiled gorb serving a real IPVS kernel.
 *
 * The host's kernel has no IPVS, so gorb runs in the rig's guest (test/rig: Debian's cloud kernel under qemu),
 * as `npm run sandbox` does: the compiled executable (dist/gorb, built from these sources, the UI bundle inlined)
 * runs `gorb serve` with backends be1..be3 in network namespaces (busybox httpd at 10.77.<i>.2), and qemu
 * forwards the API and the VIP's port 80 to the host. A command port in the guest (busybox nc) runs `ipvsadm -Ln`,
 * stops or starts a backend's server and stops or starts gorb, so the test can look at the kernel's table, break
 * a backend and cut the page's event stream.
 *
 * Debian's Chromium, driven by playwright-core on the host (no browser download), opens /ui and does everything
 * through the page: create a service and backends, see them in `ipvsadm -Ln`; each row's buttons and checkbox
 * named for what they act on ("Edit backend b1 of web"), no two alike; a 409 next to the id field; a stopped
 * backend marked down and drained to weight 0 without a reload, then climbing back; Weight 0 and Restore (the
 * weight offered when the page set Weight 0, asked for when another client did; a refused weight said under the
 * field, which takes the focus), the focus kept in the button's place as one gives way to the other; Edit service
 * and Edit backend opening on the host field; an Edit backend opened before another client's change refused (412)
 * rather than writing its older values, and opened again starting from the change; the maintenance checkbox (weight 0 in the kernel, the health checks
 * untouched, then the weight back); Drain… (a refused deadline said under its field, which takes the focus) with
 * `then: keep` (held at weight 0 until Undrain) and with `then: remove` (gone from the page and the kernel); a
 * service whose sorry server serves while its only backend fails, said in its row live and seen in the kernel; a
 * service below its quorum (no sorry server), said in its row while the kernel keeps the weights;
 * gorb stopped under the page: "reconnecting", and Weight 0, maintenance, Delete and Delete service refused under
 * their row's or card's buttons, the focus kept on the control; gorb back with a token: the page asks for it (a
 * refused one said as an alert tied to the field, which keeps the focus), reads its forms again every 2 s while
 * gorb does not answer, asks again when gorb restarts with another token, then resumes with a `resync` and the
 * state read again, without a reload; apply with the plan shown first, and planned again at the click (a plan
 * changed meanwhile is shown, not applied; each id of the plan in its own <bdi>, isolated in the warning);
 * reconcile, the notice's Dismiss giving the focus back to Reconcile; a backend created right after its service
 * shown at once, whatever order the page's reads are answered in; a right-to-left service id and a backend id with
 * a RIGHT-TO-LEFT OVERRIDE drawn in their order (events list, notice, dialog title) and with the control as a mark
 * (a chart's name); delete everything and the kernel table is empty, focus going to the next row or card each
 * time. Screenshots of the main views go to test-artifacts/ (gitignored).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { buildGuestExecutable } from "../rig/compiled-exe.ts";
import { PROJECT_ROOT } from "../rig/paths.ts";
import { type GuestRunResult, runInGuest, tail } from "../rig/qemu.ts";

const CHROMIUM = process.env.GORB_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(PROJECT_ROOT, "test-artifacts");
const VIP = "10.0.0.20";
const GUEST_API_PORT = 4672;
const GUEST_COMMAND_PORT = 4698;
/** Longest wait for the guest to boot and gorb to answer (software emulation on a shared machine). */
const BOOT_TIMEOUT_MS = 300_000;
/** Longest wait for the UI to show a change (the guest is ~10x slower than the host). */
const UI_TIMEOUT_MS = 60_000;

/** gorb serve in the guest; the state is kept (in the guest's /var/lib/gorb) so that a restart restores it. */
const SERVE_ARGS = `-l 0.0.0.0:${GUEST_API_PORT} --vip-interface lo`;

/** The guest: gorb serve (compiled), three backends, the command port; runs until the host sends `quit`. */
function guestScript(): string {
  const backends = [1, 2, 3];
  const rootBatch = backends
    .flatMap((i) => [`netns add be${i}`, `link add veth-be${i} type veth peer name eth0 netns be${i}`, `addr add 10.77.${i}.1/24 dev veth-be${i}`, `link set veth-be${i} up`])
    .join("\n");
  return `set -e
IP=/usr/sbin/ip
( /usr/bin/gorb serve ${SERVE_ARGS} & echo $! > /tmp/gorb.pid; wait $! || true; echo GORB_UI_SERVE_EXITED ) &
watcher=$!
$IP -b - <<EOF
${rootBatch}
EOF
for i in ${backends.join(" ")}; do
  $IP -n be$i -b - <<EOF
link set lo up
addr add 10.77.$i.2/24 dev eth0
link set eth0 up
route add default via 10.77.$i.1
EOF
  mkdir -p /tmp/www/be$i
  echo "be$i" > /tmp/www/be$i/index.html
  $IP netns exec be$i /bin/busybox httpd -f -p 10.77.$i.2:80 -h /tmp/www/be$i </dev/null >/dev/null 2>&1 &
  echo $! > /tmp/be$i.pid
done
cat > /tmp/cmd.sh <<'EOF'
#!/bin/sh
read -r cmd arg
case "$arg" in *[!0-9]*) arg="" ;; esac
case "$cmd" in
  ipvsadm) /usr/sbin/ipvsadm -Ln ;;
  stop) [ -n "$arg" ] && kill "$(cat /tmp/be$arg.pid)" && echo "stopped be$arg" ;;
  start) [ -n "$arg" ] && { /usr/sbin/ip netns exec be$arg /bin/busybox httpd -f -p 10.77.$arg.2:80 -h /tmp/www/be$arg </dev/null >/dev/null 2>&1 & echo $! > /tmp/be$arg.pid; echo "started be$arg"; } ;;
  gorb-stop) kill -TERM "$(cat /tmp/gorb.pid)" && echo "gorb stopping" ;;
  gorb-start)
    # Once the one stopped has exited; "gorb-start N" asks for the token token-N (--token-file).
    while kill -0 "$(cat /tmp/gorb.pid)" 2>/dev/null; do sleep 1; done
    token=""
    if [ -n "$arg" ]; then ( umask 077; echo "token-$arg" > /tmp/token ); token="--token-file /tmp/token"; fi
    /usr/bin/gorb serve ${SERVE_ARGS} $token </dev/null >>/tmp/gorb-again.log 2>&1 & echo $! > /tmp/gorb.pid; echo "gorb starting" ;;
  quit) touch /tmp/quit; echo bye ;;
  *) echo "unknown command $cmd" ;;
esac
echo GORB_CMD_END
EOF
chmod +x /tmp/cmd.sh
( while [ ! -e /tmp/quit ]; do /bin/busybox nc -l -p ${GUEST_COMMAND_PORT} -e /tmp/cmd.sh || true; done ) &
echo GORB_UI_GUEST_UP
while [ ! -e /tmp/quit ]; do sleep 1; done
kill -TERM "$(cat /tmp/gorb.pid)" 2>/dev/null || true
wait $watcher || true
`;
}

function freePort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

const apiPort = freePort();
const vipPort = freePort();
const commandPort = freePort();
const API = `http://127.0.0.1:${apiPort}`;

let transcript = "";
let guest: Promise<GuestRunResult> | undefined;
let guestGone: string | null = null;
let browser: Browser | undefined;
let page: Page;

/** Sends one command to the guest's command port and returns its output (retries until nc listens). */
async function guestCommand(line: string): Promise<string> {
  const deadline = performance.now() + BOOT_TIMEOUT_MS;
  for (;;) {
    if (guestGone !== null) throw new Error(`${guestGone}\n${tail(transcript)}`);
    const result = Promise.withResolvers<string | null>();
    let output = "";
    try {
      const socket = await Bun.connect({
        hostname: "127.0.0.1",
        port: commandPort,
        socket: {
          data: (_s, data) => {
            output += new TextDecoder().decode(data);
            if (output.includes("GORB_CMD_END")) result.resolve(output.replace(/GORB_CMD_END\s*$/, ""));
          },
          close: () => result.resolve(null),
          error: () => result.resolve(null),
        },
      });
      socket.write(`${line}\n`);
      const timer = setTimeout(() => result.resolve(null), 20_000);
      const answer = await result.promise;
      clearTimeout(timer);
      socket.end();
      if (answer !== null) return answer;
    } catch {
      // qemu not forwarding yet
    }
    if (performance.now() > deadline) throw new Error(`the guest's command port did not answer ${JSON.stringify(line)}`);
    await Bun.sleep(200);
  }
}

/** Polls `ipvsadm -Ln` in the guest until `ok` holds; returns the listing (throws with it when it never does). */
async function kernelTable(ok: (listing: string) => boolean): Promise<string> {
  const deadline = performance.now() + UI_TIMEOUT_MS;
  let listing = "";
  while (performance.now() < deadline) {
    listing = await guestCommand("ipvsadm");
    if (ok(listing)) return listing;
    await Bun.sleep(300);
  }
  throw new Error(`ipvsadm -Ln never matched:\n${listing}`);
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `ui-${name}.png`), fullPage: true });
}

const service = (id: string) => page.locator(`[data-service="${id}"]`);
/** A backend's row, inside its service's card (ids repeat across services). */
const backend = (id: string, of = "web") => service(of).locator(`[data-backend="${id}"]`);
/** The accessible names of the buttons and checkboxes under `scope`, as the browser's accessibility tree has them. */
async function controlNames(scope: ReturnType<Page["locator"]>): Promise<string[]> {
  const tree = await scope.ariaSnapshot();
  return [...tree.matchAll(/^\s*- (?:button|checkbox) "((?:[^"\\]|\\.)*)"/gm)].map((m) => m[1] ?? "");
}
/** Whether the element has the keyboard focus. */
const focused = (locator: ReturnType<Page["locator"]>) => locator.evaluate((el) => el === document.activeElement);

/** One virtual service's part of an `ipvsadm -Ln` listing: its line and its destinations ("" when absent). */
function virtualService(listing: string, address: string): string {
  const lines = listing.split("\n");
  const header = /^(TCP|UDP|SCTP|FWM)\s/;
  const start = lines.findIndex((l) => header.test(l) && l.split(/\s+/)[1] === address);
  if (start < 0) return "";
  const end = lines.findIndex((l, i) => i > start && header.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

/** The weight of destination `dest` ("10.77.1.2:80") of virtual service `address` in the listing, or null. */
function kernelWeight(listing: string, address: string, dest: string): number | null {
  const line = virtualService(listing, address)
    .split("\n")
    .find((l) => l.trim().startsWith(`-> ${dest} `));
  const weight = line?.trim().split(/\s+/)[3];
  return weight === undefined ? null : Number(weight);
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const exe = buildGuestExecutable((line) => console.error(line));
  guest = runInGuest({
    script: guestScript(),
    timeoutMs: 900_000,
    hostForwards: [
      { host: apiPort, guest: GUEST_API_PORT },
      { host: vipPort, guest: 80, guestAddress: VIP },
      { host: commandPort, guest: GUEST_COMMAND_PORT },
    ],
    extraFiles: [exe],
    log: (line) => console.error(line),
    onOutput: (chunk) => {
      transcript += chunk;
    },
  });
  guest.then(
    (r) => (guestGone = `the guest stopped (exit ${r.exitCode})`),
    (e: unknown) => (guestGone = e instanceof Error ? e.message : String(e)),
  );
  // gorb answers, and the command port answers (the backends are up by then).
  const deadline = performance.now() + BOOT_TIMEOUT_MS;
  for (;;) {
    if (guestGone !== null) throw new Error(`${guestGone}\n${tail(transcript)}`);
    try {
      const response = await fetch(`${API}/service`, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`gorb did not answer within ${BOOT_TIMEOUT_MS / 1000} s\n${tail(transcript)}`);
    await Bun.sleep(200);
  }
  while (!transcript.includes("GORB_UI_GUEST_UP")) await Bun.sleep(100);
  expect(await guestCommand("ipvsadm")).toContain("IP Virtual Server");

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  await page.goto(`${API}/ui`);
  await page.locator(".stream-live").waitFor();
  // A marker that a reload would lose: the checks below prove the page was never reloaded.
  await page.evaluate(() => {
    (window as unknown as { gorbTestMarker: number }).gorbTestMarker = 42;
  });
}, BOOT_TIMEOUT_MS + 120_000);

afterAll(async () => {
  await browser?.close();
  if (guest !== undefined && guestGone === null) {
    await guestCommand("quit").catch(() => "");
    await guest.catch(() => undefined);
  }
}, 60_000);

/**
 * Whether `first`, then `second` after it, in the text under `scope` are drawn in that order, left to right: all of
 * the first left of all of the second (bidirectional text can draw them the other way round).
 */
function drawnInOrder(scope: ReturnType<Page["locator"]>, first: string, second: string): Promise<boolean> {
  return scope.evaluate(
    (root, [a, b]) => {
      const nodes: Text[] = [];
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) nodes.push(node as Text);
      const starts: number[] = [];
      let text = "";
      for (const node of nodes) {
        starts.push(text.length);
        text += node.data;
      }
      const at = (i: number): [Text, number] => {
        let k = nodes.length - 1;
        while (k > 0 && (starts[k] ?? 0) > i) k--;
        const node = nodes[k];
        if (node === undefined) throw new Error("no text");
        return [node, i - (starts[k] ?? 0)];
      };
      const box = (from: number, length: number) => {
        const range = document.createRange();
        range.setStart(...at(from));
        range.setEnd(...at(from + length));
        return range.getBoundingClientRect();
      };
      const i = text.indexOf(a);
      const j = text.indexOf(b, i + a.length);
      if (i < 0 || j < 0) throw new Error(`${JSON.stringify(a)} then ${JSON.stringify(b)} not in ${JSON.stringify(text)}`);
      return box(i, a.length).right <= box(j, b.length).left + 0.5;
    },
    [first, second] as const,
  );
}

/** Waits until gorb in the guest no longer answers (stopped). */
async function gorbGone(): Promise<void> {
  const deadline = performance.now() + UI_TIMEOUT_MS;
  while (performance.now() < deadline) {
    try {
      await fetch(`${API}/ui`, { signal: AbortSignal.timeout(2_000) });
    } catch {
      return;
    }
    await Bun.sleep(200);
  }
  throw new Error("gorb still answers");
}

async function notReloaded(): Promise<void> {
  expect(await page.evaluate(() => (window as unknown as { gorbTestMarker?: number }).gorbTestMarker)).toBe(42);
}

describe("the web UI against a real IPVS kernel", () => {
  test("create a service and backends through the forms; ipvsadm -Ln shows them", async () => {
    await page.getByRole("button", { name: "New service" }).click();
    const form = page.getByRole("form", { name: "Create service form" });
    await form.getByLabel("service id").fill("web");
    await form.locator("#service-form-host").fill(VIP);
    await form.locator("#service-form-port").fill("80");
    await form.locator("#service-form-method").selectOption("wrr");
    await form.getByRole("button", { name: "Create service" }).click();
    await service("web").waitFor();

    for (const [id, i] of [["b1", 1], ["b2", 2]] as const) {
      await service("web").getByRole("button", { name: "Add backend" }).click();
      const add = page.getByRole("form", { name: "Add backend form" });
      await add.getByLabel("backend id").fill(id);
      await add.locator("#backend-form-host").fill(`10.77.${i}.2`);
      await add.locator("#backend-form-pulse-type").selectOption("http");
      await add.locator("#backend-form-pulse-interval").fill("2s");
      await add.getByRole("button", { name: "Add backend" }).click();
      await add.waitFor({ state: "detached" });
      expect(await focused(service("web").getByRole("button", { name: "Add backend" }))).toBe(true); // back to the opener
      await backend(id).waitFor();
    }
    // Both at their configured weight (a check that times out on this busy emulated machine drains one for a
    // moment; it climbs back by itself).
    const full = [/->\s+10\.77\.1\.2:80\s+Masq\s+100\s/, /->\s+10\.77\.2\.2:80\s+Masq\s+100\s/];
    const listing = await kernelTable((l) => full.every((re) => re.test(l)));
    expect(listing).toMatch(/TCP\s+10\.0\.0\.20:80 wrr/);
    await backend("b1").locator(".badge", { hasText: "up" }).waitFor();
    await backend("b2").locator(".badge", { hasText: "up" }).waitFor();
    // Every row has the same buttons, with the same short text: each one's name says what it acts on, so a screen
    // reader (or a search by name) tells b1's Delete from b2's.
    const names = await controlNames(page.locator(".services"));
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
    expect(names).toEqual(
      expect.arrayContaining(["Edit backend b1 of web", "Weight 0 for backend b2 of web", "maintenance for backend b1 of web", "Drain backend b2 of web…", "Delete backend b1 of web", "Add backend to service web", "Delete service web"]),
    );
    // Some traffic through the VIP, for the rates picture.
    for (let i = 0; i < 30; i++) await fetch(`http://127.0.0.1:${vipPort}/`, { headers: { Connection: "close" } }).then((r) => r.text());
    await notReloaded();
  }, 180_000);

  test("a 409 is shown next to the field it is about", async () => {
    await page.getByRole("button", { name: "New service" }).click();
    const form = page.getByRole("form", { name: "Create service form" });
    await form.getByLabel("service id").fill("web");
    await form.locator("#service-form-host").fill("10.0.0.21");
    await form.locator("#service-form-port").fill("80");
    await form.getByRole("button", { name: "Create service" }).click();
    const error = form.locator("#service-form-id-error");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/^409 CONFLICT: .*web.*already exists/);
    expect(await form.getByLabel("service id").getAttribute("aria-invalid")).toBe("true");
    await shot("conflict");
    // An id the API refuses (its error names the field `service`) and an empty one (no request) go under the id.
    await form.getByLabel("service id").fill("we/b");
    await form.getByRole("button", { name: "Create service" }).click();
    await error.filter({ hasText: /^400 VALIDATION: service: id must not contain "\/"/ }).waitFor();
    await form.getByLabel("service id").fill("");
    await form.getByRole("button", { name: "Create service" }).click();
    await error.filter({ hasText: /^service id: required$/ }).waitFor();
    // A 400 names its field: the error goes under that field.
    await form.getByLabel("service id").fill("web2");
    await form.locator("#service-form-port").fill("70000");
    await form.getByRole("button", { name: "Create service" }).click();
    await form.locator("#service-form-port-error").waitFor();
    expect(await form.locator("#service-form-port-error").textContent()).toMatch(/^400 .*port/);
    await page.keyboard.press("Escape");
    await form.waitFor({ state: "detached" });
    expect(await kernelTable(() => true)).not.toContain("10.0.0.21");
  }, 120_000);

  test("a stopped backend is marked down and drained to weight 0 without a reload, then climbs back", async () => {
    expect(await guestCommand("stop 1")).toContain("stopped be1");
    await backend("b1").locator(".badge", { hasText: "down" }).waitFor();
    await backend("b1").locator("output", { hasText: /^0$/ }).waitFor();
    await service("web").locator(".why", { hasText: "degraded: b1 down" }).waitFor();
    await kernelTable((l) => /->\s+10\.77\.1\.2:80\s+Masq\s+0\s/.test(l));
    await notReloaded();
    await shot("degraded");
    expect(await guestCommand("start 1")).toContain("started be1");
    await backend("b1").locator(".badge", { hasText: "up" }).waitFor();
    await backend("b1").locator("output", { hasText: /^100$/ }).waitFor(); // the gradual climb ends at the configured weight
    await notReloaded();
    await shot("recovered");
  }, 180_000);

  test("Weight 0 and Restore reach the kernel; Restore asks for the weight, offered only when this tab knows it", async () => {
    const b2 = backend("b2");
    const weight = b2.getByLabel("weight", { exact: true });
    await page.getByRole("button", { name: "Weight 0 for backend b2 of web", exact: true }).click();
    await b2.getByRole("button", { name: "Restore backend b2 of web", exact: true }).waitFor();
    expect(await focused(b2.getByRole("button", { name: "Restore backend b2 of web", exact: true }))).toBe(true); // in its place, not <body>
    await kernelTable((l) => /->\s+10\.77\.2\.2:80\s+Masq\s+0\s/.test(l));
    await b2.getByRole("button", { name: "Restore backend b2 of web", exact: true }).click();
    expect(await weight.inputValue()).toBe("100"); // this tab set Weight 0: it knows the weight b2 had
    await b2.getByRole("button", { name: "Set weight" }).click();
    await b2.getByRole("button", { name: "Weight 0 for backend b2 of web", exact: true }).waitFor();
    expect(await focused(b2.getByRole("button", { name: "Weight 0 for backend b2 of web", exact: true }))).toBe(true);
    await kernelTable((l) => /->\s+10\.77\.2\.2:80\s+Masq\s+100\s/.test(l));
    // Weight 0 from another client: gorb keeps no earlier weight, so Restore offers none and waits for one.
    const other = await fetch(`${API}/service/web/b2`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ weight: 0 }) });
    expect(other.status).toBe(200);
    await b2.getByRole("button", { name: "Restore backend b2 of web", exact: true }).click();
    expect(await weight.inputValue()).toBe("");
    expect(await b2.getByRole("button", { name: "Set weight" }).isDisabled()).toBe(true);
    // The field takes the focus; Escape gives it back to Restore, and Enter there asks again.
    expect(await focused(weight)).toBe(true);
    await weight.press("Escape");
    expect(await focused(b2.getByRole("button", { name: "Restore backend b2 of web", exact: true }))).toBe(true);
    await page.keyboard.press("Enter");
    expect(await focused(weight)).toBe(true);
    // A weight the API refuses: the error is said where Restore was asked, under the field and tied to it, not at
    // the top of the page; the field takes the focus back from Set weight, and nothing changed.
    await weight.fill("abc");
    await b2.getByRole("button", { name: "Set weight" }).click();
    const refusal = b2.getByRole("form", { name: "Restore backend b2 of web" }).getByRole("alert");
    await refusal.filter({ hasText: /^400 VALIDATION: weight: must be an integer/ }).waitFor();
    expect(await weight.getAttribute("aria-invalid")).toBe("true");
    expect(await weight.getAttribute("aria-describedby")).toBe(await refusal.getAttribute("id"));
    expect(await focused(weight)).toBe(true);
    expect(await page.locator(".notice.error").count()).toBe(0);
    expect(kernelWeight(await kernelTable(() => true), `${VIP}:80`, "10.77.2.2:80")).toBe(0);
    await weight.fill("100");
    await weight.press("Enter");
    await b2.getByRole("button", { name: "Weight 0 for backend b2 of web", exact: true }).waitFor();
    await kernelTable((l) => /->\s+10\.77\.2\.2:80\s+Masq\s+100\s/.test(l));
  }, 120_000);

  test("maintenance from the checkbox: the row says so and the kernel has weight 0; unchecked, the weight comes back", async () => {
    // Edit backend opens on the first field one can change (the id is read-only), not on ×.
    await backend("b1").getByRole("button", { name: "Edit backend b1 of web", exact: true }).click();
    expect(await focused(page.getByRole("form", { name: "Save backend form" }).locator("#backend-form-host"))).toBe(true);
    await page.keyboard.press("Escape");
    expect(await focused(backend("b1").getByRole("button", { name: "Edit backend b1 of web", exact: true }))).toBe(true);
    const box = backend("b1").getByRole("checkbox", { name: "maintenance" });
    expect(await box.isChecked()).toBe(false);
    await box.click();
    await backend("b1").locator(".badge", { hasText: /^maintenance$/ }).waitFor();
    await backend("b1").locator("output", { hasText: /^0$/ }).waitFor();
    expect(await box.isChecked()).toBe(true);
    await service("web").locator(".note", { hasText: "weight 0: b1" }).waitFor();
    await page.locator(".activity li", { hasText: "maintenance on" }).first().waitFor(); // from the event stream
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.1.2:80") === 0);
    // The health checks keep running: still up, configured weight unchanged.
    expect(await backend("b1").locator(".badge.state-up").count()).toBe(1);
    expect(await backend("b1").locator(".weight").textContent()).toMatch(/\/100$/);
    await shot("maintenance");

    await box.click();
    await backend("b1").locator(".badge", { hasText: /^maintenance$/ }).waitFor({ state: "detached" });
    await backend("b1").locator("output", { hasText: /^100$/ }).waitFor();
    expect(await box.isChecked()).toBe(false);
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.1.2:80") === 100);
    await notReloaded();
  }, 120_000);

  test("Drain… with then keep holds the backend at weight 0 until Undrain; with then remove it leaves the page and the kernel", async () => {
    await service("web").getByRole("button", { name: "Add backend" }).click();
    const add = page.getByRole("form", { name: "Add backend form" });
    await add.getByLabel("backend id").fill("b3");
    await add.locator("#backend-form-host").fill("10.77.3.2");
    await add.locator("#backend-form-pulse-type").selectOption("none");
    await add.getByRole("button", { name: "Add backend" }).click();
    await backend("b3").waitFor();
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.3.2:80") === 100);

    // No connection ever went to b3: the drain ends at once and keeps it at weight 0.
    await backend("b3").getByRole("button", { name: "Drain backend b3 of web…", exact: true }).click();
    const ask = backend("b3").getByRole("group", { name: "Drain backend b3 of web" });
    expect(await focused(ask.getByRole("button", { name: "Start drain" }))).toBe(true);
    await page.keyboard.press("Escape"); // cancels, focus back on Drain…
    await ask.waitFor({ state: "detached" });
    expect(await focused(backend("b3").getByRole("button", { name: "Drain backend b3 of web…", exact: true }))).toBe(true);
    await page.keyboard.press("Enter");
    expect(await ask.getByLabel("at most").inputValue()).toBe("5m");
    // A deadline the API refuses: said in the row, under the field it names, which takes the focus; nothing drains.
    await ask.getByLabel("at most").fill("5 minutes");
    await ask.getByRole("button", { name: "Start drain" }).click();
    const refusal = ask.getByRole("alert");
    await refusal.filter({ hasText: /^400 VALIDATION: timeout: must be a duration/ }).waitFor();
    expect(await ask.getByLabel("at most").getAttribute("aria-invalid")).toBe("true");
    expect(await ask.getByLabel("at most").getAttribute("aria-describedby")).toBe(await refusal.getAttribute("id"));
    expect(await focused(ask.getByLabel("at most"))).toBe(true);
    expect(await page.locator(".notice.error").count()).toBe(0);
    expect(await backend("b3").getByTestId("drain").count()).toBe(0);
    await ask.getByLabel("at most").fill("5m");
    await ask.getByLabel("then").selectOption("keep");
    await ask.getByRole("button", { name: "Start drain" }).click();
    await backend("b3").getByTestId("drain").filter({ hasText: "drained: held at weight 0" }).waitFor();
    expect(await focused(backend("b3").getByRole("button", { name: "Undrain backend b3 of web", exact: true }))).toBe(true); // in Drain…'s place
    await backend("b3").locator("output", { hasText: /^0$/ }).waitFor();
    await page.locator(".activity li", { hasText: /drained.*then keep/ }).first().waitFor();
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.3.2:80") === 0);
    await shot("drained-keep");

    await backend("b3").getByRole("button", { name: "Undrain backend b3 of web", exact: true }).click();
    await backend("b3").getByTestId("drain").waitFor({ state: "detached" });
    expect(await focused(backend("b3").getByRole("button", { name: "Drain backend b3 of web…", exact: true }))).toBe(true);
    await backend("b3").locator("output", { hasText: /^100$/ }).waitFor();
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.3.2:80") === 100);

    // The default: remove once it is empty.
    await backend("b3").getByRole("button", { name: "Drain backend b3 of web…", exact: true }).click();
    await backend("b3").getByRole("group", { name: "Drain backend b3 of web" }).getByRole("button", { name: "Start drain" }).click();
    await backend("b3").waitFor({ state: "detached" });
    // Focus was on its Drain… button: it goes to the row before (b3 was the last), not to <body>.
    expect(await focused(backend("b2").getByRole("button", { name: "Edit backend b2 of web", exact: true }))).toBe(true);
    const listing = await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.3.2:80") === null);
    expect(kernelWeight(listing, `${VIP}:80`, "10.77.1.2:80")).toBe(100); // the others untouched
    expect(kernelWeight(listing, `${VIP}:80`, "10.77.2.2:80")).toBe(100);
    await notReloaded();
  }, 180_000);

  test("a sorry server: the row says when it serves, live, and the kernel has it while the only backend fails", async () => {
    const SHOP = "10.0.0.23:80";
    await page.getByRole("button", { name: "New service" }).click();
    const form = page.getByRole("form", { name: "Create service form" });
    await form.getByLabel("service id").fill("shop");
    await form.locator("#service-form-host").fill("10.0.0.23");
    await form.locator("#service-form-port").fill("80");
    await form.locator("#service-form-sorry_server-host").fill("10.77.3.2");
    await form.getByRole("button", { name: "Create service" }).click();
    // Created before its backends: the sorry server serves at once.
    const sorry = service("shop").locator(".why", { hasText: "sorry server 10.77.3.2:80 serves in place of the backends" });
    await sorry.waitFor();
    await kernelTable((l) => kernelWeight(l, SHOP, "10.77.3.2:80") === 1);

    await service("shop").getByRole("button", { name: "Add backend" }).click();
    const add = page.getByRole("form", { name: "Add backend form" });
    await add.getByLabel("backend id").fill("s1");
    await add.locator("#backend-form-host").fill("10.77.1.2");
    await add.locator("#backend-form-pulse-type").selectOption("http");
    await add.locator("#backend-form-pulse-interval").fill("2s");
    await add.getByRole("button", { name: "Add backend" }).click();
    await backend("s1", "shop").locator(".badge", { hasText: "up" }).waitFor();
    await sorry.waitFor({ state: "detached" });
    await kernelTable((l) => kernelWeight(l, SHOP, "10.77.3.2:80") === null && kernelWeight(l, SHOP, "10.77.1.2:80") === 100);

    // Its only backend fails its checks: the sorry server serves again, the backend is kept at weight 0.
    expect(await guestCommand("stop 1")).toContain("stopped be1");
    await sorry.waitFor();
    expect(await sorry.textContent()).toContain("(0 healthy)");
    await page.locator(".activity li", { hasText: /service\.quorum.*shop.*sorry server serves/ }).first().waitFor();
    const listing = await kernelTable((l) => kernelWeight(l, SHOP, "10.77.3.2:80") === 1 && kernelWeight(l, SHOP, "10.77.1.2:80") === 0);
    expect(virtualService(listing, SHOP)).toMatch(/->\s+10\.77\.3\.2:80\s+Masq\s+1\s/);
    await notReloaded();
    await shot("sorry");

    expect(await guestCommand("start 1")).toContain("started be1");
    await sorry.waitFor({ state: "detached" });
    await kernelTable((l) => kernelWeight(l, SHOP, "10.77.3.2:80") === null && (kernelWeight(l, SHOP, "10.77.1.2:80") ?? 0) > 0);
    await backend("b1").locator("output", { hasText: /^100$/ }).waitFor(); // web's b1 (same server) is back as well
  }, 240_000);

  test("Edit backend opened before another client's change: its save is refused (412) and changes nothing; opened again, it starts from the change and saves", async () => {
    const edit = backend("b1").getByRole("button", { name: "Edit backend b1 of web", exact: true });
    const form = page.getByRole("form", { name: "Save backend form" });
    const patch = (body: unknown) => fetch(`${API}/service/web/b1`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    await edit.click();
    await form.locator("#backend-form-upper_threshold").waitFor();
    expect((await patch({ weight: 30 })).status).toBe(200);
    await backend("b1").locator(".weight", { hasText: /\/30$/ }).waitFor();
    await form.locator("#backend-form-upper_threshold").fill("500");
    await form.getByRole("button", { name: "Save backend" }).click();
    await form.getByRole("alert").filter({ hasText: /^412 PRECONDITION_FAILED: backend "b1" of service "web" changed since it was read .*Cancel, then Edit again/ }).waitFor();
    expect(kernelWeight(await kernelTable(() => true), `${VIP}:80`, "10.77.1.2:80")).toBe(30);
    await form.getByRole("button", { name: "Cancel" }).click();
    await edit.click();
    expect(await form.locator("#backend-form-weight").inputValue()).toBe("30");
    await form.locator("#backend-form-upper_threshold").fill("500");
    await form.getByRole("button", { name: "Save backend" }).click();
    await form.waitFor({ state: "detached" });
    expect(await (await fetch(`${API}/service/web/b1`)).json()).toMatchObject({ options: { weight: 30, upper_threshold: 500 } });
    expect((await patch({ weight: 100, upper_threshold: null })).status).toBe(200);
    await backend("b1").locator("output", { hasText: /^100$/ }).waitFor();
  }, 120_000);

  test("below quorum: set from the Edit service form, said in the row live; the kernel keeps the weights (no sorry server)", async () => {
    const edit = async (quorum: string) => {
      await service("web").getByRole("button", { name: "Edit service" }).click();
      const form = page.getByRole("form", { name: "Save service form" });
      expect(await focused(form.locator("#service-form-host"))).toBe(true); // the first field one can change, not ×
      await form.locator("#service-form-quorum").fill(quorum);
      await form.getByRole("button", { name: "Save service" }).click();
      await form.waitFor({ state: "detached" });
    };
    await edit("3"); // two healthy backends: down
    const below = service("web").locator(".why", { hasText: "below quorum (2 healthy, quorum 3)" });
    await below.waitFor();
    await page.locator(".activity li", { hasText: /service\.quorum.*web.*down: 2 healthy, quorum 3/ }).first().waitFor();
    const listing = await kernelTable(() => true);
    expect(kernelWeight(listing, `${VIP}:80`, "10.77.1.2:80")).toBe(100);
    expect(kernelWeight(listing, `${VIP}:80`, "10.77.2.2:80")).toBe(100);
    await edit("0");
    await below.waitFor({ state: "detached" });
    await notReloaded();
  }, 120_000);

  test("a lost stream shows reconnecting; gorb back with a token: the page asks for it; when gorb is back the UI resumes, gets resync and re-reads, without a reload", async () => {
    expect(await guestCommand("gorb-stop")).toContain("gorb stopping");
    await page.locator(".stream-reconnecting").waitFor();
    await shot("reconnecting");
    // A one-click action gorb does not take (it is stopped: nothing answers) is refused where it was asked, under its
    // row's buttons (a service's, its card's), tied to the control, which keeps the focus; not at the top of the page.
    const weightZero = backend("b1").getByRole("button", { name: "Weight 0 for backend b1 of web", exact: true });
    await weightZero.click();
    const b1Refusal = backend("b1").getByRole("alert");
    await b1Refusal.filter({ hasText: /^Weight 0: NETWORK: gorb did not answer/ }).waitFor();
    expect(await weightZero.getAttribute("aria-describedby")).toBe(await b1Refusal.getAttribute("id"));
    expect(await focused(weightZero)).toBe(true);
    const box = backend("b2").getByRole("checkbox", { name: "maintenance for backend b2 of web", exact: true });
    await box.click();
    await backend("b2").getByRole("alert").filter({ hasText: /^maintenance on: NETWORK: / }).waitFor();
    expect(await box.isChecked()).toBe(false); // what gorb has
    expect(await focused(box)).toBe(true);
    const deleteB1 = backend("b1").getByRole("button", { name: "Delete backend b1 of web", exact: true });
    await deleteB1.click();
    await backend("b1").getByRole("button", { name: "Yes, delete backend b1 of web", exact: true }).click();
    await b1Refusal.filter({ hasText: /^Delete: NETWORK: / }).waitFor();
    expect(await deleteB1.getAttribute("aria-describedby")).toBe(await b1Refusal.getAttribute("id"));
    expect(await focused(deleteB1)).toBe(true);
    await service("web").getByRole("button", { name: "Delete service web", exact: true }).click();
    await service("web").getByRole("button", { name: "Yes, delete service web", exact: true }).click();
    await service("web").locator(":scope > [role=alert]").filter({ hasText: /^Delete service: NETWORK: / }).waitFor();
    expect(await focused(service("web").getByRole("button", { name: "Delete service web", exact: true }))).toBe(true);
    expect(await page.locator(".notice.error").count()).toBe(0);
    await shot("refused-in-place");

    // gorb back with a token (--token-file): the page, which had none, asks for it, the field focused.
    const tokenField = page.getByLabel("API token");
    const connect = async (token: string) => {
      await tokenField.fill(token);
      await tokenField.press("Enter");
    };
    expect(await guestCommand("gorb-start 1")).toContain("gorb starting");
    await page.getByText("This gorb needs an API token.").waitFor({ timeout: 120_000 });
    expect(await focused(tokenField)).toBe(true);
    await shot("token");
    // A wrong one: asked again, said as an alert tied to the field, which has the focus (it fell to <body>).
    await connect("token-9");
    const refused = page.getByRole("alert").filter({ hasText: "The token was refused; enter it again." });
    await refused.waitFor();
    expect(await tokenField.getAttribute("aria-describedby")).toBe(await refused.getAttribute("id"));
    expect(await focused(tokenField)).toBe(true);
    // The right one, sent while gorb is stopped again: the page cannot read its forms, says so, and reads them again
    // once gorb is back, without a reload (it waited for one, its stream never started).
    expect(await guestCommand("gorb-stop")).toContain("gorb stopping");
    await gorbGone();
    await connect("token-1");
    await page.locator(".notice.error", { hasText: /^cannot read \/openapi\.json: NETWORK: .*; trying again every 2 s/ }).waitFor();
    expect(await page.locator(".stream").textContent()).toBe("connecting");
    expect(await guestCommand("gorb-start 1")).toContain("gorb starting");
    await page.locator(".stream-live").waitFor({ timeout: 120_000 });
    await page.locator(".notice").waitFor({ state: "detached" });
    // Restarted with another token, gorb refuses the one the page has: it asks again.
    expect(await guestCommand("gorb-stop")).toContain("gorb stopping");
    expect(await guestCommand("gorb-start 2")).toContain("gorb starting");
    await refused.waitFor({ timeout: 120_000 });
    expect(await focused(tokenField)).toBe(true);
    await connect("token-2");
    await page.locator(".stream-live").waitFor();
    await notReloaded();
    // Events on this stream (it started afresh with the token), for the resume below: the maintenance refused while
    // gorb was stopped, asked again; its refusal goes.
    await box.click();
    await backend("b2").locator(".badge", { hasText: /^maintenance$/ }).waitFor();
    expect(await backend("b2").getByRole("alert").count()).toBe(0);
    await box.click();
    await page.locator(".activity li", { hasText: "maintenance off" }).filter({ hasText: "web/b2" }).waitFor();
    expect(await guestCommand("gorb-stop")).toContain("gorb stopping");
    await page.locator(".stream-reconnecting").waitFor();
    expect(await guestCommand("gorb-start")).toContain("gorb starting");
    await page.locator(".stream-live").waitFor({ timeout: 120_000 });
    // The last id it saw is from the previous run: gorb answers `resync`, and the UI reads the state again.
    await page.locator(".activity .type", { hasText: /^resync$/ }).waitFor();
    await backend("b1").locator(".badge", { hasText: "up" }).waitFor();
    await backend("b2").locator(".badge", { hasText: "up" }).waitFor();
    await notReloaded();
  }, 420_000);

  test("apply shows the plan before it changes anything; reconcile answers", async () => {
    await page.getByRole("button", { name: "Apply file" }).click();
    const set = { services: { api: { host: "10.0.0.22", port: 8080, method: "rr", backends: { a1: { host: "10.77.3.2", port: 80, pulse: { type: "none" } } } } } };
    await page.getByLabel(/Declarative set/).fill(JSON.stringify(set, null, 2));
    const applyButton = page.getByRole("button", { name: "Apply this plan" });
    expect(await applyButton.isDisabled()).toBe(true); // the plan comes first
    await page.getByRole("button", { name: "Show plan" }).click();
    const plan = page.locator("table.plan");
    await plan.locator("caption", { hasText: "Plan: 2 change(s), nothing changed yet" }).waitFor();
    expect(await plan.locator("tbody tr").allTextContents()).toEqual([expect.stringMatching(/^createapi/), expect.stringMatching(/^createapi\/a1/)]);
    expect(await kernelTable(() => true)).not.toContain("10.0.0.22");
    await shot("apply-plan");
    // Another client creates api between the plan shown and the click: the click plans again, shows the new plan
    // and applies nothing; the next click applies that plan.
    const other = await fetch(`${API}/service/api`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ host: "10.0.0.22", port: 8080, method: "wrr" }) });
    expect(other.status).toBe(200);
    await applyButton.click();
    await page.locator("#apply-warning", { hasText: /^The plan changed since it was shown .* nothing was applied\. new: update \u2068api\u2069 / }).waitFor(); // the id isolated, as the page draws ids in a sentence
    expect(await plan.locator("caption").textContent()).toMatch(/^Plan: 2 change\(s\), nothing changed yet/);
    expect(await plan.locator("tbody tr").allTextContents()).toEqual([expect.stringMatching(/^updateapi/), expect.stringMatching(/^createapi\/a1/)]);
    expect(await plan.locator("tbody tr td:nth-child(2) bdi.id").allTextContents()).toEqual(["api", "api", "a1"]); // each id its own <bdi>
    await applyButton.click();
    await plan.locator("caption", { hasText: "Applied: 2 change(s)" }).waitFor();
    expect(await page.locator("#apply-warning").count()).toBe(0); // it made the plan confirmed
    await page.keyboard.press("Escape");
    await service("api").waitFor();
    await kernelTable((l) => /TCP\s+10\.0\.0\.22:8080 rr/.test(l) && l.includes("10.77.3.2:80"));
    await page.getByRole("button", { name: "Reconcile" }).click();
    await page.locator(".notice", { hasText: /^reconcile: \d+ repair/ }).waitFor();
    await shot("main");
    // Dismiss (×) takes the notice away with the focus on it: focus goes back to where it was before (Reconcile).
    await page.getByRole("button", { name: "Dismiss" }).focus();
    await page.keyboard.press("Enter");
    await page.locator(".notice").waitFor({ state: "detached" });
    expect(await focused(page.getByRole("button", { name: "Reconcile" }))).toBe(true);
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("phone");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBe(0); // readable at phone width: nothing wider than the screen
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 120_000);

  test("a backend added right after its service is shown at once, and a deleted service does not come back, whatever order the page's reads are answered in", async () => {
    // The page's full reads are held, so no poll can mend what the event-driven reads leave; the service's first read
    // reads the service before its backend exists and is answered only once the backend's own read is over.
    const heldReads: (() => void)[] = [];
    const full = (url: URL) => url.pathname === "/service" && url.searchParams.get("detail") === "true";
    await page.route(full, async (route) => {
      await new Promise<void>((resume) => heldReads.push(resume));
      await route.continue().catch(() => undefined);
    });
    let firstRead = false;
    let fetched!: () => void;
    const serviceFetched = new Promise<void>((resolve) => (fetched = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const serviceRead = (url: URL) => url.pathname === "/service/late";
    await page.route(serviceRead, async (route) => {
      if (firstRead) return route.continue();
      firstRead = true;
      const response = await route.fetch();
      fetched();
      await released;
      await route.fulfill({ response });
    });
    let backendRead: Promise<unknown> | null = null;
    const onRequest = (request: { url(): string }) => {
      if (backendRead !== null || new URL(request.url()).pathname !== "/service/late/b1") return;
      backendRead = new Promise((resolve) => page.on("requestfinished", (r) => r === request && resolve(null)));
    };
    page.on("request", onRequest);
    const put = (path: string, body: unknown) => fetch(`${API}${path}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    try {
      expect((await put("/service/late", { host: "10.0.0.24", port: 80 })).status).toBe(200);
      await serviceFetched;
      expect((await put("/service/late/b1", { host: "10.77.3.2", port: 80, pulse: { type: "none" } })).status).toBe(200);
      await page.locator(".activity li", { hasText: "backend.created" }).filter({ hasText: "late/b1" }).waitFor();
      // Read as soon as its event came, the backend's answer is in before the service's (the order that lost it).
      if (backendRead !== null) await backendRead;
      release();
      await backend("b1", "late").waitFor();
      await notReloaded();
    } finally {
      release();
      page.off("request", onRequest);
      await page.unroute(serviceRead);
      await page.unroute(full);
      for (const resume of heldReads) resume();
    }
    expect((await fetch(`${API}/service/late`, { method: "DELETE" })).status).toBe(200);
    await service("late").waitFor({ state: "detached" });

    // Ids as another client may give them: a right-to-left service, a backend that starts with a digit, one with a
    // RIGHT-TO-LEFT OVERRIDE: every place that names them draws them as they are, in their order.
    const rtl = "שירות";
    const path = (...ids: string[]) => `/service/${ids.map(encodeURIComponent).join("/")}`;
    expect((await put(path(rtl), { host: "10.0.0.25", port: 80 })).status).toBe(200);
    expect((await put(path(rtl, "9"), { host: "10.77.1.2", port: 80, pulse: { type: "none" } })).status).toBe(200);
    expect((await put(path(rtl, "\u202Eb1"), { host: "10.77.2.2", port: 80, pulse: { type: "none" } })).status).toBe(200);
    await backend("\u202Eb1", rtl).locator(".chart-timeline").waitFor();
    // A chart's name shows the control as a mark, as the id above it does (it drew "1b" before the text).
    expect(await backend("\u202Eb1", rtl).locator(".chart-timeline").getAttribute("aria-label")).toBe("⟨U+202E⟩b1: effective weight and health over the last minutes");
    // Service, then backend, in the events list, the notice and the dialog's title, each id isolated from the other:
    // "שירות/9" drew 9 before the service, as if 9 were the service.
    const created = page.locator(".activity li", { hasText: "backend.created" }).filter({ hasText: rtl }).filter({ hasNotText: "U+202E" });
    expect(await drawnInOrder(created.first(), rtl, "9")).toBe(true);
    await backend("9", rtl).getByRole("checkbox", { name: "maintenance" }).click();
    const notice = page.locator(".notice", { hasText: "maintenance" });
    await notice.waitFor();
    expect(await drawnInOrder(notice, rtl, "9")).toBe(true);
    await backend("9", rtl).getByRole("button", { name: "Edit" }).click();
    expect(await drawnInOrder(page.locator("#dialog-title"), rtl, "9")).toBe(true);
    await page.keyboard.press("Escape");
    // A full read asked before the delete and answered after its event does not put the service back (CI saw its
    // card come back). The page asks for its next full read only once the one in flight is applied.
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    let asked!: () => void;
    const readBefore = new Promise<void>((resolve) => (asked = resolve));
    let askedAgain!: () => void;
    const nextRead = new Promise<void>((resolve) => (askedAgain = resolve));
    let fullReads = 0;
    await page.route(full, async (route) => {
      if (++fullReads > 1) {
        askedAgain();
        return route.continue();
      }
      const response = await route.fetch();
      asked();
      await answered;
      await route.fulfill({ response });
    });
    try {
      await readBefore;
      expect((await fetch(`${API}${path(rtl)}`, { method: "DELETE" })).status).toBe(200);
      await service(rtl).waitFor({ state: "detached" });
      answer();
      await nextRead;
      expect(await service(rtl).count()).toBe(0);
    } finally {
      answer();
      await page.unroute(full);
    }
  }, 120_000);

  test("delete everything through the UI: the kernel table is empty; focus goes to what comes next", async () => {
    // From the keyboard: the deleted row took the focus with it; it goes to the next row's first control.
    await backend("b1").getByRole("button", { name: "Delete backend b1 of web", exact: true }).focus();
    await page.keyboard.press("Enter");
    expect(await focused(backend("b1").getByRole("button", { name: "Yes, delete backend b1 of web", exact: true }))).toBe(true);
    await page.keyboard.press("Enter");
    await backend("b1").waitFor({ state: "detached" });
    expect(await focused(backend("b2").getByRole("button", { name: "Edit backend b2 of web", exact: true }))).toBe(true);
    await kernelTable((l) => kernelWeight(l, `${VIP}:80`, "10.77.1.2:80") === null);
    // A deleted service's card: focus goes to the next card's heading, and after the last one to New service.
    const order = await page.locator("[data-service]").evaluateAll((cards) => cards.map((card) => card.getAttribute("data-service") ?? ""));
    expect([...order].sort()).toEqual(["api", "shop", "web"]);
    for (const [i, id] of order.entries()) {
      await service(id).getByRole("button", { name: "Delete service" }).click();
      await service(id).getByRole("button", { name: "Yes, delete" }).click();
      await service(id).waitFor({ state: "detached" });
      const next = order[i + 1];
      expect(await focused(next === undefined ? page.getByRole("button", { name: "New service" }) : service(next).getByRole("heading", { level: 2 }))).toBe(true);
    }
    await page.locator(".empty").waitFor();
    const listing = await kernelTable((l) => !/^(TCP|UDP|SCTP|FWM)\s/m.test(l));
    expect(listing).not.toMatch(/^\s+->\s+\d/m); // no destination left either
    await notReloaded();
  }, 120_000);
});
