/**
 * The web UI's one page: a header with the stream's state and the global actions (new service, apply a file,
 * reconcile, metrics), one card per service (degraded ones first, with why), its rates, and its backends with
 * their timelines and actions (edit, drain, restore, delete). Everything goes through the REST API (./api.ts);
 * the event stream patches what changed, and a read every few seconds samples the rates.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { call, saveToken, savedToken } from "./api.ts";
import { ApiError, describeError } from "./errors.ts";
import { Chart } from "./charts.tsx";
import { followEvents, type StreamStatus } from "./events.ts";
import { flatten } from "./form-body.ts";
import { EntityForm } from "./forms.tsx";
import { type Forms, formsOf } from "./schema.ts";
import { type BackendView, type HealthState, type ServiceView, Store } from "./store.ts";

/** Seconds between two full reads (the rates and counters have no events). */
const POLL_MS = 3000;

type Dialog =
  | { kind: "new-service" }
  | { kind: "edit-service"; service: ServiceView }
  | { kind: "new-backend"; service: string }
  | { kind: "edit-backend"; service: string; backend: BackendView }
  | { kind: "apply" }
  | { kind: "metrics" }
  | null;

function useStore(store: Store): number {
  const [tick, setTick] = useState(0);
  useEffect(() => store.subscribe(() => setTick((t) => t + 1)), [store]);
  return tick;
}

/** A modal <dialog>: Escape and the Close button close it; focus goes into it. */
function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el !== null && !el.open) el.showModal();
  }, []);
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="dialog-title">
      <header class="dialog-head">
        <h2 id="dialog-title">{title}</h2>
        <button type="button" class="close" onClick={onClose} aria-label="Close">
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

function TokenPrompt({ message, onToken }: { message: string; onToken: (token: string) => void }) {
  const [token, setToken] = useState("");
  return (
    <main class="token">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onToken(token.trim());
        }}
      >
        <h1>gorb</h1>
        <p>{message}</p>
        <label for="token">API token</label>
        <input id="token" type="password" autoComplete="off" autoFocus value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <p class="help">Kept for this tab only (sessionStorage) and sent as an Authorization header.</p>
        <button type="submit" class="primary">
          Connect
        </button>
      </form>
    </main>
  );
}

function StateBadge({ state }: { state: HealthState }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

function address(s: ServiceView): string {
  const o = s.options;
  if (typeof o.fwmark === "number" && o.fwmark > 0) return `fwmark ${o.fwmark} (${String(o.family)})`;
  const host = String(o.address ?? o.host);
  return `${o.protocol} ${host.includes(":") ? `[${host}]` : host}:${o.port}`;
}

function ConfirmButton({ label, confirm, onConfirm }: { label: string; confirm: string; onConfirm: () => void }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" class="danger" onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={confirm}>
      <span>{confirm}</span>
      <button type="button" class="danger" autoFocus onClick={() => { setAsking(false); onConfirm(); }}>
        Yes, delete
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        No
      </button>
    </span>
  );
}

interface Actions {
  run: (what: string, task: () => Promise<unknown>) => Promise<void>;
  open: (dialog: Dialog) => void;
}

function BackendRow({ store, service, b, actions }: { store: Store; service: string; b: BackendView; actions: Actions }) {
  const key = Store.key(service, b.id);
  const series = store.timelines.get(key);
  const drained = b.options.weight === 0;
  const drain = () =>
    actions.run(`drain ${key}`, async () => {
      store.drainedFrom.set(key, b.options.weight);
      await call("updateBackend", { params: { service, backend: b.id }, body: { weight: 0 } });
    });
  const restore = () =>
    actions.run(`restore ${key}`, () => call("updateBackend", { params: { service, backend: b.id }, body: { weight: store.drainedFrom.get(key) ?? 100 } }));
  return (
    <li class={`backend state-${b.metrics.state}`} data-backend={b.id}>
      <div class="backend-head">
        <strong class="name">{b.id}</strong>
        <span class="addr">
          {b.options.host}:{b.options.port} · {b.options.method}
        </span>
        <StateBadge state={b.metrics.state} />
        <span class="weight" title="effective weight / configured weight">
          weight <output data-testid="effective-weight">{b.effective_weight}</output>/{b.options.weight}
        </span>
        <span class="conns">{b.active_conns ?? "–"} active</span>
      </div>
      {b.metrics.state === "down" && b.metrics.message !== "" && <p class="why">{b.metrics.message}</p>}
      {series !== undefined && <Chart series={series} kind="timeline" label={`${b.id}: effective weight and health over the last minutes`} />}
      <div class="buttons">
        <button type="button" onClick={() => actions.open({ kind: "edit-backend", service, backend: b })}>
          Edit
        </button>
        {drained ? (
          <button type="button" onClick={restore}>
            Restore
          </button>
        ) : (
          <button type="button" onClick={drain}>
            Drain
          </button>
        )}
        <ConfirmButton
          label="Delete"
          confirm={`Delete backend ${b.id}?`}
          onConfirm={() => actions.run(`delete ${key}`, () => call("deleteBackend", { params: { service, backend: b.id } }))}
        />
      </div>
    </li>
  );
}

