// Builds the console into dist/ (static files: index.html, config.json, assets/) with esbuild.
//   node build.mjs            production build (minified, code-split: the shell loads up front, each
//                             screen of src/screens.ts and the Chime SDK when first needed)
//   node build.mjs --tests    compiles test/*.test.ts(x) into dist-test/ for `node --test`
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

// What the browser loads before it shows a screen: the shell (main.js, app.css and their static
// imports), and the shell plus any screen it opens. Over this the build fails.
const BUDGET_BYTES = 80 * 1024;

const here = new URL(".", import.meta.url).pathname;

if (process.argv.includes("--tests")) {
  await rm(join(here, "dist-test"), { recursive: true, force: true });
  const tests = (await readdir(join(here, "test"))).filter((f) => /\.test\.tsx?$/.test(f));
  await esbuild.build({
    entryPoints: tests.map((f) => join(here, "test", f)),
    outdir: join(here, "dist-test"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    jsx: "automatic",
    jsxImportSource: "preact",
    logLevel: "warning",
  });
} else {
  const out = join(here, "dist");
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, "assets"), { recursive: true });
  const result = await esbuild.build({
    entryPoints: { main: join(here, "src/main.tsx"), app: join(here, "src/app.css") },
    outdir: join(out, "assets"),
    bundle: true,
    splitting: true,
    format: "esm",
    minify: true,
    sourcemap: false,
    target: ["chrome110", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    chunkNames: "chunk-[hash]",
    alias: { "@aws-sdk/client-chime-sdk-messaging": join(here, "src/no-messaging.cjs") },
    legalComments: "linked",
    metafile: true,
    logLevel: "warning",
  });
  await copyFile(join(here, "src/index.html"), join(out, "index.html"));
  // The stack's deployment overwrites config.json with its own URLs (docs/console.md).
  const config = { apiUrl: "", wsUrl: "", signIn: "local", voice: "fake" };
  await writeFile(join(out, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  const rel = (file) => relative(out, resolve(file));
  const outputs = new Map(Object.entries(result.metafile.outputs).map(([file, meta]) => [rel(file), meta]));
  const files = {};
  for (const file of outputs.keys()) {
    const body = await readFile(join(out, file));
    files[file] = { bytes: body.length, gzip: gzipSync(body).length };
  }
  /** `file` and everything it imports statically, transitively: what loading it loads. */
  const closure = (file, into) => {
    if (into.has(file)) return into;
    into.add(file);
    for (const imp of outputs.get(file)?.imports ?? []) if (imp.kind === "import-statement") closure(rel(imp.path), into);
    return into;
  };
  const total = (set, key) => [...set].reduce((n, f) => n + (files[f]?.[key] ?? 0), 0);
  const shell = closure("assets/main.js", new Set(["assets/app.css"]));
  const upfront = { bytes: total(shell, "bytes"), gzip: total(shell, "gzip"), files: [...shell].sort() };
  // Everything else loads on demand: the screens (modules of src/ that main.js imports dynamically, the
  // table of src/screens.ts) and the libraries loaded when needed, each with what it imports statically.
  const dynamic = new Set((outputs.get("assets/main.js")?.imports ?? []).filter((i) => i.kind === "dynamic-import").map((i) => rel(i.path)));
  const onDemand = {};
  for (const [file, meta] of outputs) {
    if (!meta.entryPoint || shell.has(file)) continue;
    const extra = new Set([...closure(file, new Set())].filter((f) => !shell.has(f)));
    const library = meta.entryPoint.split("node_modules/")[1]?.split("/")[0];
    const name = library ?? basename(meta.entryPoint).replace(/\.[^.]+$/, "");
    const screen = dynamic.has(file) && !library;
    onDemand[name] = { screen, bytes: total(extra, "bytes"), gzip: total(extra, "gzip"), files: [...extra].sort() };
  }
  const sizes = { budgetBytes: BUDGET_BYTES, upfront, onDemand, files };
  await writeFile(join(out, "build-sizes.json"), `${JSON.stringify(sizes, null, 2)}\n`);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`console/dist: loaded up front ${kib(upfront.bytes)} (minified; ${kib(upfront.gzip)} gzip), budget ${kib(BUDGET_BYTES)}`);
  for (const file of upfront.files) console.log(`  ${file.padEnd(36)} ${kib(files[file].bytes)}`);
  const over = upfront.bytes > BUDGET_BYTES ? ["the shell"] : [];
  for (const [name, part] of Object.entries(onDemand)) {
    const first = upfront.bytes + part.bytes;
    console.log(`  on demand: ${name.padEnd(24)} +${kib(part.bytes)} (${kib(part.gzip)} gzip)${part.screen ? `; with the shell ${kib(first)}` : ""}`);
    if (part.screen && first > BUDGET_BYTES) over.push(`the ${name} screen`);
  }
  if (over.length) {
    console.error(`console/dist: over the ${kib(BUDGET_BYTES)} budget: ${over.join(", ")} (load the heavy part on demand, docs/console.md)`);
    process.exitCode = 1;
  }
}
