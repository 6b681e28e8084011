#!/usr/bin/env node
// `npm run check`: everything CI checks, in CI's order: format and lint (Biome), typecheck, the main
// suite (npm test), the browser suite, and the fault suite (npm run test:faults, a few minutes). Every
// step runs even when an earlier one failed, so one run shows every problem; it ends with one closing
// line per test runner ("LABEL: N passed, N failed, N skipped") and exits non-zero if any step failed.
//
//   node scripts/check.mjs [--only lint,typecheck,tests,browser,faults]
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { only: { type: "string" } } });

const REPORTERS = ["--reporter=default", "--reporter=json"];
/** A vitest run writing a JSON report that summarize-vitest.mjs turns into the closing line. */
const vitest = (label, config) => ({
  label,
  command: ["npx", "vitest", "run", ...(config ? ["--config", config] : []), ...REPORTERS, `--outputFile.json=test-results/${label}.json`],
  report: `test-results/${label}.json`,
});

const steps = [
  { label: "lint", command: ["npx", "biome", "check", "--error-on-warnings", "."] },
  { label: "typecheck", command: ["npm", "run", "--silent", "typecheck"] },
  vitest("tests"),
  vitest("browser", "test/browser/vitest.config.ts"),
  vitest("faults", "test/faults/vitest.config.ts"),
];
const only = values.only?.split(",");
const chosen = only ? steps.filter((step) => only.includes(step.label)) : steps;

mkdirSync(`${root}/test-results`, { recursive: true });
const failed = [];
for (const step of chosen) {
  console.log(`\n== ${step.label}: ${step.command.join(" ")}`);
  const { status } = spawnSync(step.command[0], step.command.slice(1), { cwd: root, stdio: "inherit" });
  if (status !== 0) failed.push(step.label);
}

console.log("\n== summary");
// The test runners' closing lines come last: they are what CI reads.
for (const step of chosen.filter((s) => !s.report)) console.log(`${step.label}: ${failed.includes(step.label) ? "failed" : "ok"}`);
for (const step of chosen.filter((s) => s.report)) {
  const { status } = spawnSync(process.execPath, ["scripts/summarize-vitest.mjs", step.report, step.label], { cwd: root, stdio: "inherit" });
  if (status !== 0 && !failed.includes(step.label)) failed.push(step.label);
}
process.exit(failed.length > 0 ? 1 : 0);
