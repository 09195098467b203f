/**
 * Layers clean: the shape of gorb's module graph, read from the import and export statements of every file
 * under src/ and ffi/ (parsed with TypeScript's parser; nothing is executed):
 *   - each import goes down the layer table below (written out explicitly: a new directory has to be placed);
 *     bun:ffi only under ffi/; nothing under src/ or ffi/ imports from tests, bench or scripts;
 *   - no import cycles between files (Tarjan's strongly connected components);
 *   - no barrel files (modules that only re-export);
 *   - no test-only exports: every exported value is imported by another module of src/ or ffi/, except the
 *     few listed in EXPORTED_FOR_TESTS with the reason.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const ROOT = resolve(import.meta.dir, "../..");

/**
 * Which layer may import which, lowest first. A layer is a directory of src/ (or a top-level file of src/,
 * or ffi/). Every import between two layers must be listed here; within a layer anything goes (but no cycles).
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  ffi: [],
  "src/version": [],
  "src/log": [],
  "src/journal": [],
  "src/errno": [],
  "src/record": [],
  "src/ipv6-text": [],
  "src/pacer": [],
  "src/regular-file": ["src/errno"],
  "src/proxy-environment": [],
  "src/contained-spawn": ["ffi"],
  "src/netlink": [],
  "src/transport": ["ffi", "src/errno", "src/netlink"],
  "src/ipvs": ["src/errno", "src/ipv6-text", "src/pacer", "src/netlink", "src/transport"],
  "src/netif": ["src/errno", "src/netlink", "src/transport", "src/ipvs"],
  "src/health": ["src/log", "src/errno", "src/record", "src/ipv6-text", "src/regular-file", "src/contained-spawn", "ffi"],
  "src/discovery": ["src/log"],
  "src/contract": ["src/ipvs", "src/health"],
  "src/core": ["src/log", "src/record", "src/pacer", "src/ipvs", "src/health", "src/discovery", "src/contract"],
  "src/state": ["src/log", "src/errno", "src/core"],
  "src/store": ["src/log", "src/errno", "src/record", "src/core"],
  "src/config": ["src/ipv6-text", "src/pacer", "src/regular-file", "src/core", "src/contract"],
  "src/bgp": ["src/log", "src/errno", "src/health", "src/core"],
  "src/embedded-libnl": ["ffi"],
  "src/ui": ["src/record", "src/contract"],
  "src/render": ["src/ipv6-text", "src/core", "src/bgp"],
  "src/api": ["src/log", "src/version", "src/pacer", "src/contract", "src/core", "src/config", "src/ui", "src/bgp", "src/render"],
  "src/daemon": [
    "ffi",
    "src/contained-spawn",
    "src/log",
    "src/journal",
    "src/errno",
    "src/regular-file",
    "src/version",
    "src/ipvs",
    "src/netif",
    "src/health",
    "src/discovery",
    "src/contract",
    "src/core",
    "src/state",
    "src/store",
    "src/config",
    "src/api",
    "src/bgp",
  ],
  "src/cli": [
    "src/log",
    "src/journal",
    "src/errno",
    "src/record",
    "src/ipv6-text",
    "src/regular-file",
    "src/version",
    "src/ipvs",
    "src/health",
    "src/contract",
    "src/core",
    "src/config",
    "src/state",
    "src/store",
    "src/embedded-libnl",
    "src/daemon",
    "src/bgp",
    "src/render",
  ],
  "src/main": ["src/cli", "src/proxy-environment"],
};

/**
 * Exported values only tests import, with the reason. A known debt, not a place for new entries: the test fails
 * when an entry is no longer exported or src/ starts importing it, so the list only shrinks.
 */
