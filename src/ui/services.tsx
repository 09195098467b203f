/**
 * A service's card: address, scheduler, health and why it is degraded or not serving (./service-notes.ts: the
 * kernel does not have it, sorry server, quorum), its rates chart, and its backends, each with its state, weights,
 * timeline and actions (edit, weight 0 and restore, maintenance, drain and undrain, delete). Actions go through
 * ./api.ts.
 *
 * Naming follows the CLI and the README: "Drain…" is `gorb backend drain` (POST .../drain: weight 0, wait for the
 * connections to end or the deadline, then remove or keep), "Undrain" is `gorb backend undrain`; "Weight 0" and
 * "Restore" only set the configured weight (PATCH), like `gorb backend set --weight 0`. gorb keeps no earlier
 * weight for a backend set to 0, so Restore asks for the weight (offered when this tab set Weight 0 itself).
 *
 * Every row has the same buttons: each one's accessible name (aria-label) starts with its short visible text and
 * names what it acts on, "Edit backend b1 of web", so a screen reader, or a search by name, tells them apart.
 */
import { Fragment } from "preact";
import { useId, useLayoutEffect, useRef, useState } from "preact/hooks";
import { isolatedId, visibleText } from "../contract/ids.ts";
import { call, callTagged } from "./api.ts";
import { ApiError, describeError } from "./errors.ts";
import { Chart } from "./charts.tsx";
import { restoreBody } from "./form-body.ts";
import { isDegraded, serviceNotes } from "./service-notes.ts";
import { type BackendView, type ServiceView, Store } from "./store.ts";
import { ConfirmButton, Id, StateBadge, useFocusRescue, useInlineConfirm } from "./widgets.tsx";

/** The dialog open over the page. */
export type Dialog =
  | { kind: "new-service" }
  | { kind: "edit-service"; service: ServiceView; etag: string | null }
  | { kind: "new-backend"; service: string }
  | { kind: "edit-backend"; service: string; backend: BackendView; etag: string | null }
  | { kind: "apply" }
  | { kind: "metrics" }
  | { kind: "bgp" }
  | { kind: "fleet" }
  | null;

/** What a card may do to the page. */
export interface Actions {
  /**
   * Runs an action: what it did goes to the notice at the top, and so does a refusal (an ApiError), unless `inPlace`:
   * then the control that asked shows it where the action was taken. Resolves to the refusal, or null.
   */
  run: (what: string, task: () => Promise<unknown>, inPlace?: boolean) => Promise<ApiError | null>;
  open: (dialog: Dialog) => void;
}

function address(s: ServiceView): string {
  const o = s.options;
  if (typeof o.fwmark === "number" && o.fwmark > 0) return `fwmark ${o.fwmark} (${String(o.family)})`;
  const host = String(o.address ?? o.host);
  return `${o.protocol} ${host.includes(":") ? `[${host}]` : host}:${o.port}`;
}

/**
 * A one-click action's refusal (Weight 0, maintenance, Undrain, Delete), said where it was asked: under the row's or
 * card's buttons, tied to the control (`aria-describedby`), which keeps the focus. `slot` names the control; the
 * next action there clears it.
 */
function useRefusal(actions: Actions) {
  const [refused, setRefused] = useState<{ slot: string; text: string } | null>(null);
  const id = useId();
  const act = async (slot: string, label: string, what: string, task: () => Promise<unknown>): Promise<ApiError | null> => {
    setRefused(null);
    const refusal = await actions.run(what, task, true);
    if (refusal !== null) setRefused({ slot, text: `${label}: ${describeError(refusal)}` });
    return refusal;
  };
  /**
   * Opens an Edit dialog on what `read` gives (the object read again, with its ETag, so the form starts from its
   * current values and its save is refused if someone changes it meanwhile); a failed read is said at `slot`.
   */
  const edit = async (slot: string, read: () => Promise<Dialog>) => {
    setRefused(null);
    try {
      actions.open(await read());
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setRefused({ slot, text: `Edit: ${describeError(error)}` });
    }
  };
  const describedBy = (slot: string) => (refused?.slot === slot ? id : undefined);
  const shown =
    refused === null ? null : (
      <p id={id} class="error" role="alert">
        {refused.text}
      </p>
    );
  return { act, edit, describedBy, shown, clear: () => setRefused(null) };
}

