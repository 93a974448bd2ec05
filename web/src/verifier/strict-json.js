// Untrusted JSON read as I-JSON (RFC 7493), bounds first (docs/proof-bundle.md, "The
// document"). JSON.parse cannot see duplicate member names or lone surrogate escapes and
// has no depth limit, so one small scan of the tokens checks those before it runs: a
// tokenizer, not a parser of values (JSON.parse still decides what is JSON at all).

const BOM = [0xef, 0xbb, 0xbf];
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class JsonRefused extends Error {}

/** The bytes as text, refusing a document over `maxBytes`, a BOM or invalid UTF-8. */
export function decodeBounded(input, maxBytes) {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : toBytes(input);
  if (bytes.length > maxBytes) throw new JsonRefused(`over ${maxBytes} bytes`);
  if (BOM.every((b, i) => bytes[i] === b)) throw new JsonRefused('not JSON: a UTF-8 byte order mark');
  try {
    return utf8.decode(bytes);
  } catch {
    throw new JsonRefused('not JSON: invalid UTF-8');
  }
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new JsonRefused('expected bytes or text');
}

/**
 * Scan `text` outside its strings: nesting deeper than `maxDepth`, a member named twice in
 * one object (names compared after unescaping) or a lone UTF-16 surrogate escape is refused.
 * Text that is not well formed is left to JSON.parse to refuse.
 */
export function scanTokens(text, maxDepth) {
  const stack = []; // per open bracket: a Set of member names for an object, null for an array
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return; // unterminated: JSON.parse refuses it
      const token = text.slice(i, end + 1);
      checkSurrogates(token);
      const top = stack[stack.length - 1];
      if (expectName && top) {
        let name;
        try {
          name = JSON.parse(token);
        } catch {
          return; // not a JSON string (a raw control character, a bad escape): JSON.parse refuses it
        }
        if (top.has(name)) throw new JsonRefused(`duplicate member name ${JSON.stringify(name)}`);
        top.add(name);
      }
      expectName = false;
      i = end;
    } else if (c === '{' || c === '[') {
      stack.push(c === '{' ? new Set() : null);
      if (stack.length > maxDepth) throw new JsonRefused(`nested deeper than ${maxDepth} levels`);
      expectName = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectName = false;
    } else if (c === ',') {
      expectName = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
}

function stringEnd(text, start) {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

// A high surrogate escape must be followed at once by a low one; a low one never stands
// alone. (Raw surrogates cannot occur: the text was decoded from strict UTF-8.)
function checkSurrogates(token) {
  const escapes = /\\(u[0-9a-fA-F]{4}|.)/g;
  let pendingHigh = -1;
  for (let m; (m = escapes.exec(token)); ) {
    const unit = m[1].length === 5 ? parseInt(m[1].slice(1), 16) : -1;
    const adjacent = pendingHigh >= 0 && m.index === pendingHigh;
    if (pendingHigh >= 0 && !(adjacent && unit >= 0xdc00 && unit <= 0xdfff)) throw lone();
    if (adjacent) {
      pendingHigh = -1;
      continue;
    }
    pendingHigh = -1;
    if (unit >= 0xd800 && unit <= 0xdbff) pendingHigh = m.index + m[0].length;
    else if (unit >= 0xdc00 && unit <= 0xdfff) throw lone();
  }
  if (pendingHigh >= 0) throw lone();
}

function lone() {
  return new JsonRefused('not I-JSON: a lone UTF-16 surrogate');
}

/** Parse untrusted JSON with the bounds above; a number beyond a double is refused. */
export function parseStrictJson(input, { maxBytes, maxDepth }) {
  const text = decodeBounded(input, maxBytes);
  scanTokens(text, maxDepth);
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new JsonRefused(`not valid JSON: ${e.message}`);
  }
  if (!allFinite(value, 0)) throw new JsonRefused('not valid JSON: a number beyond a double');
  return value;
}

function allFinite(value, depth) {
  if (typeof value === 'number') return Number.isFinite(value);
  if (value === null || typeof value !== 'object' || depth > 64) return true;
  return Object.values(value).every((v) => allFinite(v, depth + 1));
}
