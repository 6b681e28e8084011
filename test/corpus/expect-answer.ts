import { expect } from "vitest";
import type { HostileCase, HostileFrame } from "./hostile";

/** A stack trace in a message: `at file:line:col`, or an indented `at` line. */
export const STACK_TRACE = /\bat .*:\d+:\d+|\n\s+at /;

/** One HTTP answer, read by whichever runner sent the case. */
export interface Answer {
  status: number;
  headers: Headers;
  /** The body as text; "" for an event stream (cancelled after its headers) or a body-less answer. */
  text: string;
}

/**
 * Checks one answer of the Worker against the corpus table: the status, a JSON body (errors
 * included) with the tabled code and a message a person can read, no stack trace, no echoed input,
 * `Allow` on a 405, `Retry-After` on a 429, and a batch's per-entry results.
 */
export function expectAsTabled(c: HostileCase, res: Answer, where: string): void {
  const type = res.headers.get("Content-Type") ?? "";
  if (c.method === "HEAD" || c.expect.status === 204) {
    expect(res.status, where).toBe(c.expect.status);
    expect(res.text, where).toBe("");
    return;
  }
  if (type.startsWith("text/event-stream")) {
    expect(res.status, where).toBe(c.expect.status);
    expect(c.expect.code, where).toBeNull();
    return;
  }
  expect({ status: res.status, body: res.text.slice(0, 300) }, where).toMatchObject({ status: c.expect.status });
  // Every answer of the relay is JSON (errors included).
  expect(type, where).toMatch(/^application\/json/);
  const body = JSON.parse(res.text) as { error?: { code: string; message: string }; results?: Array<{ id?: string; error?: { code: string } }> };
  if (c.expect.code !== null) {
    expect(body.error?.code, where).toBe(c.expect.code);
    expect(body.error?.message.length, where).toBeGreaterThan(10);
    expect(body.error?.message, where).not.toMatch(STACK_TRACE);
    // A refused request never echoes its input at length.
    expect(res.text.length, where).toBeLessThan(2000);
    if (res.status === 405) expect(res.headers.get("Allow"), where).toBeTruthy();
    if (res.status === 429) expect(res.headers.get("Retry-After"), where).toBeTruthy();
  } else {
    expect(body.error, where).toBeUndefined();
  }
  if (c.expect.results) {
    expect(
      body.results?.map((r) => (r.id !== undefined ? "ok" : r.error?.code)),
      where,
    ).toEqual(c.expect.results);
  }
}

/** Checks a socket's answer to a hostile frame: the tabled error code and ref, no stack trace. */
export function expectFrameError(f: HostileFrame, answer: Record<string, unknown>, where: string): void {
  const error = answer.error as { code?: string; message?: string } | undefined;
  expect({ type: answer.type, code: error?.code, ref: answer.ref }, where).toEqual({ type: "error", code: f.expect.code, ref: f.expect.ref });
  expect(String(error?.message), where).not.toMatch(STACK_TRACE);
}