function ServiceCard({ store, s, actions }: { store: Store; s: ServiceView; actions: Actions }) {
  const down = s.backend_details.filter((b) => b.metrics.state === "down");
  const drained = s.backend_details.filter((b) => b.effective_weight === 0 && b.metrics.state !== "down");
  const rates = store.rates.get(s.id);
  return (
    <section class={`service${down.length > 0 ? " degraded" : ""}`} data-service={s.id} aria-labelledby={`svc-${s.id}`}>
      <header>
        <h2 id={`svc-${s.id}`}>{s.id}</h2>
        <span class="addr">
          {address(s)} · {s.options.method}
        </span>
        <span class="health" title="mean health of the checked backends">
          health {Math.round(s.health * 100)}%
        </span>
        <span class="conns">{s.stats === null ? "" : `${s.stats.cps} conn/s`}</span>
      </header>
      {down.length > 0 && (
        <p class="why" role="status">
          degraded: {down.map((b) => `${b.id} down${b.metrics.message === "" ? "" : ` (${b.metrics.message})`}`).join(", ")}
        </p>
      )}
      {drained.length > 0 && <p class="note">weight 0: {drained.map((b) => b.id).join(", ")}</p>}
      {rates !== undefined && <Chart series={rates} kind="rates" label={`${s.id}: connections and packets per second over the last minutes`} />}
      <ul class="backends">
        {s.backend_details.map((b) => (
          <BackendRow key={b.id} store={store} service={s.id} b={b} actions={actions} />
        ))}
      </ul>
      <div class="buttons">
        <button type="button" onClick={() => actions.open({ kind: "new-backend", service: s.id })}>
          Add backend
        </button>
        <button type="button" onClick={() => actions.open({ kind: "edit-service", service: s })}>
          Edit service
        </button>
        <ConfirmButton label="Delete service" confirm={`Delete ${s.id} and its backends?`} onConfirm={() => actions.run(`delete ${s.id}`, () => call("deleteService", { params: { service: s.id } }))} />
      </div>
    </section>
  );
}

interface Change {
  readonly action: string;
  readonly service: string;
  readonly backend: string | null;
  readonly details: readonly string[];
  readonly status: string;
  readonly error?: string;
}

