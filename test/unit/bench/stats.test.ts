/** The benchmarks' pure helpers: percentiles, ratio and verdict text, size parsing. */
import { describe, expect, test } from "bun:test";
import { duration, median, parseSize, parseSizes, percentile, ratioText, verdict } from "../../../bench/stats.ts";

describe("percentile (nearest rank)", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  test("p99 of 1..100 is 99, p100 the maximum, p1 the minimum", () => {
    expect([percentile(hundred, 99), percentile(hundred, 100), percentile(hundred, 1), percentile(hundred, 50)]).toEqual([99, 100, 1, 50]);
  });
  test("few samples: p99 is the largest; none: NaN; p outside (0, 100] throws", () => {
    expect(percentile([3, 1, 2], 99)).toBe(3);
    expect(percentile([], 99)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow("p must be in (0, 100]");
    expect(() => percentile([1], 101)).toThrow("p must be in (0, 100]");
  });
  test("does not reorder its input", () => {
    const xs = [5, 1, 4];
    percentile(xs, 50);
    expect(xs).toEqual([5, 1, 4]);
  });
});

test("median of odd and even counts", () => {
  expect([median([3, 1, 2]), median([4, 1, 3, 2]), median([])]).toEqual([2, 2.5, Number.NaN]);
});

test("ratio and verdict text", () => {
  expect(ratioText(3000, 1000)).toBe("ratio 3.000");
  expect([ratioText(1, 0), ratioText(Number.NaN, 1)]).toEqual(["ratio n/a", "ratio n/a"]);
  expect([verdict(0.4, 1, 0.5), verdict(0.8, 1, 0.5), verdict(1.2, 1, 0.5), verdict(Number.NaN, 1, 0.5)]).toEqual([
    "within goal 0.5",
    "within target 1 (goal 0.5)",
    "ABOVE target 1 (goal 0.5)",
    "no figure",
  ]);
});

test("durations", () => {
  expect([duration(5.5), duration(850), duration(12_345), duration(245_000), duration(Number.NaN)]).toEqual(["5.50 ms", "850 ms", "12.35 s", "4 min 05 s", "n/a"]);
});

test("sizes: SERVICESxBACKENDS, lists, and a message naming the variable", () => {
  expect(parseSize("1x20000", "V")).toEqual({ services: 1, backends: 20000 });
  expect(parseSizes(" 1x5, 1000x10 ,", "V")).toEqual([{ services: 1, backends: 5 }, { services: 1000, backends: 10 }]);
  expect(parseSizes("", "V")).toEqual([]);
  expect(() => parseSize("0x5", "BENCH_X")).toThrow('BENCH_X: expected SERVICESxBACKENDS like 1x20000, got "0x5"');
  expect(() => parseSize("ten", "BENCH_X")).toThrow("BENCH_X");
});
