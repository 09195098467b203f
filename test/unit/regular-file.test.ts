/**
 * openRegularFile: the path is checked, then the open descriptor is checked again and read. A file swapped in under
 * the same name between the checks (by anyone who may write to its directory) is what the descriptor sees.
 */
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { type Stats, appendFileSync, closeSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileProblemError, checkRegularFile, openRegularFile, readOpenFile } from "../../src/regular-file.ts";

const dir = mkdtempSync(join(tmpdir(), "gorb-regular-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A check that refuses group- or other-readable files, and calls `between` after its first call (the path's). */
function privateOnly(between: () => void, seen: number[]): (stat: Stats) => void {
  return (stat) => {
    seen.push(stat.mode & 0o777);
    if ((stat.mode & 0o077) !== 0) throw new Error(`mode ${(stat.mode & 0o777).toString(8)}`);
    if (seen.length === 1) between();
  };
}

describe("openRegularFile", () => {
  test("a file swapped in after the path was checked is checked on the descriptor, and refused", () => {
    const file = join(dir, "token-a");
    const theirs = join(dir, "theirs-a");
    writeFileSync(file, "ours\n", { mode: 0o600 });
    writeFileSync(theirs, "theirs\n", { mode: 0o644 });
    const seen: number[] = [];
    expect(() => openRegularFile(file, 1024, privateOnly(() => renameSync(theirs, file), seen))).toThrow("mode 644");
    expect(seen).toEqual([0o600, 0o644]);
  });

  test("what is read is the file the descriptor checked, even when the name now gives another", () => {
    const file = join(dir, "token-b");
    const theirs = join(dir, "theirs-b");
    writeFileSync(file, "ours\n", { mode: 0o600 });
    writeFileSync(theirs, "theirs\n", { mode: 0o600 });
    const fd = openRegularFile(file, 1024);
    try {
      renameSync(theirs, file);
      expect(readOpenFile(file, fd, 1024)).toBe("ours\n");
    } finally {
      closeSync(fd);
    }
  });

  test("a FIFO or a directory is refused without being read (a FIFO without blocking)", () => {
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    expect(() => openRegularFile(fifo, 1024)).toThrow(new FileProblemError(fifo, "not-regular", "is not a regular file (a FIFO)"));
    expect(() => openRegularFile(dir, 1024)).toThrow(new FileProblemError(dir, "not-regular", "is not a regular file (a directory)"));
  });

  test("a file that grew over the limit after the descriptor was checked is refused, not read to its end", () => {
    const file = join(dir, "growing");
    writeFileSync(file, "0123456789", { mode: 0o600 });
    const fd = openRegularFile(file, 16);
    try {
      appendFileSync(file, "x".repeat(100));
      expect(() => readOpenFile(file, fd, 16)).toThrow(new FileProblemError(file, "too-large", "grew over the limit of 16 bytes as it was read"));
    } finally {
      closeSync(fd);
    }
  });

  test("a file read from its descriptor is read whole up to the limit, in more than one read", () => {
    const file = join(dir, "big");
    const text = "é".repeat(100_000); // 200,000 bytes: several reads, a character split between two
    writeFileSync(file, text, { mode: 0o600 });
    const fd = openRegularFile(file, 200_000);
    try {
      expect(readOpenFile(file, fd, 200_000)).toBe(text);
    } finally {
      closeSync(fd);
    }
  });
});

describe("a failure that carries no code", () => {
  test("a thrown null is told as the file's problem (unreadable), not a TypeError from reading its code", () => {
    const file = join(dir, "any");
    const stat = spyOn(fs, "statSync").mockImplementation(() => {
      throw null;
    });
    try {
      expect(() => checkRegularFile(file, null)).toThrow(new FileProblemError(file, "unreadable", "cannot read it (null)"));
    } finally {
      stat.mockRestore();
    }
  });
});
