/**
 * The web UI's one page: a header with the stream's state and the global actions (new service, apply a file,
 * reconcile, metrics), one card per service (degraded ones first, with why), its rates, and its backends with
 * their timelines and actions (edit, weight 0, restore, maintenance, drain, undrain, delete). Everything goes through the REST API (./api.ts);
 * the event stream patches what changed, and a read every few seconds samples the rates.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call, saveToken, savedToken } from "./api.ts";
import { ApiError, describeError } from "./errors.ts";
import { followEvents, type StreamStatus } from "./events.ts";
import { flatten } from "./form-body.ts";
import { Freshness } from "./freshness.ts";
import { InOrder } from "./in-order.ts";
import { isolatedId, visibleText } from "../contract/ids.ts";
import { EntityForm } from "./forms.tsx";
import { ApplyPanel, BgpPanel, FleetPanel, MetricsPanel } from "./panels.tsx";
import { type ReadFailure, Reads } from "./reads.ts";
import { type Actions, type Dialog, ServiceCard, nextRow } from "./services.tsx";
import { isDegraded } from "./service-notes.ts";
import { type Forms, formsOf } from "./schema.ts";
import { type BackendView, type HealthState, type ServiceView, Store } from "./store.ts";
import { Id, Modal, TokenPrompt, useFocusRescue } from "./widgets.tsx";

/** Milliseconds between two full reads (the rates and counters have no events). */
const POLL_MS = 3000;
/** Milliseconds between two reads of the forms (GET /openapi.json) while it fails (gorb stopped or starting). */
const FORMS_RETRY_MS = 2000;

function useStore(store: Store): number {
  const [tick, setTick] = useState(0);
  useEffect(() => store.subscribe(() => setTick((t) => t + 1)), [store]);
  return tick;
}

