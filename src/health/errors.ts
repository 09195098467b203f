/**
 * The one error type of the health layer: bad pulse options. It names the offending field so the
 * API edge can map it to its own validation error (422/400) without parsing the text.
 */

/** PulseOptionsError says which pulse field is wrong and why; `message` is "<field>: <problem>". */
export class PulseOptionsError extends Error {
  override readonly name = "PulseOptionsError";
  /** Dotted path of the bad field, e.g. "pulse.interval" or "pulse.args.expect". */
  readonly field: string;
  /** The problem alone, without the field prefix. */
  readonly problem: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}
