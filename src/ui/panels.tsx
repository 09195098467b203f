/**
 * The Apply panel (plan first, then apply), the Metrics panel (GET /metrics as scraped), the Fleet panel
 * (GET /cluster and GET /cluster/revision, its text from ./fleet.ts) and the BGP panel (GET /bgp); the last two
 * re-read every 2 s while open.
 */
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.ts";
import { ApiError, describeError } from "./errors.ts";
import { type FleetView, convergedText, drainLines, failedLines, splitLines } from "./fleet.ts";
import { type Change, appliedMessage, replanMessage } from "./plan.ts";
import { Id } from "./widgets.tsx";
import { visibleText } from "../contract/ids.ts";

/**
 * Paste or upload a set, Show plan (a dry run), then Apply this plan: it plans again first and applies only when
 * that plan is the one shown; else it shows the new plan and waits for a new click. After the apply it says when
 * the changes made were not the ones confirmed.
 */
export function ApplyPanel({ onDone }: { onDone: (message: string) => void }) {
  const [text, setText] = useState("");
  const [plan, setPlan] = useState<{ text: string; changes: Change[]; ok: boolean; dryRun: boolean } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [warning, setWarning] = useState<string | null>(null);
  const send = async (dryRun: boolean) => {
    setError(null);
    setWarning(null);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setError(`file: not JSON (${e instanceof Error ? e.message : String(e)}); YAML and TOML files go through gorb apply -f`);
      return;
    }
    const apply = async (dry: boolean) => (await call("apply", { body, ...(dry ? { query: { dry_run: "true" } } : {}) })) as { ok: boolean; changes: Change[] };
    const confirmed = plan?.changes ?? [];
    try {
      const planNow = await apply(true);
      const changed = dryRun ? null : replanMessage(confirmed, planNow.changes);
      if (dryRun || changed !== null) {
        setPlan({ text, changes: planNow.changes, ok: planNow.ok, dryRun: true });
        setWarning(changed);
        return;
      }
      const report = await apply(false);
      const drift = appliedMessage(confirmed, report.changes);
      setPlan({ text, changes: report.changes, ok: report.ok, dryRun: false });
      setWarning(drift);
      onDone(`apply: ${report.changes.length} change(s)${report.ok ? "" : ", some failed"}${drift === null ? "" : ", not the confirmed plan"}`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      setError(describeError(e));
    }
  };
  const planned = plan !== null && plan.dryRun && plan.text === text;
  return (
    <div class="apply">
      <label for="apply-text">Declarative set (JSON: {'{"services": {...}}'})</label>
      <textarea id="apply-text" rows={10} value={text} spellcheck={false} aria-invalid={error !== null} aria-describedby={error !== null ? "apply-error" : undefined} onInput={(e) => setText(e.currentTarget.value)} />
      <label for="apply-file">or upload a file</label>
      <input
        id="apply-file"
        type="file"
        accept=".json,application/json"
        onChange={async (e) => {
          const file = e.currentTarget.files?.[0];
          if (file !== undefined) setText(await file.text());
        }}
      />
      {error !== null && (
        <p id="apply-error" class="error" role="alert">
          {error}
        </p>
      )}
      {warning !== null && (
        <p id="apply-warning" class="error" role="alert">
          {warning}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={() => send(true)}>
          Show plan
        </button>
        <button type="button" class="primary" disabled={!planned} onClick={() => send(false)} title={planned ? "" : "show the plan first"}>
          Apply this plan
        </button>
      </div>
      {plan !== null && (
        <table class="plan">
          <caption>{plan.dryRun ? `Plan: ${plan.changes.length} change(s), nothing changed yet` : `Applied: ${plan.changes.length} change(s)`}</caption>
          <thead>
            <tr>
              <th scope="col">action</th>
              <th scope="col">target</th>
              <th scope="col">details</th>
              <th scope="col">status</th>
            </tr>
          </thead>
          <tbody>
            {plan.changes.map((c, i) => (
              <tr key={i} class={`change-${c.action} status-${c.status}`}>
                <td>{c.action}</td>
                <td>
                  <Id id={c.service} />
                  {c.backend !== null && (
                    <>
                      /<Id id={c.backend} />
                    </>
                  )}
                </td>
                <td>{c.details.join("; ")}</td>
                <td>{c.error === undefined ? c.status : `${c.status}: ${visibleText(c.error)}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function MetricsPanel() {
  const [text, setText] = useState("loading…");
  useEffect(() => {
    call("metrics").then(
      (t) => setText(String(t)),
      (e: unknown) => setText(e instanceof ApiError ? describeError(e) : String(e)),
    );
  }, []);
  return <pre class="metrics">{text}</pre>;
}


interface BgpVip {
  readonly vip: string;
  readonly prefix: string;
  readonly services: readonly string[];
  readonly healthy: boolean;
  readonly state: string;
  readonly wanted: boolean;
  readonly confirmed: boolean;
  readonly error: string | null;
}

interface BgpView {
  readonly speaker: { readonly reachable: boolean; readonly version: string | null; readonly lastError: string | null };
  readonly vips: readonly BgpVip[];
}

/** Per VIP: wanted by gorb, confirmed by BIRD, the last error; "BGP is off" when the daemon has no BIRD socket. */
export function BgpPanel() {
  const { value: view, error } = usePolled(async () => (await call("bgp")) as BgpView);
  if (error !== null) return <p class="error" role="alert">{error}</p>;
  if (view === null) return <p>loading…</p>;
  return (
    <div class="bgp">
      <p>
        BIRD: {view.speaker.reachable ? `reachable${view.speaker.version === null ? "" : ` (${view.speaker.version})`}` : "not reachable"}
        {view.speaker.lastError !== null && <span class="why"> {view.speaker.lastError}</span>}
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">prefix</th>
            <th scope="col">services</th>
            <th scope="col">state</th>
            <th scope="col">wanted</th>
            <th scope="col">confirmed</th>
            <th scope="col">error</th>
          </tr>
        </thead>
        <tbody>
          {view.vips.map((v) => (
            <tr key={v.prefix} class={v.wanted === v.confirmed ? "" : "degraded"}>
              <td>{v.prefix}</td>
              <td>{v.services.join(", ")}</td>
              <td>{v.state}</td>
              <td>{v.wanted ? "yes" : "no"}</td>
              <td>{v.confirmed ? "yes" : "no"}</td>
              <td>{v.error ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {view.vips.length === 0 && <p class="empty">No VIP to announce.</p>}
    </div>
  );
}

/** Re-read `read` every 2 s while the panel is open; an API error is shown as the API gave it. */
function usePolled<T>(read: () => Promise<T>): { value: T | null; error: string | null } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const once = () =>
      read().then(
        (v) => {
          if (stopped) return;
          setValue(v);
          setError(null);
        },
        (e: unknown) => {
          if (!stopped) setError(e instanceof ApiError ? describeError(e) : String(e));
        },
      );
    void once();
    const timer = setInterval(() => void once(), 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  return { value, error };
}

/**
 * Every node of the fleet, converged or not, the services a node could not apply (and since which revision), the
 * backends being drained (each node's connections left), and the backends whose health differs between nodes.
 */
export function FleetPanel() {
  const { value, error } = usePolled(async () => {
    const [view, revision] = await Promise.all([call("cluster"), call("clusterRevision")]);
    return { view: view as FleetView, applied: (revision as { applied: number }).applied };
  });
  if (error !== null) return <p class="error" role="alert">{error}</p>;
  if (value === null) return <p>loading…</p>;
  const { view, applied } = value;
  const failed = failedLines(view);
  const drains = drainLines(view);
  const splits = splitLines(view);
  return (
    <div class="fleet">
      <p>
        This node: {view.node}, applied revision {applied} (latest change of the services: revision {view.revision}); store {view.store.state}
        {view.store.lastError !== null && <span class="why"> {view.store.lastError}</span>}
      </p>
      {view.nodes_error !== undefined && view.nodes_error !== null && (
        <p class="error" role="alert">
          The nodes are not known: {view.nodes_error}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">node</th>
            <th scope="col">address</th>
            <th scope="col">version</th>
            <th scope="col">applied</th>
            <th scope="col">store</th>
            <th scope="col">converged</th>
          </tr>
        </thead>
        <tbody>
          {view.nodes.map((n) => (
            <tr key={n.node} class={n.converged ? "" : "degraded"}>
              <td>{n.node}</td>
              <td>{n.address}</td>
              <td>{n.version}</td>
              <td>{n.appliedRevision}</td>
              <td>{n.store}</td>
              <td>{convergedText(n)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {failed.length > 0 && (
        <>
          <h3>Services a node could not apply</h3>
          <p class="note">The node's kernel refused them; the node tries again with the next change and each relist.</p>
          <ul>
            {failed.map((line) => (
              <li key={line} class="why">
                {line}
              </li>
            ))}
          </ul>
        </>
      )}
      {drains.length > 0 && (
        <>
          <h3>Backends being drained</h3>
          <p class="note">Each node's connections left. The drain ends once every node has none left, or at its deadline.</p>
          <ul>
            {drains.map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
        </>
      )}
      <h3>Health that differs between nodes</h3>
      {splits.length === 0 ? (
        <p class="empty">Every backend has the same health on every node.</p>
      ) : (
        <ul>
          {splits.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
