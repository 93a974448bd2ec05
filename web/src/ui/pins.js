// The ledgers this browser trusts, one per chain id, kept in localStorage: a pin is public
// data (a chain id and a contract address), not a credential. The first pin of a chain is
// trust on first use and is shown loudly; a pin never changes silently: another contract
// for a pinned chain is refused until the user removes the pin.

const KEY = 'carbon-ledger.pins';
const RPC_KEY = 'carbon-ledger.rpc';

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

function save(pins) {
  try {
    localStorage.setItem(KEY, JSON.stringify(pins));
  } catch {
    // a page without storage keeps the pin for this page only
  }
  memory = pins;
}

let memory = load();

export const pins = () => ({ ...memory });

/** The one pinned ledger to use (this page verifies one ledger at a time). */
export function currentPin() {
  const all = Object.values(memory);
  return all.length ? all.sort((a, b) => b.pinnedAt - a.pinnedAt)[0] : null;
}

export class PinConflict extends Error {}

/** Pin a descriptor that was checked against the chain; returns {pin, isNew}. */
export function pinDescriptor(descriptor, source) {
  const existing = memory[descriptor.chainId];
  if (existing && existing.contract.toLowerCase() !== descriptor.contract.toLowerCase()) {
    throw new PinConflict(existing.contract);
  }
  if (existing) return { pin: existing, isNew: false };
  const pin = {
    chainId: descriptor.chainId, contract: descriptor.contract, deployment: descriptor.deployment,
    receiptSigners: descriptor.receiptSigners, rpcHint: descriptor.endpoints.rpc[0] ?? null, source, pinnedAt: Date.now(),
  };
  save({ ...memory, [descriptor.chainId]: pin });
  return { pin, isNew: true };
}

export function unpin(chainId) {
  const next = { ...memory };
  delete next[chainId];
  save(next);
}

export const trustRoot = (pin) => (pin ? { chainId: pin.chainId, contract: pin.contract, source: pin.source } : null);

/** The RPC endpoint the user chose, else the pinned descriptor's first hint. */
export function rpcUrl(pin = currentPin()) {
  try {
    return localStorage.getItem(RPC_KEY) || pin?.rpcHint || '';
  } catch {
    return pin?.rpcHint || '';
  }
}

export function setRpcUrl(url) {
  try {
    if (url) localStorage.setItem(RPC_KEY, url);
    else localStorage.removeItem(RPC_KEY);
  } catch {
    // kept nowhere: the field keeps it
  }
}