const EXPORTED_FOR_TESTS: Readonly<Record<string, string>> = {
  "src/health/checkers/conn.ts STUCK_MS": "tests wait past the stuck-connect grace (black-hole tests)",
  "src/health/checkers/dns-codec.ts readName": "unit-tested directly in test/unit/health/dns.test.ts (golden bytes)",
  "src/health/checkers/for-options.ts checkerFor": "tests build checkers for options directly",
  "src/health/checkers/names.ts ageNames": "tests age the looked-up addresses to reach the stale-while-revalidating path (resolver-outage tests) and the forgetting of unused names (names.test.ts)",
  "src/cli/liveness.ts endpointOf": "unit-tested directly in test/unit/cli/client-wait.test.ts",
  "src/cli/liveness.ts probe": "unit-tested directly in test/unit/cli/client-wait.test.ts",
  "ffi/libc.ts SHUT_RDWR": "unit-tested directly (connection shedder tests shut sockets down)",
  "ffi/library-path.ts cachePaths": "unit-tested directly in test/unit/ffi/libnl.test.ts (ld.so.cache reader)",
  "ffi/library-path.ts libraryDirs": "unit-tested directly in test/unit/ffi/libnl.test.ts",
  "src/api/auth.ts tokensEqual": "unit-tested directly in test/unit/api/guard.test.ts (constant-time compare)",
  "src/config/cidr.ts parseCidr": "unit-tested directly in test/unit/api/guard.test.ts",
  "src/config/bird-reserved.ts BIRD_RESERVED_WORDS": "each word checked against a real BIRD in test/unit/config/bird-reserved.test.ts",
  "src/api/guard.ts ForbiddenError": "unit-tested directly in test/unit/api/guard.test.ts",
  "src/daemon/api-server.ts STOP_DEADLINE_MS": "tests check the stop deadline",
  "src/daemon/connection-shedder.ts fdsOfSockets": "unit-tested directly in test/unit/daemon/connection-shedder.test.ts",
  "src/daemon/connection-shedder.ts openFilesLimit": "unit-tested directly in test/unit/daemon/connection-shedder.test.ts",
  "src/daemon/connection-shedder.ts socketInodesOnLocalPort": "unit-tested directly in test/unit/daemon/connection-shedder.test.ts",
  "src/daemon/secrets.ts readSecretFile": "unit-tested directly in test/unit/cli/daemon-options-secrets.test.ts",
  "src/api/metrics.ts metricsChunks": "unit-tested directly in test/unit/api/metrics.test.ts (chunk bounds)",
  "src/api/metrics.ts renderMetrics": "unit-tested directly in test/unit/api/metrics.test.ts (hand-built views)",
  "src/cli/commands/serve.ts setDaemonRunner": "test seam: tests run `gorb serve` with a recorder instead of the daemon",
  "src/cli/native.ts isCompiled": "unit-tested directly in test/unit/cli/native.test.ts",
  "src/config/daemon-options.ts parseInterval": "unit-tested directly in test/unit/cli/daemon-options.test.ts",
  "src/config/daemon-options.ts parseListen": "unit-tested directly in test/unit/cli/daemon-options.test.ts",
  "src/config/daemon-options.ts parseSize": "unit-tested directly in test/unit/cli/daemon-options.test.ts",
  "src/config/load.ts parseConfigFile": "unit-tested directly in test/unit/config/config.test.ts",
  "src/core/normalize.ts normalizeBackend": "unit-tested directly in test/unit/core/resolve.test.ts",
  "src/core/reconcile.ts observedTable":
    "the reconciler's table tests build their observed tables with it; restore, its one reader of a whole table, reads it in slices (observedTablePaced)",
  "src/core/resolve.ts resolveHost": "unit-tested directly in test/unit/core/resolve.test.ts",
  "src/core/resolve.ts serviceFlagsOf": "unit-tested directly in test/unit/core/resolve.test.ts",
  "src/ipvs/kernel-driver.ts IpvsUnavailableError": "unit-tested directly in test/unit/cli/help-and-serve.test.ts",
  "src/ipvs/memory-driver.ts LINUX_6_1_SCHEDULERS": "unit-tested directly in test/unit/ipvs/memory-driver.test.ts",
  "src/ipvs/memory-driver.ts MemoryIpvsDriver":
    "the test double of the kernel; it shares the kernel's messages and checks (messages.ts, validate.ts) with src/ipvs, where it stays: under test/ it would leave 13 more exports of src/ipvs test-only",
  "src/ipvs/memory-driver.ts defaultIsRoutable": "unit-tested directly in test/unit/ipvs/memory-driver.test.ts",
  "src/netif/interface-addresses.ts InterfaceError": "unit-tested directly in test/unit/netif.test.ts",
  "src/netlink/attributes.ts splitAttributes": "unit-tested directly in test/unit/netlink/attributes.test.ts",
  "src/netlink/constants.ts CTRL_ATTR": "unit-tested directly in test/unit/ffi/libnl.test.ts",
  "src/netlink/constants.ts CTRL_CMD": "unit-tested directly in test/unit/ffi/libnl.test.ts",
  "src/netlink/constants.ts GENL_ID_CTRL": "unit-tested directly in test/unit/ffi/libnl.test.ts",
  "src/netlink/message.ts encodeGenlMessage": "unit-tested directly in test/unit/netlink/message.test.ts",
  "src/netlink/message.ts encodeMessage": "unit-tested directly in test/unit/netlink/message.test.ts",
  "src/netlink/message.ts writeGenlMessage": "unit-tested directly in test/unit/netlink/message.test.ts",
  "src/state/sqlite-store.ts SCHEMA_VERSION": "unit-tested directly in test/unit/state/sqlite-store.test.ts",
  "src/config/settings.ts CONFIG_KEYS": "test/unit/config/config.test.ts checks that every settings key is a flag of gorb serve and back",
  "src/ipvs/codec.ts familyNumber": "test/helpers/ipvs-dump-kernel.ts encodes the kernel's dump answers with the driver's own numbers",
  "src/ipvs/codec.ts flagsToBits": "test/helpers/ipvs-dump-kernel.ts encodes the kernel's dump answers with the driver's own numbers",
  "src/ipvs/codec.ts forwardNumber": "test/helpers/ipvs-dump-kernel.ts encodes the kernel's dump answers with the driver's own numbers",
  "src/ipvs/codec.ts protocolNumber": "test/helpers/ipvs-dump-kernel.ts encodes the kernel's dump answers with the driver's own numbers",
};