function BackendRow({ store, service, b, actions }: { store: Store; service: string; b: BackendView; actions: Actions }) {
  const key = Store.key(service, b.id);
  const target = `${isolatedId(service)}/${isolatedId(b.id)}`;
  const series = store.timelines.get(key);
  const zeroed = b.options.weight === 0;
  const refusal = useRefusal(actions);
  const weightZero = () =>
    refusal.act("weight", "Weight 0", `weight 0 ${target}`, async () => {
      const had = b.options.weight;
      await call("updateBackend", { params: { service, backend: b.id }, body: { weight: 0 } });
      store.weightZeroed(service, b.id, had);
    });
  const restore = (weight: string) => {
    refusal.clear();
    return actions.run(
      `restore ${target}`,
      async () => {
        await call("updateBackend", { params: { service, backend: b.id }, body: restoreBody(weight) });
        store.restored(service, b.id);
      },
      true,
    );
  };
  const maintenance = b.options.maintenance === true;
  const toggleMaintenance = () =>
    refusal.act("maintenance", `maintenance ${maintenance ? "off" : "on"}`, `maintenance ${target}`, () => call("updateBackend", { params: { service, backend: b.id }, body: { maintenance: !maintenance } }));
  const drain = (body: { timeout: string; then: "remove" | "keep" }) => {
    refusal.clear();
    return actions.run(`drain ${target}`, () => call("drainBackend", { params: { service, backend: b.id }, body }), true);
  };
  const undrain = () => refusal.act("drain", "Undrain", `undrain ${target}`, () => call("undrainBackend", { params: { service, backend: b.id } }));
  const connDrain = b.drain ?? null;
  const subject = `backend ${visibleText(b.id)} of ${visibleText(service)}`;
  return (
    <li class={`backend state-${b.metrics.state}`} data-backend={b.id}>
      <div class="backend-head">
        <strong class="name">
          <Id id={b.id} />
        </strong>
        <span class="addr">
          {b.options.host}:{b.options.port} · {b.options.method}
        </span>
        <StateBadge state={b.metrics.state} />
        {maintenance && <span class="badge maint">maintenance</span>}
        {/* aria-live off: an <output> is a live region, and every step of a climb back, of every backend, was read
            out as a bare number; the service's degraded line is the one that speaks. */}
        <span class="weight" title="effective weight / configured weight">
          weight <output data-testid="effective-weight" aria-live="off">{b.effective_weight}</output>/{b.options.weight}
        </span>
        <span class="conns">{b.active_conns ?? "–"} active</span>
      </div>
      {b.metrics.state === "down" && b.metrics.message !== "" && <p class="why">{b.metrics.message}</p>}
      {connDrain !== null && (
        <p class="note" role="status" data-testid="drain">
          {connDrain.state === "draining"
            ? `draining: ${b.active_conns ?? "–"} active, ${b.inactive_conns ?? "–"} inactive connections; ${connDrain.seconds_left}s left, then ${connDrain.then}`
            : "drained: held at weight 0 until Undrain"}
        </p>
      )}
      {series !== undefined && <Chart series={series} kind="timeline" label={`${visibleText(b.id)}: effective weight and health over the last minutes`} />}
      <div class="buttons">
        <button
          type="button"
          data-slot="edit"
          aria-label={`Edit ${subject}`}
          aria-describedby={refusal.describedBy("edit")}
          onClick={() =>
            refusal.edit("edit", async () => {
              const read = await callTagged("getBackend", { params: { service, backend: b.id } });
              return { kind: "edit-backend", service, backend: { ...(read.value as Omit<BackendView, "id">), id: b.id }, etag: read.etag };
            })
          }
        >
          Edit
        </button>
        {zeroed ? (
          <RestoreButton subject={subject} offer={store.restoreOffer(service, b.id)} onSet={restore} />
        ) : (
          <button type="button" data-slot="weight" aria-label={`Weight 0 for ${subject}`} aria-describedby={refusal.describedBy("weight")} onClick={weightZero} title="configured weight 0 (PATCH); Restore asks for the weight to set back">
            Weight 0
          </button>
        )}
        <label class="toggle" title="maintenance: weight 0 whatever the health checks say (they keep running)">
          <input type="checkbox" aria-label={`maintenance for ${subject}`} aria-describedby={refusal.describedBy("maintenance")} checked={maintenance} onChange={toggleMaintenance} /> maintenance
        </label>
        {connDrain === null ? (
          <DrainButton subject={subject} onStart={drain} />
        ) : (
          <button type="button" data-slot="drain" aria-label={`Undrain ${subject}`} aria-describedby={refusal.describedBy("drain")} onClick={undrain} title="end the drain: its weight comes back">
            Undrain
          </button>
        )}
        <ConfirmButton
          label="Delete"
          name={`Delete ${subject}`}
          subject={subject}
          confirm={`Delete backend ${isolatedId(b.id)} of ${isolatedId(service)}?`}
          describedBy={refusal.describedBy("delete")}
          onConfirm={() => refusal.act("delete", "Delete", `delete ${target}`, () => call("deleteBackend", { params: { service, backend: b.id } }))}
        />
      </div>
      {refusal.shown}
    </li>
  );
}

