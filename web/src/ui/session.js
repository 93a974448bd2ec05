// Credentials live in sessionStorage (this tab, until it closes) or only in memory: never
// in a URL, never in localStorage. One per role.

const memory = new Map();
const key = (role) => `carbon-ledger.credential.${role}`;

export function credential(role) {
  try {
    return sessionStorage.getItem(key(role)) ?? memory.get(role) ?? null;
  } catch {
    return memory.get(role) ?? null;
  }
}

export function signIn(role, secret) {
  memory.set(role, secret);
  try {
    sessionStorage.setItem(key(role), secret);
  } catch {
    // storage refused: the credential stays in memory for this page
  }
}

export function signOut(role) {
  memory.delete(role);
  try {
    sessionStorage.removeItem(key(role));
  } catch {
    // nothing kept
  }
}