/** Names an import uses from its target: a set, or every export (`import *` used whole, `export *`). */
type Names = ReadonlySet<string> | "all";

interface Import {
  readonly specifier: string;
  /** The imported file, relative to the repository (null for a package or a built-in). */
  readonly target: string | null;
  readonly names: Names;
  readonly dynamic: boolean;
  /** `import type`, or every name imported as a type: nothing is loaded at run time. */
  readonly typeOnly: boolean;
}

interface Module {
  /** Relative to the repository: "src/core/gorb.ts". */
  readonly path: string;
  readonly imports: readonly Import[];
  /** Exported names, with whether each is a type only. */
  readonly exports: ReadonlyMap<string, { readonly type: boolean }>;
  /** Every statement is an `export ... from`. */
  readonly onlyReExports: boolean;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return walk(path);
      return (path.endsWith(".ts") || path.endsWith(".tsx")) && !path.endsWith(".d.ts") ? [path] : [];
    });
}

const hasModifier = (node: ts.Node, kind: ts.SyntaxKind) =>
  ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

/** The property names read from `name` in `scope` (`name.x`); "all" when `name` is used any other way. */
function propertiesRead(scope: ts.Node, name: string): Names {
  const names = new Set<string>();
  let whole = false;
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && node.text === name) {
      const parent = node.parent;
      if (ts.isPropertyAccessExpression(parent) && parent.expression === node) names.add(parent.name.text);
      else if (!(ts.isParameter(parent) || ts.isNamespaceImport(parent))) whole = true;
    }
    ts.forEachChild(node, visit);
  };
  visit(scope);
  return whole ? "all" : names;
}

/** What a dynamic `import("x")` uses, from the shape of the code around it. */
function dynamicNames(call: ts.CallExpression): Names {
  let node: ts.Node = call;
  if (ts.isAwaitExpression(node.parent)) {
    node = node.parent;
    const parent = node.parent;
    // const { a, b: c } = await import("x")
    if (ts.isVariableDeclaration(parent) && ts.isObjectBindingPattern(parent.name)) {
      return new Set(parent.name.elements.map((e) => (e.propertyName ?? e.name).getText()));
    }
    // (await import("x")).a
    if (ts.isParenthesizedExpression(parent) && ts.isPropertyAccessExpression(parent.parent)) {
      return new Set([parent.parent.name.text]);
    }
    return "all";
  }
  // import("x").then((m) => m.a)
  const access = node.parent;
  if (ts.isPropertyAccessExpression(access) && access.name.text === "then" && ts.isCallExpression(access.parent)) {
    const callback = access.parent.arguments[0];
    const param = callback !== undefined && ts.isArrowFunction(callback) ? callback.parameters[0] : undefined;
    if (callback !== undefined && param !== undefined && ts.isIdentifier(param.name)) {
      return propertiesRead(callback, param.name.text);
    }
  }
  return "all";
}

