// A real OpenID Connect provider for Prism's tests: panva's certified
// `oidc-provider` (9.13.3, installed by scripts/ensure-oidc-provider.sh),
// started by crates/test-support/src/oidc.rs as
//
//   node oidc_provider.mjs PORT ACCOUNTS_FILE CLIENT_JSON
//
// with `node_modules` (the cached install) next to this file. It listens on
// 127.0.0.1:PORT with the issuer http://127.0.0.1:PORT and prints
// `ready PORT` on stdout once listening.
//
// - One static client, CLIENT_JSON: client metadata (client_id,
//   client_secret, redirect_uris, token_endpoint_auth_method: by default
//   client_secret_basic) for the authorization code flow; PKCE (S256, the
//   only method oidc-provider 9 knows) is required of every client.
// - Accounts, read from ACCOUNTS_FILE at each login and at each token
//   issuance (so a test can change a user's groups between logins):
//   {"alice": {"password": "...", "email": "...", "name": "...",
//   "groups": ["shop-ops"]}}. The claims of the requested scopes (profile:
//   preferred_username, name; email: email; groups: groups) are in the ID
//   token (conformIdTokenClaims: false) and at the userinfo endpoint.
// - Our own interaction page instead of the development one: GET
//   /interaction/UID is a plain HTML form (inputs `login` and `password`, a
//   button with id `submit`), POST /interaction/UID/login checks the password
//   and finishes the interaction with the login and a grant of everything
//   requested (no consent page). A wrong password shows the form again with
//   an error (status 401).
// - An RSA signing key (RS256) generated at start.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const [port, accountsFile, clientJson] = process.argv.slice(2);
if (!port || !accountsFile || !clientJson) {
  console.error('usage: node oidc_provider.mjs PORT ACCOUNTS_FILE CLIENT_JSON');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
// stdout says `ready PORT` and nothing else: oidc-provider's notices
// (console.log, console.info) go to stderr with its warnings.
console.log = console.error;
console.info = console.error;

function accounts() {
  return JSON.parse(fs.readFileSync(accountsFile, 'utf8'));
}

function account(id) {
  const all = accounts();
  return Object.prototype.hasOwnProperty.call(all, id) ? all[id] : undefined;
}

const signingKey = crypto
  .generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...JSON.parse(clientJson),
    },
  ],
  jwks: { keys: [{ ...signingKey, kid: 'prism-test-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: ['prism-test-oidc-cookie-key'] },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const a = account(id);
    if (!a) return undefined;
    return {
      accountId: id,
      async claims() {
        // Read again: the claims are those of the file at token time.
        const now = account(id) || a;
        return {
          sub: id,
          // A name the account file may set apart from the subject (a renamed or reused name).
          preferred_username: now.preferred_username || id,
          email: now.email,
          name: now.name,
          groups: now.groups || [],
        };
      },
    };
  },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function form(res, uid, status, error) {
  const body = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<main>
<h1>Sign in</h1>
${error ? `<p id="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="login">Username</label>
<input id="login" name="login" type="text" autofocus required>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button id="submit" type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grants everything the authorization request asked for: its scopes and
// the claims of its `claims` parameter, if any.
async function grantAll(details, accountId) {
  const { params, prompt } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  const claims = new Set(prompt.details.missingOIDCClaims || []);
  if (params.claims) {
    const requested = JSON.parse(params.claims);
    for (const part of ['id_token', 'userinfo']) {
      Object.keys(requested[part] || {}).forEach((c) => claims.add(c));
    }
  }
  if (claims.size) grant.addOIDCClaims([...claims]);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end('interaction mismatch\n');
    return;
  }
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      form(res, uid, 200);
    } else {
      // Signed in already, only consent missing: granted without a page.
      const grantId = await grantAll(details, details.session.accountId);
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const body = await readForm(req);
    const login = body.get('login') || '';
    const a = account(login);
    if (!a || typeof a.password !== 'string' || a.password !== (body.get('password') || '')) {
      form(res, uid, 401, 'Invalid username or password.');
      return;
    }
    const grantId = await grantAll(details, login);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  res.writeHead(405, { 'Content-Type': 'text/plain' }).end('method not allowed\n');
}

const callback = provider.callback();

const server = http.createServer((req, res) => {
  const path = new URL(req.url, issuer).pathname;
  const m = path.match(/^\/interaction\/([^/]+)(?:\/([^/]+))?$/);
  if (!m) {
    callback(req, res);
    return;
  }
  interaction(req, res, decodeURIComponent(m[1]), m[2]).catch((err) => {
    console.error('interaction error', err);
    if (!res.headersSent) {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(`${err.name || 'Error'}: ${err.message}\n`);
    } else {
      res.end();
    }
  });
});

server.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`ready ${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
