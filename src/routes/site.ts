import { Hono } from "hono";
import clientJs from "../../public/client.js?raw";
import demoCss from "../../public/demo.css?raw";
import demoJs from "../../public/demo.js?raw";
import indexHtml from "../../public/index.html?raw";
import type { AppEnv } from "../app-env";
import { resource } from "./resource";

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";

/** path → [body, Content-Type]; public/client.js is built from src/client by `npm run build:client`. */
const FILES: Record<string, [string, string]> = {
  "/": [indexHtml, HTML],
  "/index.html": [indexHtml, HTML],
  "/demo.css": [demoCss, "text/css; charset=utf-8"],
  "/demo.js": [demoJs, JS],
  "/client.js": [clientJs, JS],
};

/** The demo page and the browser SDK bundle, from public/, served by the Worker itself. */
export const site = new Hono<AppEnv>();

for (const [path, [body, type]] of Object.entries(FILES)) {
  // Revalidated on every load, so a page never runs an SDK older than the relay it talks to.
  resource(site, path, { GET: (c) => c.body(body, 200, { "Content-Type": type, "Cache-Control": "no-cache" }) });
}
