#!/usr/bin/env node
// Prints vitest's JSON report as one closing line CI can read: "LABEL: N passed, N failed, N skipped".
// Exits non-zero when the report is missing, empty or has failures.
import { readFileSync } from "node:fs";

const [file = "test-results/vitest.json", label = "tests"] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  console.log(`${label}: 0 passed, 1 failed (no readable report at ${file}: ${error.message})`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A file that fails to load fails no test but fails the run: count it once.
const failed = report.numFailedTests || (report.success === false ? 1 : 0);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${label}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
