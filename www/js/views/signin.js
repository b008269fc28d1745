// The sign-in view: checks a candidate admin token against the API before keeping it.
import { byId, announce } from '../dom.js';
import { api, ApiError, describeError, setToken } from '../api.js';

let signedIn = () => {};

async function onTokenSubmit(ev) {
  ev.preventDefault();
  const input = byId('token-input');
  const err = byId('token-error');
  const btn = byId('token-submit');
  const candidate = input.value.trim();
  if (!candidate) {
    err.textContent = 'Enter the admin token.';
    err.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  btn.disabled = true;
  btn.textContent = 'Checking…';
  err.hidden = true;
  try {
    await api('/api/jobs?limit=1', { token: candidate, signOutOn401: false });
    setToken(candidate);
    input.value = '';
    input.removeAttribute('aria-invalid');
    announce('Signed in.');
    signedIn();
  } catch (e) {
    let msg;
    if (e instanceof ApiError && e.status === 401) msg = 'The admin token was not accepted. Check it and try again.';
    else if (e instanceof ApiError && e.status === 404) msg = 'The admin API is turned off on this Worker: set the ADMIN_TOKEN secret to enable it.';
    else msg = describeError(e, 'Could not check the token');
    err.textContent = msg;
    err.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    input.select();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Sign in';
  }
}

/** Shows `message` above the sign-in form, or hides the message when it is empty. */
export function showSignInError(message) {
  const err = byId('token-error');
  if (message) {
    err.textContent = message;
    err.hidden = false;
  } else {
    err.hidden = true;
  }
}

/** Wires the form (once, at boot); `onSignedIn` runs after a token is accepted and kept. */
export function initSignIn({ onSignedIn }) {
  signedIn = onSignedIn;
  byId('token-form').addEventListener('submit', onTokenSubmit);
  byId('token-show').addEventListener('change', (ev) => {
    byId('token-input').type = ev.currentTarget.checked ? 'text' : 'password';
  });
  byId('token-input').addEventListener('input', () => byId('token-input').removeAttribute('aria-invalid'));
}
