/**
 * Native-library set-up for the commands that talk to the kernel (`serve`, `--direct`). When gorb runs as the
 * compiled executable it carries libnl inside (src/embedded-libnl.ts), used only when the system has none.
 */

/** isCompiled is true inside the executable built by `bun build --compile` (its modules live in /$bunfs). */
export function isCompiled(): boolean {
  return import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
}

/**
 * prepareLibnl makes libnl loadable: in the compiled executable it loads the system copy or else the embedded
 * one, and returns where it came from; from source it does nothing and returns null (the system copy is loaded
 * on first use).
 */
export async function prepareLibnl(env: Readonly<Record<string, string | undefined>>): Promise<string | null> {
  if (!isCompiled()) return null;
  const { loadLibnl } = await import("../embedded-libnl.ts");
  return loadLibnl(env);
}
