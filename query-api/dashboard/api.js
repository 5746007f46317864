// The API client: signs in with OAuth2 client credentials, keeps the token in
// sessionStorage (gone when the tab closes; the secret itself is never
// stored), and sends it with every call. A 401 or an expired token drops it
// and tells the app to show the sign-in form again.

const KEY = 'ecg-stream.dashboard.token';
// Sign in again this long before the token expires, so no call races expiry.
const EXPIRY_MARGIN_MS = 30_000;

let signedOut = () => {};

/** Registers what to do when the session ends (401, expiry, sign-out). */
export function onSignedOut(fn) {
  signedOut = fn;
}

/** The current session {access_token, client_id, expires_at} or null. */
export function session() {
  let s = null;
  try {
    s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    s = null;
  }
  return s && s.access_token && s.expires_at > Date.now() ? s : null;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** POST /oauth/token; resolves to the session or rejects with the server's reason. */
export async function signIn(clientId, clientSecret) {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: clientId,
    client_secret: clientSecret,
  });
  // credentials: 'omit': the token endpoint's 401 carries `WWW-Authenticate:
  // Basic` (RFC 6749), which would otherwise make the browser pop up its own
  // login dialog instead of letting the form show the refusal.
  const r = await fetch('/oauth/token', { method: 'POST', body: form, credentials: 'omit' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.access_token) {
    const why = body.error_description || body.message || body.error || `HTTP ${r.status}`;
    throw new ApiError(r.status, `Sign-in failed: ${why}`, body);
  }
  const s = {
    access_token: body.access_token,
    client_id: clientId,
    scope: body.scope || '',
    expires_at: Date.now() + Number(body.expires_in || 0) * 1000 - EXPIRY_MARGIN_MS,
  };
  sessionStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

export function signOut(reason = '') {
  sessionStorage.removeItem(KEY);
  signedOut(reason);
}

/**
 * GET `path` with query `params` (an object; array values repeat the key,
 * null/undefined/'' are left out); resolves to the JSON body.
 */
export async function get(path, params = {}) {
  const s = session();
  if (!s) {
    signOut('Your session has expired; sign in again.');
    throw new ApiError(401, 'not signed in');
  }
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one !== null && one !== undefined && one !== '') q.append(k, String(one));
    }
  }
  const url = q.size ? `${path}?${q}` : path;
  const r = await fetch(url, {
    headers: { Authorization: `Bearer ${s.access_token}`, Accept: 'application/json' },
    credentials: 'omit', // the bearer token is the only credential; no cookies, no dialogs
  });
  if (r.status === 401) {
    signOut('The API refused the token; sign in again.');
    throw new ApiError(401, 'unauthorized');
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const why = body && body.message ? body.message : `HTTP ${r.status}`;
    throw new ApiError(r.status, `${path}: ${why}`, body);
  }
  return body;
}
