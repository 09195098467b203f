/** Small pieces of the page: the modal dialog, the token prompt, a state badge, a two-step delete button. */
import type { ComponentChildren, RefObject } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { visibleText } from "../contract/ids.ts";
import type { HealthState } from "./store.ts";

/** An id as the page draws it: isolated from the text around it, its C1 and bidirectional controls shown as marks (visibleText). */
export function Id({ id }: { id: string }) {
  return <bdi class="id">{visibleText(id)}</bdi>;
}

/**
 * A modal <dialog>, its `title` drawn as it is (an id in it goes through isolatedId): Escape and the Close button close it; focus goes into it, and back to the element that had it
 * (the button that opened it) however it closes: Escape, ×, Cancel, or a form sent (the page unmounts it then).
 */
export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const gone = useRef(false);
  // A layout effect: its cleanup runs while the dialog is still on the page (a passive one runs after paint,
  // once the dialog and the focus in it are gone).
  useLayoutEffect(() => {
    const el = ref.current;
    const opener = document.activeElement;
    if (el !== null && !el.open) el.showModal();
    return () => {
      // Unmounted while open: the page behind it is still inert, so close it first (its close event, which comes
      // later, must not close a dialog opened since), then focus the opener if it is still on the page.
      gone.current = true;
      if (el !== null && el.open) el.close();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, []);
  return (
    <dialog ref={ref} onClose={() => gone.current || onClose()} aria-labelledby="dialog-title">
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

/**
 * Asks for the API token. The field takes the focus when the prompt appears (`autoFocus` does nothing after the page
 * has loaded: a token refused, or one a restarted gorb no longer takes); `refused` says why it asks again, as an
 * alert tied to the field.
 */
export function TokenPrompt({ message, refused, onToken }: { message: string; refused: boolean; onToken: (token: string) => void }) {
  const [token, setToken] = useState("");
  const field = useRef<HTMLInputElement>(null);
  useLayoutEffect(() => field.current?.focus(), []);
  return (
    <main class="token">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onToken(token.trim());
        }}
      >
        <h1>gorb</h1>
        <p id="token-why" role={refused ? "alert" : undefined}>
          {message}
        </p>
        <label for="token">API token</label>
        <input id="token" ref={field} type="password" autoComplete="off" aria-invalid={refused} aria-describedby="token-why" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <p class="help">Kept for this tab only (sessionStorage) and sent as an Authorization header.</p>
        <button type="submit" class="primary">
          Connect
        </button>
      </form>
    </main>
  );
}

export function StateBadge({ state }: { state: HealthState }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

/**
 * An inline confirmation that takes the place of the button that opens it (Delete's "Yes, delete / No", Drain…'s
 * deadline, Restore's weight): when it appears, focus goes to its confirm element, a button or the field to fill
 * (`autoFocus` does nothing after the page has loaded);
 * Escape cancels it; however it goes away, focus goes back to the button that opened it.
 */
export function useInlineConfirm<T extends HTMLElement = HTMLButtonElement>() {
  const [asking, setAsking] = useState(false);
  const opener = useRef<HTMLButtonElement>(null);
  const confirm = useRef<T>(null);
  const wasAsking = useRef(false);
  useLayoutEffect(() => {
    if (asking) confirm.current?.focus();
    else if (wasAsking.current) opener.current?.focus();
    wasAsking.current = asking;
  }, [asking]);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    setAsking(false);
  };
  return { asking, setAsking, opener, confirm, onKeyDown };
}

/**
 * Keeps the keyboard focus on the page when a render of this component takes away the element in `ref` that had it
 * (a deleted row, Weight 0 turned into Restore): without it focus falls to <body>, and a keyboard user starts again
 * from the top. `note` reads, before the render, what `pick` needs (the focused row's id, the rows in their order):
 * once the element is gone, `pick` gives what takes the focus.
 */
export function useFocusRescue<T>(ref: RefObject<HTMLElement | null>, note: (focused: Element, root: HTMLElement) => T, pick: (noted: T, root: HTMLElement) => HTMLElement | null): void {
  const root = ref.current;
  const focused = document.activeElement;
  const noted = root !== null && focused !== null && focused !== root && root.contains(focused) ? { focused, value: note(focused, root) } : null;
  useLayoutEffect(() => {
    const now = ref.current;
    if (noted === null || now === null || noted.focused.isConnected) return;
    const active = document.activeElement;
    if (active !== null && active !== document.body) return; // something else took it meanwhile
    pick(noted.value, now)?.focus();
  });
}

/**
 * A delete asked in place. `label` is the button's text; `name`, its accessible name, says what it deletes ("Delete
 * backend b1 of web"), and so do Yes's and No's, with `subject` ("backend b1 of web"), and the group that asks;
 * `confirm` is the question drawn (its ids through isolatedId); `describedBy`, the id of a refusal said under it.
 */
export function ConfirmButton({ label, name, subject, confirm, describedBy, onConfirm }: { label: string; name: string; subject: string; confirm: string; describedBy?: string | undefined; onConfirm: () => void }) {
  const ask = useInlineConfirm();
  if (!ask.asking) {
    return (
      <button type="button" class="danger" ref={ask.opener} aria-label={name} aria-describedby={describedBy} onClick={() => ask.setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={name} onKeyDown={ask.onKeyDown}>
      <span>{confirm}</span>
      <button type="button" class="danger" ref={ask.confirm} aria-label={`Yes, delete ${subject}`} onClick={() => { ask.setAsking(false); onConfirm(); }}>
        Yes, delete
      </button>
      <button type="button" aria-label={`No, keep ${subject}`} onClick={() => ask.setAsking(false)}>
        No
      </button>
    </span>
  );
}

