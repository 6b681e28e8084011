import { describe, expect, it } from "vitest";
import { relay } from "./helpers";

describe("demo page and SDK bundle, served by the Worker", () => {
  it("serves the page at / with the stylesheet and script it links", async () => {
    const page = await relay("/");
    expect(page.status).toBe(200);
    expect(page.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).toContain('src="/demo.js"');
    expect(html).toContain('href="/demo.css"');
    for (const [path, type] of [
      ["/demo.js", "text/javascript"],
      ["/demo.css", "text/css"],
    ] as const) {
      const res = await relay(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("Content-Type")).toContain(type);
      expect((await res.text()).length).toBeGreaterThan(100);
    }
  });

  it("serves the SDK bundle a page imports from /client.js, revalidated on every load", async () => {
    const res = await relay("/client.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("Cache-Control")).toBe("no-cache");
    expect(await res.text()).toMatch(/export\s*\{[^}]*RelayClient/);
  });

  it("answers HEAD without a body, other methods with 405, and unknown files with the JSON 404", async () => {
    const head = await relay("/client.js", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const post = await relay("/", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("Allow")).toBe("GET");
    const missing = await relay("/nope.js");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
  });
});
