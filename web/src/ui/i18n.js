// Two languages, switchable on every page: zh-CN and English. Every label and message the
// pages show comes from MESSAGES; numbers and dates are formatted in the chosen locale.
// The choice is kept in localStorage (a preference, not a credential).

import { MESSAGES } from './messages.js';

export const LANGUAGES = [['zh-CN', '中文'], ['en', 'English']];
const KEY = 'carbon-ledger.lang';
let current = pick();
const listeners = new Set();

function pick() {
  const saved = safeGet(KEY);
  if (saved && MESSAGES[saved]) return saved;
  const nav = (globalThis.navigator?.language ?? 'en').toLowerCase();
  return nav.startsWith('zh') ? 'zh-CN' : 'en';
}

function safeGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export const lang = () => current;

export function setLang(next) {
  if (!MESSAGES[next] || next === current) return;
  current = next;
  try {
    localStorage.setItem(KEY, next);
  } catch {
    // a page from disk may have no storage: the choice lasts for the page
  }
  document.documentElement.lang = next;
  for (const fn of listeners) fn(next);
}

export const onLangChange = (fn) => listeners.add(fn);

/** The message `key` in the current language, with {name} placeholders filled. */
export function t(key, vars = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function num(value, options) {
  return new Intl.NumberFormat(current, options).format(typeof value === 'bigint' ? Number(value) : value);
}

/** Grams CO2e as kg, in the locale. */
export const kg = (grams) => `${num(grams / 1000, { maximumFractionDigits: 3 })} kg`;

export function dateTime(unixSeconds) {
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Shanghai' })
    .format(new Date(unixSeconds * 1000));
}

/** A YYYY-MM-DD or YYYY-MM period label in the locale. */
export function period(label) {
  const [y, m, d] = label.split('-').map(Number);
  const options = d ? { year: 'numeric', month: 'short', day: 'numeric' } : { year: 'numeric', month: 'long' };
  return new Intl.DateTimeFormat(current, { ...options, timeZone: 'UTC' }).format(new Date(Date.UTC(y, m - 1, d || 1)));
}

/** A behaviour code's name, or the code itself when there is no translation. */
export function behaviour(code) {
  const key = `behaviour.${code}`;
  return MESSAGES[current][key] ?? MESSAGES.en[key] ?? code;
}
