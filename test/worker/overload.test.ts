import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config";
import { renderError, unavailableError } from "../../src/errors";
import { publish, SERVICE_PUBLISHER } from "../../src/room/publish";

/** Errors as the Durable Objects platform throws them (developers.cloudflare.com/durable-objects/best-practices/error-handling). */
const overloaded = () => Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true });
const transient = () => Object.assign(new Error("Network connection lost."), { retryable: true });

/** An Env whose every room's publish fails with `error`. */
function envWhoseRoomsThrow(error: Error): Env {
  const room = { publish: () => Promise.reject(error) };
  return { ROOMS: { idFromName: (name: string) => name, get: () => room } } as unknown as Env;
}

const config = readConfig({} as Env);

describe("a room the platform cannot reach or that is overloaded", () => {
  it.each([
    ["overloaded", overloaded],
    ["transiently unreachable", transient],
  ])("%s: a publish is answered 503 unavailable with Retry-After, quickly and explicitly", async (_name, makeError) => {
    const publishing = publish(envWhoseRoomsThrow(makeError()), config, SERVICE_PUBLISHER, { channel: "news", data: "hello" });
    const error = await publishing.catch((e: unknown) => e);
    // As a RelayError already, so batch results and /v1/ws error frames carry the same code.
    expect(error).toMatchObject({ name: "RelayError", code: "unavailable" });
    const response = renderError(error as Error, undefined as never);
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("1");
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unavailable");
    expect(body.error.message).toMatch(/Idempotency-Key/);
  });

  it("leaves every other error alone: a bug in the relay stays a 500 without internals", async () => {
    const bug = new TypeError("x is undefined");
    expect(unavailableError(bug)).toBeUndefined();
    expect(unavailableError(Object.assign(new Error("remote"), { remote: true, retryable: false }))).toBeUndefined();
    const response = renderError(bug, undefined as never);
    expect(response.status).toBe(500);
    expect(JSON.stringify(await response.json())).not.toContain("x is undefined");
  });
});
