// Builds the console into dist/ (static files: index.html, config.json, assets/) with esbuild.
//   node build.mjs            production build (minified, code-split: the Chime SDK loads only for calls)
//   node build.mjs --tests    compiles test/*.test.ts into dist-test/ for `node --test`
import { copyFile, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import * as esbuild from "esbuild";

const here = new URL(".", import.meta.url).pathname;

if (process.argv.includes("--tests")) {
  await rm(join(here, "dist-test"), { recursive: true, force: true });
  const tests = (await readdir(join(here, "test"))).filter((f) => f.endsWith(".test.ts"));
  await esbuild.build({
    entryPoints: tests.map((f) => join(here, "test", f)),
    outdir: join(here, "dist-test"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outExtension: { ".js": ".mjs" },
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
  const sizes = {};
  const rel = (file) => relative(out, resolve(file));
  for (const file of Object.keys(result.metafile.outputs)) sizes[rel(file)] = (await stat(file)).size;
  const initial = ["assets/main.js", "assets/app.css"].reduce((n, f) => n + (sizes[f] ?? 0), 0);
  // Everything main.js imports statically is loaded up front as well.
  const mainMeta = Object.entries(result.metafile.outputs).find(([file]) => rel(file) === "assets/main.js")?.[1];
  let upfront = initial;
  for (const imp of mainMeta?.imports ?? []) if (imp.kind === "import-statement") upfront += sizes[rel(imp.path)] ?? 0;
  await writeFile(join(out, "build-sizes.json"), `${JSON.stringify({ upfrontBytes: upfront, files: sizes }, null, 2)}\n`);
  console.log(`console/dist: loaded up front ${(upfront / 1024).toFixed(1)} KiB (minified, before compression)`);
  for (const [file, size] of Object.entries(sizes)) console.log(`  ${file.padEnd(36)} ${(size / 1024).toFixed(1)} KiB`);
}