/**
 * "Restore": asks for the configured weight to set back (PATCH), prefilled with `offer` (the weight this tab saw
 * before its own Weight 0) or empty: gorb keeps no earlier weight, and a guess such as 100 could overload a
 * backend that had 10. It stays open until the API answers: a refusal (`onSet` resolves to it) is shown under
 * the field, as the forms show theirs, and the field takes the focus, its text selected to be typed over.
 */
function RestoreButton({ subject, offer, onSet }: { subject: string; offer: string; onSet: (weight: string) => Promise<ApiError | null> }) {
  const ask = useInlineConfirm<HTMLInputElement>();
  const [weight, setWeight] = useState("");
  const [refused, setRefused] = useState<string | null>(null);
  const busy = useRef(false);
  const id = useId();
  useLayoutEffect(() => {
    if (refused === null) return;
    ask.confirm.current?.focus();
    ask.confirm.current?.select();
  }, [refused]);
  if (!ask.asking) {
    return (
      <button
        type="button"
        ref={ask.opener}
        data-slot="weight"
        aria-label={`Restore ${subject}`}
        onClick={() => {
          setWeight(offer);
          setRefused(null);
          ask.setAsking(true);
        }}
        title="set the configured weight back: asks for it"
      >
        Restore
      </button>
    );
  }
  return (
    <form
      class="confirm"
      data-slot="weight"
      aria-label={`Restore ${subject}`}
      onKeyDown={ask.onKeyDown}
      onSubmit={async (e) => {
        e.preventDefault();
        if (weight.trim() === "" || busy.current) return;
        busy.current = true;
        setRefused(null);
        const refusal = await onSet(weight);
        busy.current = false;
        if (refusal === null) ask.setAsking(false);
        else setRefused(describeError(refusal));
      }}
    >
      <label for={id}>weight</label>
      <input
        id={id}
        class="short"
        type="text"
        inputMode="numeric"
        value={weight}
        ref={ask.confirm}
        aria-invalid={refused !== null}
        aria-describedby={refused === null ? undefined : `${id}-error`}
        onInput={(e) => setWeight(e.currentTarget.value)}
      />
      <button type="submit" class="primary" aria-label={`Set weight of ${subject}`} disabled={weight.trim() === ""}>
        Set weight
      </button>
      <button type="button" aria-label={`Cancel restore of ${subject}`} onClick={() => ask.setAsking(false)}>
        Cancel
      </button>
      {refused !== null && (
        <p id={`${id}-error`} class="error" role="alert">
          {refused}
        </p>
      )}
    </form>
  );
}

/**
 * "Drain…": asks for the deadline and what happens then (remove, the default, or keep at weight 0), then starts
 * the drain (POST .../drain). It stays open until the API answers: a refusal is shown in it, under the field it
 * names (the deadline is `timeout`), which takes the focus; one naming neither field leaves it on Start drain.
 */
