// The ledger's /v1 API, same origin. Errors are RFC 9457 problems: ApiError carries the
// status, the problem's code and the field at fault.

import { credential } from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = (problem?.type ?? '').split(':').pop();
    this.field = problem?.field ?? null;
  }
}

/** Call `/v1{path}`; the JSON answer (its text with `raw`; {status, headers, body} with `full`). */
export async function api(path, { role, method = 'GET', body, headers = {}, raw = false, full = false } = {}) {
  const secret = role ? credential(role) : null;
  const answer = await fetch(`/v1${path}`, {
    method,
    headers: {
      Accept: 'application/json',
      ...(secret ? { Authorization: `Bearer ${secret}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!answer.ok) {
    let problem = null;
    try {
      problem = await answer.json();
    } catch {
      // not a problem document
    }
    throw new ApiError(answer.status, problem);
  }
  if (full) return { status: answer.status, headers: answer.headers, body: await answer.json() };
  return raw ? answer.text() : answer.json();
}

export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};