/** The page. */
export function App() {
  const store = useMemo(() => new Store(), []);
  useStore(store);
  const [forms, setForms] = useState<Forms | null>(null);
  // Why the token prompt shows: none was given, or the one given was refused (a wrong one, or gorb restarted with another).
  const [needToken, setNeedToken] = useState<"missing" | "refused" | null>(null);
  const askToken = () => setNeedToken(savedToken() === null ? "missing" : "refused");
  const [stream, setStream] = useState<{ status: StreamStatus; detail: string }>({ status: "connecting", detail: "" });
  const [dialog, setDialog] = useState<Dialog>(null);
  // `forms`: the notice says the forms cannot be read; it goes once they are.
  const [notice, setNotice] = useState<{ text: string; error: boolean; forms?: true } | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [stale, setStale] = useState<ReadFailure | null>(null);
  // A service deleted while focus was in its card: focus goes to the next card's heading, else the one before's,
  // else New service.
  const list = useRef<HTMLDivElement>(null);
  const newService = useRef<HTMLButtonElement>(null);
  const beforeNotice = useRef<HTMLElement | null>(null);
  const cards = (root: HTMLElement) => new Map([...root.querySelectorAll<HTMLElement>(":scope > [data-service]")].map((card) => [card.getAttribute("data-service") ?? "", card]));
  useFocusRescue(
    list,
    (focused, root) => ({ card: focused.closest("[data-service]")?.getAttribute("data-service") ?? null, order: [...cards(root).keys()] }),
    ({ card, order }, root) => {
      const now = cards(root);
      const next = card === null ? null : (now.get(card) ?? nextRow(order, card, now));
      return next?.querySelector<HTMLElement>("h2") ?? newService.current;
    },
  );

  // Events counted per service and per backend, and deletions of each: a read answered after one of them is older
  // than what the page shows (./freshness.ts).
  const events = useMemo(() => new Freshness(), []);
  const deletions = useMemo(() => new Freshness(), []);
  // backend.weight events per backend, the ones that carry its configured weight.
  const weights = useMemo(() => new Freshness(), []);
  const reload = async () => {
    const mark = events.begin();
    const gone = deletions.begin();
    try {
      const detail = (await call("listServices", { query: { detail: "true" } })) as ServiceView[];
      store.setAll(detail, Date.now() / 1000, (id) => events.newer(id, mark), (id) => deletions.newer(id, gone));
    } finally {
      events.end(mark);
      deletions.end(gone);
    }
  };
  const run = async (what: string, task: () => Promise<unknown>, inPlace = false) => {
    try {
      const said = await task();
      setNotice({ text: typeof said === "string" ? said : `${what}: done`, error: false });
      return null;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (!inPlace) setNotice({ text: `${what}: ${describeError(error)}`, error: true });
      return error;
    }
  };
  const actions: Actions = { run, open: setDialog };

  // The forms' fields, which also tells whether a token is needed. Read again every 2 s while it fails otherwise
  // (gorb stopped, or starting: 503): the page waited for a reload, its stream never started.
  useEffect(() => {
    let gone = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    call("openapi").then(
      (doc) => {
        if (gone) return;
        setNeedToken(null);
        setForms(formsOf(doc));
        setNotice((n) => (n?.forms === true ? null : n));
      },
      (error: unknown) => {
        if (gone) return;
        if (error instanceof ApiError && error.status === 401) {
          askToken();
          return;
        }
        setNotice({ text: `cannot read /openapi.json: ${visibleText(error instanceof ApiError ? describeError(error) : String(error))}; trying again every ${FORMS_RETRY_MS / 1000} s`, error: true, forms: true });
        retry = setTimeout(() => setAttempt((a) => a + 1), FORMS_RETRY_MS);
      },
    );
    return () => {
      gone = true;
      clearTimeout(retry);
    };
  }, [attempt]);

  // The event stream patches what changed; a full read at (re)open without a position and on resync.
  useEffect(() => {
    if (forms === null) return;
    const reads = new Reads(reload, {
      report: setStale,
      describe: (error) => (error instanceof ApiError ? describeError(error) : error instanceof Error ? error.message : String(error)),
    });
    // A service's reads and its backends' are applied in the order their events came (./in-order.ts).
    const inOrder = new InOrder();
    // A read started before the service (or the backend) was deleted does not put it back.
    const refreshService = (id: string) =>
      inOrder.run(id, async () => {
        const mark = deletions.begin();
        try {
          const info = (await call("getService", { params: { service: id } })) as Omit<ServiceView, "id" | "backend_details">;
          if (!deletions.newer(id, mark)) store.putService(id, info);
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) store.removeService(id);
        } finally {
          deletions.end(mark);
        }
      });
    const refreshBackend = (service: string, backend: string) =>
      inOrder.run(service, async () => {
        const key = Store.key(service, backend);
        const mark = deletions.begin();
        const eventsMark = events.begin();
        const weightsMark = weights.begin();
        try {
          const info = (await call("getBackend", { params: { service, backend } })) as Omit<BackendView, "id">;
          if (!deletions.newer(service, mark) && !deletions.newer(key, mark)) {
            store.putBackend(service, { ...info, id: backend }, Date.now() / 1000, { olderThanEvents: events.newer(key, eventsMark), olderThanWeight: weights.newer(key, weightsMark) });
          }
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) store.removeBackend(service, backend);
        } finally {
          deletions.end(mark);
          events.end(eventsMark);
          weights.end(weightsMark);
        }
      });
    const stop = followEvents({
      onOpen: (resumed) => {
        if (!resumed) void reads.request();
      },
      onStatus: (status, detail) => {
        setStream({ status, detail });
        if (status === "unauthorized") {
          setForms(null);
          askToken();
        }
      },
      onEvent: (type, data) => {
        const service = String(data.service ?? "");
        const backend = typeof data.backend === "string" ? data.backend : null;
        const time = typeof data.time === "string" ? Date.parse(data.time) / 1000 : Date.now() / 1000;
        let detail = "";
        if (service !== "") events.touch(service);
        if (backend !== null) events.touch(Store.key(service, backend));
        switch (type) {
          case "resync":
            void reads.request();
            detail = String(data.reason ?? "");
            break;
          case "service.created":
          case "service.changed":
            void refreshService(service);
            break;
          case "service.deleted":
            deletions.touch(service);
            store.removeService(service);
            break;
          case "backend.created":
          case "backend.changed":
            if (backend !== null) void refreshBackend(service, backend).then(() => refreshService(service));
            break;
          case "backend.deleted":
            if (backend !== null) {
              deletions.touch(Store.key(service, backend));
              store.removeBackend(service, backend);
            }
            break;
          case "backend.weight":
            if (backend !== null) weights.touch(Store.key(service, backend));
            if (backend !== null) store.patchBackend(service, backend, { weight: Number(data.to), configured: Number(data.configured) }, time);
            detail = `${String(data.from)} → ${String(data.to)} (configured ${String(data.configured)})`;
            break;
          case "backend.health":
            if (backend !== null) store.patchBackend(service, backend, { state: data.to as HealthState, message: String(data.message ?? "") }, time);
            detail = `${String(data.from)} → ${String(data.to)}${data.message ? `: ${String(data.message)}` : ""}`;
            break;
          case "backend.drain":
          case "backend.maintenance":
            // A drain that ends removes the backend (the GET answers 404) or keeps it at weight 0 (its row says so);
            // either way the service's counts change too.
            if (backend !== null) void refreshBackend(service, backend).then(() => refreshService(service));
            detail =
              type === "backend.maintenance"
                ? `maintenance ${data.on === true ? "on" : "off"}`
                : `${String(data.phase)}${data.active === null || data.active === undefined ? "" : `: ${String(data.active)} active, ${String(data.inactive)} inactive`}; then ${String(data.then)}`;
            break;
          case "service.quorum":
            // Failover: the row says when the sorry server serves or the service is below its quorum.
            void refreshService(service);
            detail = `${data.up === true ? "up" : "down"}: ${String(data.healthy)} healthy, quorum ${String(data.quorum)}${data.sorry === true ? "; sorry server serves" : ""}`;
            break;
          case "service.panic":
            void refreshService(service);
            detail = `panic ${data.active === true ? "on" : "off"}: ${String(data.down)} of ${String(data.total)} down`;
            break;
          case "reconcile.repair":
            void refreshService(service);
            detail = `${String(data.reason ?? "")} (${String(data.status ?? "")})`;
            break;
          default:
            break;
        }
        store.log({ time: typeof data.time === "string" ? data.time : new Date().toISOString(), type, service, backend, detail });
      },
    });
    // Not while the tab is hidden: nobody looks, and a big table is not worth reading every 3 s for nothing.
    // A tick while the last read is still in flight (a slow API) is skipped.
    const timer = setInterval(() => {
      if (!document.hidden) void reads.tick();
    }, POLL_MS);
    return () => {
      stop();
      reads.close();
      setStale(null);
      clearInterval(timer);
    };
  }, [forms]);

  if (needToken !== null) {
    return (
      <TokenPrompt
        message={needToken === "missing" ? "This gorb needs an API token." : "The token was refused; enter it again."}
        refused={needToken === "refused"}
        onToken={(token) => {
          saveToken(token === "" ? null : token);
          setNeedToken(null);
          setStream({ status: "connecting", detail: "" });
          setAttempt((a) => a + 1);
        }}
      />
    );
  }

  const services = [...store.services].sort((a, b) => Number(!isDegraded(a)) - Number(!isDegraded(b)) || a.id.localeCompare(b.id));
  const backends = services.reduce((n, s) => n + s.backend_details.length, 0);
  const down = services.reduce((n, s) => n + s.backend_details.filter((b) => b.metrics.state === "down").length, 0);
  // Dismiss takes the notice, and the focus on it, away: focus goes back to where it was before it came to Dismiss
  // (the button that ran the action), else to New service; it fell to <body>.
  const dismiss = () => {
    const back = beforeNotice.current;
    beforeNotice.current = null;
    setNotice(null);
    (back?.isConnected === true ? back : newService.current)?.focus();
  };
  const close = () => setDialog(null);
  // An Edit dialog's save is sent with the ETag its values were read with: changed meanwhile (by another client, an
  // apply, a drain that ended), it is refused (412) and changes nothing, rather than writing this form's older values.
  const saveEdit = async (save: () => Promise<unknown>) => {
    try {
      await save();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 412) throw error;
      throw new ApiError(error.status, error.code, null, `${error.message}. This form shows the values read when it opened: Cancel, then Edit again to start from the current ones`);
    }
  };
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
        {stale !== null && (
          <span class="stale" role="alert" data-testid="stale" title="the page shows what the last good read of GET /service?detail=true gave">
            stale: reads failing since {new Date(stale.since).toLocaleTimeString()} ({stale.error})
          </span>
        )}
        <span class="summary">
          {services.length} services · {backends} backends · <span class={down > 0 ? "bad" : ""}>{down} down</span>
        </span>
        <nav class="buttons" aria-label="actions">
          <button type="button" class="primary" ref={newService} disabled={forms === null} onClick={() => setDialog({ kind: "new-service" })}>
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
          <button type="button" onClick={() => setDialog({ kind: "fleet" })}>
            Fleet
          </button>
          <button type="button" onClick={() => setDialog({ kind: "bgp" })}>
            BGP
          </button>
        </nav>
      </header>
      {notice !== null && (
        <p
          class={`notice${notice.error ? " error" : ""}`}
          role={notice.error ? "alert" : "status"}
          onFocusIn={(e) => {
            const from = e.relatedTarget;
            if (from instanceof HTMLElement && !e.currentTarget.contains(from)) beforeNotice.current = from;
          }}
        >
          {notice.text}
          <button type="button" class="close" aria-label="Dismiss" onClick={dismiss}>
            ×
          </button>
        </p>
      )}
      <main class="layout">
        <div class="services" ref={list}>
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
                <time dateTime={a.time}>{new Date(a.time).toLocaleTimeString()}</time> <span class="type">{a.type}</span> <span class="target"><Id id={a.service} />{a.backend !== null && <>/<Id id={a.backend} /></>}</span> <span class="detail">{a.detail}</span>
              </li>
            ))}
          </ol>
        </aside>
      </main>
      {dialog !== null && forms !== null && dialog.kind === "new-service" && (
        <Modal title="New service" onClose={close}>
          <EntityForm what="service" fields={forms.service} id={null} initial={null} submitLabel="Create service" onCancel={close}
            onSubmit={async (id, body) => { await call("createService", { params: { service: id }, body }); submitted(`service ${isolatedId(id)} created`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "edit-service" && (
        <Modal title={`Edit service ${isolatedId(dialog.service.id)}`} onClose={close}>
          <EntityForm what="service" fields={forms.service} id={dialog.service.id} initial={flatten(forms.service, dialog.service.options)} submitLabel="Save service" onCancel={close}
            onSubmit={async (id, body) => { await saveEdit(() => call("updateService", { params: { service: id }, body, ifMatch: dialog.etag })); submitted(`service ${isolatedId(id)} changed`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "new-backend" && (
        <Modal title={`Add a backend to ${isolatedId(dialog.service)}`} onClose={close}>
          <EntityForm what="backend" fields={forms.backend} id={null} initial={null} submitLabel="Add backend" onCancel={close}
            onSubmit={async (id, body) => { await call("createBackend", { params: { service: dialog.service, backend: id }, body }); submitted(`backend ${isolatedId(dialog.service)}/${isolatedId(id)} added`); }} />
        </Modal>
      )}
      {dialog !== null && forms !== null && dialog.kind === "edit-backend" && (
        <Modal title={`Edit backend ${isolatedId(dialog.service)}/${isolatedId(dialog.backend.id)}`} onClose={close}>
          <EntityForm what="backend" fields={forms.backend} id={dialog.backend.id} initial={flatten(forms.backend, dialog.backend.options)} submitLabel="Save backend" onCancel={close}
            onSubmit={async (id, body) => { await saveEdit(() => call("updateBackend", { params: { service: dialog.service, backend: id }, body, ifMatch: dialog.etag })); submitted(`backend ${isolatedId(dialog.service)}/${isolatedId(id)} changed`); }} />
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
      {dialog?.kind === "fleet" && (
        <Modal title="Fleet (GET /cluster)" onClose={close}>
          <FleetPanel />
        </Modal>
      )}
      {dialog?.kind === "bgp" && (
        <Modal title="BGP announcements (GET /bgp)" onClose={close}>
          <BgpPanel />
        </Modal>
      )}
    </>
  );
}
