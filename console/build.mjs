// Bundles the console's TypeScript (src/main.ts and what it imports) into the one script the
// node serves and compiles in: crates/node/src/http/console/console.js. With --check it writes
// nothing and fails if that file is not what the source builds to (the test script runs it, so
// a change to the source that was not built cannot pass).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const out = fileURLToPath(new URL("../crates/node/src/http/console/console.js", import.meta.url));
const check = process.argv.includes("--check");

const result = await build({
  entryPoints: [fileURLToPath(new URL("src/main.ts", import.meta.url))],
  bundle: true,
  format: "iife",
  target: "es2022",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  banner: { js: "// Built from console/src by `npm run build` in console/: edit the TypeScript, not this file." },
  write: false,
  logLevel: "warning",
});
const built = result.outputFiles[0].text;

if (check) {
  const current = readFileSync(out, "utf8");
  if (current !== built) {
    console.error(`${out} is not what console/src builds to: run \`npm run build\` in console/ and commit it`);
    process.exit(1);
  }
  console.log(`console.js matches its source (${built.length} bytes)`);
} else {
  writeFileSync(out, built);
  console.log(`wrote ${out} (${built.length} bytes)`);
}
