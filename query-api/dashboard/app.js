// The page's router: the sign-in form until there is a session, then the
// overview (#/) or one ECG (#/ecg/<id>). Each view has start() and stop(),
// so leaving a view stops its refresh timer.

import * as api from './api.js';
import { $ } from './format.js';
import { Overview } from './overview.js';
import { EcgPage } from './ecg.js';

const VIEWS = ['signin', 'overview', 'ecg-view'];
const ECG_ROUTE = /^#\/ecg\/([0-9a-fA-F-]{36})$/;

let current = null;

function show(id) {
  for (const v of VIEWS) $(v).hidden = v !== id;
}

function route() {
  if (current) current.stop();
  current = null;
  const s = api.session();
  $('signout').hidden = !s;
  $('whoami').textContent = s ? `signed in as ${s.client_id}` : '';
  if (!s) {
    show('signin');
    $('client-id').focus();
    return;
  }
  const m = location.hash.match(ECG_ROUTE);
  if (m) {
    show('ecg-view');
    current = new EcgPage(m[1].toLowerCase());
  } else {
    show('overview');
    current = new Overview();
  }
  current.start();
}

function signedOut(reason) {
  $('signin-error').textContent = reason || '';
  route();
}

async function submitSignIn(event) {
  event.preventDefault();
  const button = $('signin-submit');
  button.disabled = true;
  $('signin-error').textContent = '';
  try {
    await api.signIn($('client-id').value.trim(), $('client-secret').value);
    $('client-secret').value = '';
    route();
  } catch (e) {
    $('signin-error').textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

api.onSignedOut(signedOut);
$('signin-form').addEventListener('submit', submitSignIn);
$('signout').addEventListener('click', () => api.signOut(''));
window.addEventListener('hashchange', route);
route();