function DrainButton({ subject, onStart }: { subject: string; onStart: (body: { timeout: string; then: "remove" | "keep" }) => Promise<ApiError | null> }) {
  const ask = useInlineConfirm();
  const [deadline, setDeadline] = useState("5m");
  const [then, setThen] = useState<"remove" | "keep">("remove");
  const [refused, setRefused] = useState<{ field: "timeout" | "then" | null; text: string } | null>(null);
  const busy = useRef(false);
  const id = useId();
  useLayoutEffect(() => {
    if (refused === null) return;
    const field = refused.field === null ? null : document.getElementById(`${id}-${refused.field}`);
    (field ?? ask.confirm.current)?.focus();
  }, [refused]);
  const invalid = (field: "timeout" | "then") => (refused?.field === field ? { "aria-invalid": true, "aria-describedby": `${id}-error` } : {});
  const start = async () => {
    if (busy.current) return;
    busy.current = true;
    setRefused(null);
    const refusal = await onStart({ timeout: deadline.trim() === "" ? "5m" : deadline.trim(), then });
    busy.current = false;
    if (refusal === null) ask.setAsking(false);
    else setRefused({ field: refusal.field === "timeout" || refusal.field === "then" ? refusal.field : null, text: describeError(refusal) });
  };
  if (!ask.asking) {
    return (
      <button
        type="button"
        ref={ask.opener}
        data-slot="drain"
        aria-label={`Drain ${subject}…`}
        onClick={() => {
          setRefused(null);
          ask.setAsking(true);
        }}
        title="wait for the connections to end, then remove or keep the backend"
      >
        Drain…
      </button>
    );
  }
  return (
    <span class="confirm" role="group" data-slot="drain" aria-label={`Drain ${subject}`} onKeyDown={ask.onKeyDown}>
      <label for={`${id}-timeout`}>at most</label>
      <input id={`${id}-timeout`} class="short" type="text" value={deadline} {...invalid("timeout")} onInput={(e) => setDeadline(e.currentTarget.value)} />
      <label for={`${id}-then`}>then</label>
      <select id={`${id}-then`} value={then} {...invalid("then")} onChange={(e) => setThen(e.currentTarget.value === "keep" ? "keep" : "remove")}>
        <option value="remove">remove</option>
        <option value="keep">keep at weight 0</option>
      </select>
      <button
        type="button"
        class="danger"
        ref={ask.confirm}
        aria-label={`Start drain of ${subject}`}
        aria-describedby={refused !== null && refused.field === null ? `${id}-error` : undefined}
        onClick={() => void start()}
      >
        Start drain
      </button>
      <button type="button" aria-label={`No, do not drain ${subject}`} onClick={() => ask.setAsking(false)}>
        No
      </button>
      {refused !== null && (
        <p id={`${id}-error`} class="error" role="alert">
          {refused.text}
        </p>
      )}
    </span>
  );
}

/** The rows of a list, by the id in their `attribute`, in page order. */
function rowsOf(list: ParentNode, selector: string, attribute: string): Map<string, HTMLElement> {
  const rows = new Map<string, HTMLElement>();
  for (const row of list.querySelectorAll<HTMLElement>(selector)) rows.set(row.getAttribute(attribute) ?? "", row);
  return rows;
}

/**
 * The row that takes the focus when the row `gone` (one of `order`, the ids before the render) has left: the next one
 * still there, else the one before it.
 */
export function nextRow(order: readonly string[], gone: string, rows: ReadonlyMap<string, HTMLElement>): HTMLElement | null {
  const at = order.indexOf(gone);
  const after = order.slice(at + 1).find((id) => rows.has(id));
  const before = order.slice(0, Math.max(at, 0)).reverse().find((id) => rows.has(id));
  return rows.get(after ?? before ?? "") ?? null;
}

const BACKEND_ROWS = ":scope > .backends > li[data-backend]";

/** What in `row` takes the focus: the control in its `slot` (Restore for Weight 0, Undrain for Drain…), else its first. */
function slotControl(row: HTMLElement, slot: string | null): HTMLElement | null {
  const controls = "button, input, select, textarea";
  const there = slot === null ? null : row.querySelector<HTMLElement>(`[data-slot="${slot}"]`);
  return (there?.matches(controls) ? there : there?.querySelector<HTMLElement>(controls)) ?? row.querySelector<HTMLElement>(".buttons button");
}