function resolveTarget(from: string, specifier: string): string | null {
  if (!specifier.startsWith(".")) return null;
  const absolute = resolve(ROOT, dirname(from), specifier);
  if (!existsSync(absolute)) throw new Error(`${from}: cannot resolve ${specifier}`);
  return relative(ROOT, absolute);
}

function parseModule(path: string): Module {
  const text = readFileSync(join(ROOT, path), "utf8");
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, path.endsWith(".tsx") ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const imports: Import[] = [];
  const exports = new Map<string, { type: boolean }>();
  const localTypes = new Set<string>();
  const localExports: { name: string; type: boolean }[] = [];
  const add = (specifier: string, names: Names, dynamic: boolean, typeOnly = false) =>
    imports.push({ specifier, target: resolveTarget(path, specifier), names, dynamic, typeOnly });

  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) localTypes.add(statement.name.text);
    const exported = hasModifier(statement, ts.SyntaxKind.ExportKeyword);
    const isDefault = hasModifier(statement, ts.SyntaxKind.DefaultKeyword);
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      const clause = statement.importClause;
      const names = new Set<string>();
      let all = false;
      if (clause?.name !== undefined) names.add("default");
      const bindings = clause?.namedBindings;
      if (bindings !== undefined && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) names.add((element.propertyName ?? element.name).text);
      } else if (bindings !== undefined && ts.isNamespaceImport(bindings)) {
        const read = propertiesRead(source, bindings.name.text);
        if (read === "all") all = true;
        else for (const name of read) names.add(name);
      }
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly || (clause.name === undefined && bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.every((e) => e.isTypeOnly)));
      add(statement.moduleSpecifier.text, all ? "all" : names, false, typeOnly);
    } else if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (statement.moduleSpecifier !== undefined && ts.isStringLiteral(statement.moduleSpecifier)) {
        const names = clause !== undefined && ts.isNamedExports(clause) ? new Set(clause.elements.map((e) => (e.propertyName ?? e.name).text)) : "all";
        add(statement.moduleSpecifier.text, names, false);
        if (clause !== undefined && ts.isNamedExports(clause)) {
          for (const e of clause.elements) exports.set(e.name.text, { type: statement.isTypeOnly || e.isTypeOnly });
        }
      } else if (clause !== undefined && ts.isNamedExports(clause)) {
        for (const e of clause.elements) {
          localExports.push({ name: e.name.text, type: statement.isTypeOnly || e.isTypeOnly || localTypes.has((e.propertyName ?? e.name).text) });
        }
      }
    } else if (ts.isExportAssignment(statement)) {
      exports.set("default", { type: false });
    } else if (exported) {
      if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) {
        exports.set(isDefault ? "default" : statement.name.text, { type: true });
      } else if ((ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement)) && statement.name) {
        exports.set(isDefault ? "default" : statement.name.text, { type: false });
      } else if (ts.isVariableStatement(statement)) {
        for (const declaration of statement.declarationList.declarations) {
          if (ts.isIdentifier(declaration.name)) exports.set(declaration.name.text, { type: false });
        }
      }
    }
  }
  for (const e of localExports) exports.set(e.name, { type: e.type || localTypes.has(e.name) });

  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const argument = node.arguments[0];
      if (argument !== undefined && ts.isStringLiteral(argument)) add(argument.text, dynamicNames(node), true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);

  const onlyReExports =
    source.statements.length > 0 && source.statements.every((s) => ts.isExportDeclaration(s) && s.moduleSpecifier !== undefined);
  return { path, imports, exports, onlyReExports };
}

/** "src/core" for src/core/gorb.ts, "src/main" for src/main.ts, "ffi" for ffi/libnl.ts. */
function layerOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] === "ffi") return "ffi";
  return parts.length === 2 ? path.replace(/\.ts$/, "") : `${parts[0]}/${parts[1]}`;
}

