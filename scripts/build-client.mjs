#!/usr/bin/env node
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
// Bundles the client SDK (src/client) into public/client.js: one ES module with no dependencies,
// which the Worker bundles and serves so a page can `import { RelayClient } from "/client.js"`.
// `npm run dev`, `npm run deploy` and `npm run bench` run it first (pre-scripts), the test suites
// in their global setup.
//
//   node scripts/build-client.mjs [--minify] [--outfile public/client.js]
import { build } from "esbuild";

const { values } = parseArgs({
  options: {
    minify: { type: "boolean", default: false },
    outfile: { type: "string", default: "public/client.js" },
  },
});

const root = fileURLToPath(new URL("..", import.meta.url));
const result = await build({
  absWorkingDir: root,
  entryPoints: ["src/client/index.ts"],
  outfile: values.outfile,
  bundle: true,
  format: "esm",
  platform: "browser",
  // Private class fields and static blocks are native here; every evergreen browser has them.
  target: "es2022",
  minify: values.minify,
  legalComments: "none",
  banner: { js: "// Edge Relay client SDK. Built from src/client by scripts/build-client.mjs; do not edit." },
  metafile: true,
  logLevel: "warning",
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`built ${values.outfile} (${(bytes / 1024).toFixed(1)} KiB)`);
