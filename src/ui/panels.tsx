/**
 * The Apply panel (plan first, then apply), the Metrics panel (GET /metrics as scraped) and the BGP panel
 * (GET /bgp, re-read every 2 s while open).
 */
import { useEffect, useState } from "preact/hooks";
import { call } from "./api.ts";
import { ApiError, describeError } from "./errors.ts";

interface Change {
  readonly action: string;
  readonly service: string;
  readonly backend: string | null;
  readonly details: readonly string[];
  readonly status: string;
  readonly error?: string;
}

export function ApplyPanel({ onDone }: { onDone: (message: string) => void }) {
  const [text, setText] = useState("");
  const [plan, setPlan] = useState<{ text: string; changes: Change[]; ok: boolean; dryRun: boolean } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const send = async (dryRun: boolean) => {
    setError(null);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      setError(`file: not JSON (${e instanceof Error ? e.message : String(e)}); YAML and TOML files go through gorb apply -f`);
      return;
    }
    try {
      const report = (await call("apply", { body, ...(dryRun ? { query: { dry_run: "true" } } : {}) })) as { ok: boolean; changes: Change[] };
      setPlan({ text, changes: report.changes, ok: report.ok, dryRun });
      if (!dryRun) onDone(`apply: ${report.changes.length} change(s)${report.ok ? "" : ", some failed"}`);
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
                <td>{c.backend === null ? c.service : `${c.service}/${c.backend}`}</td>
                <td>{c.details.join("; ")}</td>
                <td>{c.error === undefined ? c.status : `${c.status}: ${c.error}`}</td>
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
  const [view, setView] = useState<BgpView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const read = () =>
      call("bgp").then(
        (v) => {
          if (stopped) return;
          setView(v as BgpView);
          setError(null);
        },
        (e: unknown) => {
          if (!stopped) setError(e instanceof ApiError ? describeError(e) : String(e));
        },
      );
    void read();
    const timer = setInterval(() => void read(), 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
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