/** Tarjan's strongly connected components of a graph; returns those with more than one node or a self-edge. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(to) ?? 0));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(to) ?? 0));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) connect(node);
  return found;
}

const files = [...walk(join(ROOT, "src")), ...walk(join(ROOT, "ffi"))].map((f) => relative(ROOT, f));
const modules = new Map(files.map((path) => [path, parseModule(path)]));

describe("layers", () => {
  test("every module belongs to a layer of the table", () => {
    const unknown = files.filter((path) => !Object.hasOwn(ALLOWED, layerOf(path)));
    expect(unknown).toEqual([]);
  });

  test("the table itself only points down (no two layers may import each other, even through others)", () => {
    const graph = new Map(Object.entries(ALLOWED));
    expect(cycles(graph)).toEqual([]);
    for (const [layer, lower] of graph) for (const to of lower) expect(`${layer} -> ${to}: ${graph.has(to)}`).toBe(`${layer} -> ${to}: true`);
  });

  test("every import between layers is one the table allows", () => {
    const upward: string[] = [];
    for (const module of modules.values()) {
      const from = layerOf(module.path);
      for (const imported of module.imports) {
        if (imported.target === null || !modules.has(imported.target)) continue;
        const to = layerOf(imported.target);
        if (to !== from && !(ALLOWED[from] ?? []).includes(to)) upward.push(`${module.path} -> ${imported.target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  test("bun:ffi only under ffi/; src/ and ffi/ import nothing from tests, bench or scripts", () => {
    const wrong: string[] = [];
    for (const module of modules.values()) {
      for (const imported of module.imports) {
        if (imported.specifier === "bun:ffi" && layerOf(module.path) !== "ffi") wrong.push(`${module.path} -> bun:ffi`);
        if (imported.target !== null && !modules.has(imported.target)) {
          // The one file outside src/ and ffi/ a module reads: package.json, for the version.
          if (!(module.path === "src/version.ts" && imported.target === "package.json")) wrong.push(`${module.path} -> ${imported.target}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe("module graph", () => {
  test("no import cycles between files (static, dynamic and type-only imports alike)", () => {
    const graph = new Map(
      [...modules.values()].map((m) => [m.path, [...new Set(m.imports.flatMap((i) => (i.target !== null && modules.has(i.target) ? [i.target] : [])))]]),
    );
    expect(cycles(graph)).toEqual([]);
  });

  test("no barrel files (modules that only re-export)", () => {
    const barrels = [...modules.values()].filter((m) => m.onlyReExports);
    expect(barrels.map((m) => m.path)).toEqual([]);
  });

  test("`gorb apply` reads and sends a declared set without loading the schema library (TypeBox), the contract's checks or the YAML parser", () => {
    // Loading them took about 0.3 s of each apply's CLI run under emulation; the daemon checks the set. The `yaml`
    // package is required only for a YAML text whose keys must be searched for one given twice (src/config/yaml-duplicates.ts).
    const loaded = new Set<string>();
    const visit = (path: string): void => {
      if (loaded.has(path)) return;
      loaded.add(path);
      for (const i of modules.get(path)?.imports ?? []) {
        if (i.dynamic || i.typeOnly) continue;
        if (i.target === null) loaded.add(i.specifier);
        else visit(i.target);
      }
    };
    visit("src/config/declared.ts");
    visit("src/cli/declarative.ts");
    expect(loaded.has("src/config/declared.ts")).toBe(true);
    expect(
      [...loaded].filter((m) => m.startsWith("@sinclair/typebox") || m === "yaml" || m === "src/contract/check.ts" || m === "src/config/services.ts").sort(),
    ).toEqual([]);
  });

  test("no test-only exports: every exported value is imported by another module of src/ or ffi/", () => {
    const used = new Map<string, Set<string> | "all">();
    for (const module of modules.values()) {
      for (const imported of module.imports) {
        if (imported.target === null || imported.target === module.path) continue;
        const before = used.get(imported.target) ?? new Set<string>();
        if (before === "all" || imported.names === "all") used.set(imported.target, "all");
        else used.set(imported.target, new Set([...before, ...imported.names]));
      }
    }
    const unused: string[] = [];
    for (const module of modules.values()) {
      const names = used.get(module.path) ?? new Set<string>();
      for (const [name, { type }] of module.exports) {
        if (type || names === "all" || names.has(name)) continue;
        unused.push(`${module.path} ${name}`);
      }
    }
    const known = new Set(Object.keys(EXPORTED_FOR_TESTS));
    expect(unused.filter((entry) => !known.has(entry)).sort()).toEqual([]);
    // The lists hold only what is still exported and still not imported by src/.
    expect([...known].filter((entry) => !unused.includes(entry)).sort()).toEqual([]);
  });
});
