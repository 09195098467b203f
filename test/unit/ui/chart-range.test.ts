/**
 * The span a chart shows (src/ui/chart-range.ts): its samples, at least a minute, at most the last five; a single
 * sample (a page's first read, a new backend) gets the minute that starts at it, not a window a day ahead.
 */
import { describe, expect, test } from "bun:test";
import { shownRange } from "../../../src/ui/chart-range.ts";

const T = 1_796_518_639;

describe("the span a chart shows", () => {
  test("a single sample: the minute from it (uPlot alone would widen it to the day after)", () => {
    expect(shownRange([T])).toEqual([T, T + 60]);
  });

  test("samples closer than a minute: the minute from the first", () => {
    expect(shownRange([T, T + 3, T + 6])).toEqual([T, T + 60]);
  });

  test("samples over more than five minutes: the last five", () => {
    expect(shownRange([T, T + 200, T + 400])).toEqual([T + 100, T + 400]);
  });

  test("no sample: none", () => {
    expect(shownRange([])).toBeNull();
  });
});
