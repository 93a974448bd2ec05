// Sign-in with a bearer credential the operator issued (a citizen token or an API key).
// It is checked by one API call, then kept in sessionStorage only.

import { api, ApiError } from './api.js';
import { clear, h } from './dom.js';
import { t } from './i18n.js';
import { credential, signIn, signOut } from './session.js';
import { notice } from './shell.js';

/** A form that signs `role` in; `probe` is the path to check it with; then `done()`. */
export function signInForm(role, probe, done) {
  const input = h('input', { type: 'password', id: `${role}-secret`, autocomplete: 'off', required: true, spellcheck: false });
  const status = h('div', { 'aria-live': 'polite' });
  const submit = async (e) => {
    e.preventDefault();
    signIn(role, input.value.trim());
    try {
      await api(probe, { role });
      done();
    } catch (err) {
      signOut(role);
      clear(status, notice('error', err instanceof ApiError && (err.status === 401 || err.status === 403)
        ? t('signin.refused') : `${t('api.error')} ${err.message}`));
    }
  };
  return h('form', { class: 'signin', id: 'signin', onsubmit: submit },
    h('h2', {}, t(`signin.${role}`)),
    h('p', { class: 'small' }, t(`signin.${role}Help`)),
    h('div', { class: 'field' }, h('label', { for: `${role}-secret` }, t(`signin.${role}Label`)), input),
    h('button', { type: 'submit', class: 'primary' }, t('signin.go')),
    status);
}

export function signOutButton(role, after) {
  return h('button', { type: 'button', class: 'secondary signout', onclick: () => {
    signOut(role);
    after();
  } }, t('signin.out'));
}

export const signedIn = (role) => credential(role) !== null;
