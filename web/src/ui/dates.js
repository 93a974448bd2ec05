// Local dates as the ledger counts them: China Standard Time (UTC+8), YYYY-MM-DD.

const fmt = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });

export const today = () => fmt.format(new Date());

/** The last `n` months up to this one: [{label: 'YYYY-MM', from, to}], oldest first. */
export function lastMonths(n) {
  const [y, m] = today().split('-').map(Number);
  const out = [];
  for (let i = n - 1; i >= 0; i--) {
    const first = new Date(Date.UTC(y, m - 1 - i, 1));
    const last = new Date(Date.UTC(y, m - i, 0));
    const iso = (d) => d.toISOString().slice(0, 10);
    out.push({ label: iso(first).slice(0, 7), from: iso(first), to: iso(last) });
  }
  return out;
}

export const monthStart = () => `${today().slice(0, 8)}01`;

export function daysAgo(n) {
  return fmt.format(new Date(Date.now() - n * 86400000));
}

/** Unix seconds at the start of a local date (UTC+8). */
export const startOf = (date) => Date.parse(`${date}T00:00:00+08:00`) / 1000;