export function ServiceCard({ store, s, actions }: { store: Store; s: ServiceView; actions: Actions }) {
  // A control that gave way to another (Weight 0 to Restore, Drain… to Undrain, and back) while it had the focus:
  // focus goes to the one in its place (`data-slot`). A backend deleted (or drained and removed): to the next row's
  // first control, else the row before's, else Add backend.
  const card = useRef<HTMLElement>(null);
  useFocusRescue(
    card,
    (focused, root) => ({
      row: focused.closest("[data-backend]")?.getAttribute("data-backend") ?? null,
      slot: focused.closest("[data-slot]")?.getAttribute("data-slot") ?? null,
      order: [...rowsOf(root, BACKEND_ROWS, "data-backend").keys()],
    }),
    ({ row, slot, order }, root) => {
      const rows = rowsOf(root, BACKEND_ROWS, "data-backend");
      const still = row === null ? undefined : rows.get(row);
      if (still !== undefined) return slotControl(still, slot);
      const next = row === null ? null : nextRow(order, row, rows);
      return next?.querySelector<HTMLElement>(".buttons button") ?? root.querySelector<HTMLElement>(":scope > .buttons button");
    },
  );
  const down = s.backend_details.filter((b) => b.metrics.state === "down");
  const drained = s.backend_details.filter((b) => b.effective_weight === 0 && b.metrics.state !== "down");
  const rates = store.rates.get(s.id);
  const refusal = useRefusal(actions);
  return (
    <section ref={card} class={`service${isDegraded(s) ? " degraded" : ""}`} data-service={s.id} aria-labelledby={`svc-${s.id}`}>
      <header>
        <h2 id={`svc-${s.id}`} tabIndex={-1}>
          <Id id={s.id} />
        </h2>
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
          degraded:{" "}
          {down.map((b, i) => (
            <Fragment key={b.id}>
              {i > 0 && ", "}
              <Id id={b.id} /> down{b.metrics.message === "" ? "" : ` (${b.metrics.message})`}
            </Fragment>
          ))}
        </p>
      )}
      {serviceNotes(s).map((note) => (
        <p key={note} class="why" role="status">
          {note}
        </p>
      ))}
      {drained.length > 0 && (
        <p class="note">
          weight 0:{" "}
          {drained.map((b, i) => (
            <Fragment key={b.id}>
              {i > 0 && ", "}
              <Id id={b.id} />
            </Fragment>
          ))}
        </p>
      )}
      {rates !== undefined && <Chart series={rates} kind="rates" label={`${visibleText(s.id)}: connections and packets per second over the last minutes`} />}
      <ul class="backends">
        {s.backend_details.map((b) => (
          <BackendRow key={b.id} store={store} service={s.id} b={b} actions={actions} />
        ))}
      </ul>
      <div class="buttons">
        <button type="button" aria-label={`Add backend to service ${visibleText(s.id)}`} onClick={() => actions.open({ kind: "new-backend", service: s.id })}>
          Add backend
        </button>
        <button
          type="button"
          aria-label={`Edit service ${visibleText(s.id)}`}
          aria-describedby={refusal.describedBy("edit")}
          onClick={() =>
            refusal.edit("edit", async () => {
              const read = await callTagged("getService", { params: { service: s.id } });
              return { kind: "edit-service", service: { ...s, ...(read.value as Omit<ServiceView, "id" | "backend_details">) }, etag: read.etag };
            })
          }
        >
          Edit service
        </button>
        <ConfirmButton
          label="Delete service"
          name={`Delete service ${visibleText(s.id)}`}
          subject={`service ${visibleText(s.id)}`}
          confirm={`Delete ${isolatedId(s.id)} and its backends?`}
          describedBy={refusal.describedBy("delete")}
          onConfirm={() => refusal.act("delete", "Delete service", `delete ${isolatedId(s.id)}`, () => call("deleteService", { params: { service: s.id } }))} />
      </div>
      {refusal.shown}
    </section>
  );
}
