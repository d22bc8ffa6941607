import assert from "node:assert/strict";
import { type Challenge, findChallenge, parseChallenges } from "../../lib/registry/challenge.ts";

const CASES: [header: string | null | undefined, expected: Challenge[]][] = [
  [null, []],
  [undefined, []],
  ["", []],
  ["   ,  , ", []],
  // Docker Hub / distribution token auth.
  [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/busybox:pull",
      },
    }],
  ],
  [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:samalba/my-app:pull,push",
        error: "insufficient_scope",
      },
    }],
  ],
  // distribution's htpasswd and testbed token server.
  ['Basic realm="testbed-realm"', [{ scheme: "basic", params: { realm: "testbed-realm" } }]],
  [
    'Bearer realm="http://127.0.0.1:5600/token",service="testbed-registry"',
    [{
      scheme: "bearer",
      params: { realm: "http://127.0.0.1:5600/token", service: "testbed-registry" },
    }],
  ],
  // Case-insensitive scheme and param names; spaces around "=" and commas.
  [
    'BEARER Realm = "r" ,  Service=svc',
    [{ scheme: "bearer", params: { realm: "r", service: "svc" } }],
  ],
  // Several challenges in one header (RFC 7235 §4.1 example).
  [
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    [
      { scheme: "newauth", params: { realm: "apps", type: "1", title: 'Login to "apps"' } },
      { scheme: "basic", params: { realm: "simple" } },
    ],
  ],
  // Two headers joined by Headers.get(): ", ".
  [
    'Basic realm="a", Bearer realm="https://t/token",service="s"',
    [
      { scheme: "basic", params: { realm: "a" } },
      { scheme: "bearer", params: { realm: "https://t/token", service: "s" } },
    ],
  ],
  // Commas and escapes inside quoted strings.
  [
    'Bearer realm="https://a/t?x=1,y=2",scope="repository:a:pull repository:b:pull,push",note="back\\\\slash"',
    [{
      scheme: "bearer",
      params: {
        realm: "https://a/t?x=1,y=2",
        scope: "repository:a:pull repository:b:pull,push",
        note: "back\\slash",
      },
    }],
  ],
  // token68 forms.
  ["Negotiate abc123==", [{ scheme: "negotiate", params: {}, token68: "abc123==" }]],
  [
    "Negotiate a/b+c=, Basic realm=x",
    [
      { scheme: "negotiate", params: {}, token68: "a/b+c=" },
      { scheme: "basic", params: { realm: "x" } },
    ],
  ],
  // Bare schemes.
  ["Basic", [{ scheme: "basic", params: {} }]],
  ["Negotiate, NTLM", [{ scheme: "negotiate", params: {} }, { scheme: "ntlm", params: {} }]],
  // Empty list elements, duplicate params (first wins), empty values.
  [
    'Bearer realm="r",,service="s", realm="other",scope=',
    [{ scheme: "bearer", params: { realm: "r", service: "s", scope: "" } }],
  ],
  // Unterminated quote takes the rest.
  ['Bearer realm="https://x/token', [{ scheme: "bearer", params: { realm: "https://x/token" } }]],
  // Tabs as whitespace.
  ['Basic\trealm="t"', [{ scheme: "basic", params: { realm: "t" } }]],
  // Garbage is skipped, valid parts kept.
  [
    '@@@, Bearer realm="r"',
    [{ scheme: "bearer", params: { realm: "r" } }],
  ],
  // A token value with URL characters.
  [
    "Bearer realm=https://auth.example.com/token,service=registry.example.com",
    [{
      scheme: "bearer",
      params: { realm: "https://auth.example.com/token", service: "registry.example.com" },
    }],
  ],
];

Deno.test("parseChallenges: table", () => {
  for (const [header, expected] of CASES) {
    assert.deepEqual(parseChallenges(header), expected, String(header));
  }
});

Deno.test("parseChallenges: never throws on odd input", () => {
  const odd = ['"', "=", '=,="', "\\", 'Bearer ="x"', "Basic realm", 'a="\\', ",,,Basic,,,"];
  for (const text of odd) {
    const result = parseChallenges(text);
    assert.ok(Array.isArray(result), text);
  }
  assert.deepEqual(parseChallenges(",,,Basic,,,"), [{ scheme: "basic", params: {} }]);
});

Deno.test("findChallenge: case-insensitive lookup", () => {
  const challenges = parseChallenges('Basic realm="a", Bearer realm="b"');
  assert.equal(findChallenge(challenges, "Bearer")?.params.realm, "b");
  assert.equal(findChallenge(challenges, "BASIC")?.params.realm, "a");
  assert.equal(findChallenge(challenges, "digest"), undefined);
});
