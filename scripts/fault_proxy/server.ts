/**
 * Starts a fault proxy: the admin endpoint (`/__fault`) and the proxied requests on a hono app
 * served by `Deno.serve` on 127.0.0.1, behind the {@link Relay} that is the public port.
 * @module
 */
import { Hono } from "hono";
import { ProxyCore } from "./core.ts";
import { Forwarder } from "./forward.ts";
import { Relay } from "./relay.ts";
import { errorResponse } from "./responses.ts";
import type { FaultRule } from "./rules.ts";
import type { FaultProxy, FaultProxyOptions } from "./types.ts";

/** Starts a fault proxy in front of `target` (a base URL such as `http://127.0.0.1:5000`). */
export async function startFaultProxy(
  target: string,
  rules: FaultRule[] = [],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const ca = options.caFile ? await Deno.readTextFile(options.caFile) : undefined;
  const upstream = new Forwarder(new URL(target), options.forward ?? "node", ca);
  const core = new ProxyCore(upstream, options);
  core.setRules(rules);
  const app = faultApp(core);
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(err) {
      return errorResponse(502, "UNAVAILABLE", `fault proxy: ${(err as Error).message}`);
    },
  }, (req, info) => app.fetch(req, info as Deno.ServeHandlerInfo<Deno.NetAddr>));
  const relay = new Relay(options.port ?? 0, inner.addr.port);
  upstream.relay = relay;
  const port = relay.port;
  upstream.self = `http://127.0.0.1:${port}`;
  return {
    url: upstream.self,
    host: `127.0.0.1:${port}`,
    port,
    setRules: (r) => core.setRules(r),
    stats: () => core.stats(),
    resetStats: () => core.resetStats(),
    stop: async () => {
      relay.close();
      await inner.shutdown().catch(() => {});
      upstream.close();
    },
  };
}

/**
 * The proxy's hono app: `GET /__fault` gives the counters, `POST /__fault` replaces the rules
 * (`{"rules":[…]}` or a bare array), `DELETE /__fault` removes them; the rest is proxied.
 */
function faultApp(core: ProxyCore): Hono<{ Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> }> {
  const app = new Hono<{ Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> }>();
  app.get("/__fault", (c) => c.json(core.stats()));
  app.post("/__fault", async (c) => {
    try {
      const body = await c.req.json();
      core.setRules(Array.isArray(body) ? body : body.rules ?? []);
      return c.json({ ok: true, rules: core.stats().rules });
    } catch (e) {
      return c.json({ ok: false, error: (e as Error).message }, 400);
    }
  });
  app.delete("/__fault", (c) => {
    core.setRules([]);
    return c.json({ ok: true });
  });
  app.all("*", (c) => core.handle(c.req.raw, c.env.remoteAddr.port));
  return app;
}