function ApplyPanel({ onDone }: { onDone: (message: string) => void }) {
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

function MetricsPanel() {
  const [text, setText] = useState("loading…");
  useEffect(() => {
    call("metrics").then(
      (t) => setText(String(t)),
      (e: unknown) => setText(e instanceof ApiError ? describeError(e) : String(e)),
    );
  }, []);
  return <pre class="metrics">{text}</pre>;
}

export function App() {
  const store = useMemo(() => new Store(), []);
  useStore(store);
  const [forms, setForms] = useState<Forms | null>(null);
  const [needToken, setNeedToken] = useState<string | null>(null);
  const [stream, setStream] = useState<{ status: StreamStatus; detail: string }>({ status: "connecting", detail: "" });
  const [dialog, setDialog] = useState<Dialog>(null);
  const [notice, setNotice] = useState<{ text: string; error: boolean } | null>(null);
  const [attempt, setAttempt] = useState(0);

  const reload = async () => {
    const detail = (await call("listServices", { query: { detail: "true" } })) as ServiceView[];
    store.setAll(detail);
  };
  const run = async (what: string, task: () => Promise<unknown>) => {
    try {
      const said = await task();
      setNotice({ text: typeof said === "string" ? said : `${what}: done`, error: false });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setNotice({ text: `${what}: ${describeError(error)}`, error: true });
    }
  };
  const actions: Actions = { run, open: setDialog };

  // The forms' fields, which also tells whether a token is needed.
  useEffect(() => {
    call("openapi").then(
      (doc) => {
        setNeedToken(null);
        setForms(formsOf(doc));
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 401) setNeedToken(savedToken() === null ? "This gorb needs an API token." : "The token was refused; enter it again.");
        else setNotice({ text: `cannot read /openapi.json: ${error instanceof ApiError ? describeError(error) : String(error)}`, error: true });
      },
    );
  }, [attempt]);

  // The event stream patches what changed; a full read at (re)open without a position and on resync.
  useEffect(() => {
    if (forms === null) return;
    const refreshService = async (id: string) => {
      try {
        const info = (await call("getService", { params: { service: id } })) as Omit<ServiceView, "id" | "backend_details">;
        store.putService(id, info);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) store.removeService(id);
      }
    };
    const refreshBackend = async (service: string, backend: string) => {
      try {
        const info = (await call("getBackend", { params: { service, backend } })) as Omit<BackendView, "id">;
        store.putBackend(service, { ...info, id: backend });
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) store.removeBackend(service, backend);
      }
    };
    const stop = followEvents({
      onOpen: (resumed) => {
        if (!resumed) void reload().catch(() => {});
      },
      onStatus: (status, detail) => {
        setStream({ status, detail });
        if (status === "unauthorized") {
          setForms(null);
          setNeedToken("The token was refused; enter it again.");
        }
      },
      onEvent: (type, data) => {
        const service = String(data.service ?? "");
        const backend = typeof data.backend === "string" ? data.backend : null;
        const time = typeof data.time === "string" ? Date.parse(data.time) / 1000 : Date.now() / 1000;
        const target = backend === null ? service : `${service}/${backend}`;
        let detail = "";
        switch (type) {
          case "resync":
            void reload().catch(() => {});
            detail = String(data.reason ?? "");
            break;
          case "service.created":
          case "service.changed":
            void refreshService(service);
            break;
          case "service.deleted":
            store.removeService(service);
            break;
          case "backend.created":
          case "backend.changed":
            if (backend !== null) void refreshBackend(service, backend).then(() => refreshService(service));
            break;
          case "backend.deleted":
            if (backend !== null) store.removeBackend(service, backend);
            break;
          case "backend.weight":
            if (backend !== null) store.patchBackend(service, backend, { weight: Number(data.to), configured: Number(data.configured) }, time);
            detail = `${String(data.from)} → ${String(data.to)} (configured ${String(data.configured)})`;
            break;
          case "backend.health":
            if (backend !== null) store.patchBackend(service, backend, { state: data.to as HealthState, message: String(data.message ?? "") }, time);
            detail = `${String(data.from)} → ${String(data.to)}${data.message ? `: ${String(data.message)}` : ""}`;
            break;
          case "reconcile.repair":
            void refreshService(service);
            detail = `${String(data.reason ?? "")} (${String(data.status ?? "")})`;
            break;
          default:
            break;
        }
        store.log({ time: typeof data.time === "string" ? data.time : new Date().toISOString(), type, target, detail });
      },
    });
    // Not while the tab is hidden: nobody looks, and a big table is not worth reading every 3 s for nothing.
    const timer = setInterval(() => {
      if (!document.hidden) void reload().catch(() => {});
    }, POLL_MS);
    return () => {
      stop();
      clearInterval(timer);
    };
  }, [forms]);

  if (needToken !== null) {
    return (
      <TokenPrompt
        message={needToken}
        onToken={(token) => {
          saveToken(token === "" ? null : token);
          setNeedToken(null);
          setAttempt((a) => a + 1);
        }}
      />
    );
  }

  const services = [...store.services].sort((a, b) => {
    const da = a.backend_details.some((x) => x.metrics.state === "down") ? 0 : 1;
    const db = b.backend_details.some((x) => x.metrics.state === "down") ? 0 : 1;
    return da - db || a.id.localeCompare(b.id);
  });
  const backends = services.reduce((n, s) => n + s.backend_details.length, 0);
  const down = services.reduce((n, s) => n + s.backend_details.filter((b) => b.metrics.state === "down").length, 0);
  const close = () => setDialog(null);
  const submitted = (text: string) => {
    setDialog(null);
    setNotice({ text, error: false });
  };

  return (
    <>
      <header class="top">
        <h1>gorb</h1>
        <span class={`stream stream-${stream.status}`} role="status" aria-live="polite" title={stream.detail}>
          {stream.status === "live" ? "live" : stream.status === "reconnecting" ? "reconnecting…" : stream.status}
        </span>
        <span class="summary">
          {services.length} services · {backends} backends · <span class={down > 0 ? "bad" : ""}>{down} down</span>
        </span>
        <nav class="buttons" aria-label="actions">
          <button type="button" class="primary" disabled={forms === null} onClick={() => setDialog({ kind: "new-service" })}>
            New service
          </button>
          <button type="button" onClick={() => setDialog({ kind: "apply" })}>
            Apply file
          </button>
          <button type="button" onClick={() => run("reconcile", async () => {
            const report = (await call("reconcile")) as { repairs: readonly unknown[] };
            return `reconcile: ${report.repairs.length} repair(s)`;
          })}>
            Reconcile
          </button>
          <button type="button" onClick={() => setDialog({ kind: "metrics" })}>
            Metrics
          </button>
        </nav>
      </header>
      {notice !== null && (
        <p class={`notice${notice.error ? " error" : ""}`} role={notice.error ? "alert" : "status"}>
          {notice.text}
          <button type="button" class="close" aria-label="Dismiss" onClick={() => setNotice(null)}>
            ×
          </button>
        </p>
      )}
      <main class="layout">
        <div class="services">
          {services.length === 0 && <p class="empty">No services yet. Create one, or apply a file.</p>}
          {services.map((s) => (
            <ServiceCard key={s.id} store={store} s={s} actions={actions} />
          ))}
        </div>
        <aside class="activity" aria-label="recent events">
          <h2>Events</h2>
          <ol>
            {store.activity.map((a, i) => (
              <li key={`${a.time}-${i}`}>
                <time dateTime={a.time}>{new Date(a.time).toLocaleTimeString()}</time> <span class="type">{a.type}</span> {a.target} <span class="detail">{a.detail}</span>
              </li>
            ))}
          </ol>
        </aside>
      </main>
      {dialog !== null && forms !== null && dialog.kind === "new-service" && (
        <Modal title="New service" onClose={close}>
          <EntityForm what="service" fields={forms.service} id={null} initial={null} submitLabel="Create service" onCancel={close}
            onSubmit={async (id, body) => { await call("createService", { params: { service: id }, body }); submitted(`service ${id} created`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "edit-service" && (
        <Modal title={`Edit service ${dialog.service.id}`} onClose={close}>
          <EntityForm what="service" fields={forms.service} id={dialog.service.id} initial={flatten(forms.service, dialog.service.options)} submitLabel="Save service" onCancel={close}
            onSubmit={async (id, body) => { await call("updateService", { params: { service: id }, body }); submitted(`service ${id} changed`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "new-backend" && (
        <Modal title={`Add a backend to ${dialog.service}`} onClose={close}>
          <EntityForm what="backend" fields={forms.backend} id={null} initial={null} submitLabel="Add backend" onCancel={close}
            onSubmit={async (id, body) => { await call("createBackend", { params: { service: dialog.service, backend: id }, body }); submitted(`backend ${dialog.service}/${id} added`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "edit-backend" && (
        <Modal title={`Edit backend ${dialog.service}/${dialog.backend.id}`} onClose={close}>
          <EntityForm what="backend" fields={forms.backend} id={dialog.backend.id} initial={flatten(forms.backend, dialog.backend.options)} submitLabel="Save backend" onCancel={close}
            onSubmit={async (id, body) => { await call("updateBackend", { params: { service: dialog.service, backend: id }, body }); submitted(`backend ${dialog.service}/${id} changed`); }} />
        </Modal>
      )}
      {dialog?.kind === "apply" && (
        <Modal title="Apply a declarative file" onClose={close}>
          <ApplyPanel onDone={(text) => setNotice({ text, error: false })} />
        </Modal>
      )}
      {dialog?.kind === "metrics" && (
        <Modal title="Metrics (GET /metrics)" onClose={close}>
          <MetricsPanel />
        </Modal>
      )}
    </>
  );
}
