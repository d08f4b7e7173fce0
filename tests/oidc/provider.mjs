// The OpenID Connect provider tests/sso.rs signs in through: the `oidc-provider` package
// (installed by .ci/run into tests/oidc/node_modules, never committed), with one test user
// (users.json) and its own small login and consent pages, served over plain HTTP on a
// loopback port the test reserves.
//
// Usage: node provider.mjs <port>
// Environment:
//   OIDC_CLIENTS  JSON array of client metadata (client_id, client_secret, redirect_uris,
//                 post_logout_redirect_uris), chosen by the test (ports are reserved at run time)
//   OIDC_ISSUER   issuer URL; default http://127.0.0.1:<port>
//   OIDC_USER_SUFFIX  appended to each user's subject and to the local part of its email
//                 (`alice+<suffix>@...`), so a test on a shared database meets a user of its own
//
// A fresh RSA signing key is made at every start, so a restart is a key rotation.
// Prints "ready <issuer>" on stdout once it listens.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');
const suffix = process.env.OIDC_USER_SUFFIX || '';
const listed = JSON.parse(readFileSync(fileURLToPath(new URL('./users.json', import.meta.url))));
const users = Object.fromEntries(Object.entries(listed).map(([sub, user]) => [
  sub + suffix,
  suffix ? { ...user, claims: { ...user.claims, email: user.claims.email.replace('@', `+${suffix}@`) } } : user,
]));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [key] },
  cookies: { keys: ['troupe-test-cookie-key-0123456789'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  // The claims of the granted scopes go into the ID token too, not only to userinfo, so
  // the relying party needs no userinfo round trip to sign a user in.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  // A refresh token for every client allowed the grant (without asking for offline_access).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  async findAccount(ctx, sub) {
    const user = users[sub];
    if (!user) return undefined;
    return { accountId: sub, async claims() { return { sub, ...user.claims }; } };
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><body>${body}</body></html>`);
};
const form = async (req) => {
  let data = '';
  for await (const chunk of req) data += chunk;
  return Object.fromEntries(new URLSearchParams(data));
};

// The sign-in and consent pages: GET /interaction/<uid> shows the form its prompt needs;
// POST /interaction/<uid>/login checks the password; POST /interaction/<uid>/confirm grants.
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      return page(res, 200, `<h1>Sign in</h1><form method="post" action="/interaction/${escape(uid)}/login">
<input name="login"><input name="password" type="password"><button>Sign in</button></form>`);
    }
    return page(res, 200, `<h1>Authorize ${escape(details.params.client_id)}</h1>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button>Continue</button></form>`);
  }
  if (req.method === 'POST' && action === 'login') {
    const { login, password } = await form(req);
    const found = Object.entries(users).find(([, u]) => u.login === login && u.password === password);
    if (!found) {
      return page(res, 401, `<h1>Sign in</h1><p>wrong login or password</p><form method="post" action="/interaction/${escape(uid)}/login">
<input name="login"><input name="password" type="password"><button>Sign in</button></form>`);
    }
    return provider.interactionFinished(req, res, { login: { accountId: found[0] } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    const { prompt: { details: missing }, grantId, session, params } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const consent = { grantId: await grant.save() };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return page(res, 404, 'not found');
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const m = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?(?:\?.*)?$/.exec(req.url);
  if (!m) return callback(req, res);
  return interaction(req, res, m[1], m[2]).catch((err) => page(res, 400, escape(err.message)));
});
server.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));
