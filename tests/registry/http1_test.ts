/**
 * The HTTP/1.1 upload writer (lib/registry/http1.ts): an early answer ends the upload, and the
 * idle watchdog never fires on a connection that is already finished (it once did, after the
 * body's last write re-armed it: an uncaught BadResource that ended the whole process).
 */
import assert from "node:assert/strict";
import { sendHttp1, Watchdog } from "../../lib/registry/http1.ts";

Deno.test("http1: an early answer while the body still streams; no watchdog after the end", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    await conn.read(buf); // the head (and maybe some body)
    await conn.write(
      new TextEncoder().encode("HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"),
    );
    // Keep reading what the client still sends, then close.
    try {
      while ((await conn.read(buf)) !== null) { /* drain */ }
    } catch {
      // reset by the client
    }
    conn.close();
  })();
  // A body that keeps coming for a while after the answer: its writes kick the watchdog.
  let n = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (n++ === 20) return controller.close();
      await new Promise((r) => setTimeout(r, 5));
      controller.enqueue(new Uint8Array(1024));
    },
  });
  const res = await sendHttp1({
    method: "PUT",
    url: new URL(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/upload`),
    headers: {},
    body,
    length: 20 * 1024,
    idleTimeout: 30,
  });
  assert.equal(res.status, 201);
  assert.equal(await new Response(res.body).text(), "ok");
  // Long enough for any re-armed watchdog to fire (an uncaught error would fail this test).
  await new Promise((r) => setTimeout(r, 300));
  await served;
  listener.close();
});

Deno.test("http1: a stopped watchdog stays stopped, even when kicked again", async () => {
  let fired = 0;
  const dog = new Watchdog(20, () => fired++);
  dog.kick();
  dog.stop();
  dog.kick(); // the body's last write, finishing after the answer was read
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(fired, 0);
  const live = new Watchdog(20, () => fired++);
  await new Promise((r) => setTimeout(r, 80));
  live.stop();
  assert.equal(fired, 1, "an idle connection is failed");
});
