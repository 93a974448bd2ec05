// Builds web/dist from web/src with the pinned esbuild: one ES module per page (shared
// code split into chunks, minified), the stylesheet, an HTML file per page, and the verify
// page again as one standalone HTML file (script and style inline, allowed by their
// hashes in its own Content-Security-Policy) that works from disk.
// `node web/build.mjs` (run by `make setup`); prints each page's initial JS, gzipped.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const WEB = dirname(fileURLToPath(import.meta.url));
const DIST = join(WEB, 'dist');
export const PAGES = { home: 'index', verify: 'verify', citizen: 'citizen', auditor: 'auditor', partner: 'partner', public: 'public', campaigns: 'campaigns' };
const define = { __SIGNING_EXAMPLE__: JSON.stringify(readFileSync(join(WEB, 'examples/sign-submission.mjs'), 'utf8')) };
const common = { bundle: true, minify: true, target: 'es2022', define, legalComments: 'none', logLevel: 'warning' };

function html(title, head, body = '') {
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${head}
</head>
<body>${body}<noscript>This page needs JavaScript (ES2022) / 本页需要启用 JavaScript。</noscript></body>
</html>
`;
}

const sha256 = (text) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export async function buildWeb() {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(join(DIST, 'assets'), { recursive: true });
  const result = await build({
    ...common, entryPoints: Object.fromEntries(Object.keys(PAGES).map((p) => [p, join(WEB, `src/pages/${p}.js`)])),
    outdir: join(DIST, 'assets'), format: 'esm', splitting: true, chunkNames: 'chunk-[hash]', metafile: true,
  });
  writeFileSync(join(DIST, 'assets/app.css'), readFileSync(join(WEB, 'src/app.css')));
  for (const [page, file] of Object.entries(PAGES)) {
    writeFileSync(join(DIST, `${file}.html`), html('Carbon Ledger · 个人碳账本',
      `<link rel="stylesheet" href="/assets/app.css">\n<script type="module" src="/assets/${page}.js"></script>`));
  }
  // The standalone verifier: no network but the chain endpoint the user enters.
  const single = await build({ ...common, entryPoints: [join(WEB, 'src/pages/verify.js')], format: 'iife', write: false });
  const script = single.outputFiles[0].text.replace(/<\/script/gi, '<\\/script');
  const style = readFileSync(join(WEB, 'src/app.css'), 'utf8');
  const csp = `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; connect-src http: https:; img-src data:; base-uri 'none'; form-action 'none'`;
  writeFileSync(join(DIST, 'verify-standalone.html'), html('Carbon Ledger verifier · 个人碳账本验证',
    `<meta http-equiv="Content-Security-Policy" content="${csp}">\n<style>${style}</style>\n<script>${script}</script>`));
  copyApiDocs();
  return { sizes: initialSizes(result.metafile), standalone: Buffer.byteLength(script) };
}

/** The API docs' assets (/docs, /redoc: api/http/apidocs.py), from the pinned npm packages. */
export const API_DOCS = {
  'swagger-ui.css': 'swagger-ui-dist/swagger-ui.css',
  'swagger-ui-bundle.js': 'swagger-ui-dist/swagger-ui-bundle.js',
  'favicon-32x32.png': 'swagger-ui-dist/favicon-32x32.png',
  'redoc.standalone.js': 'redoc/bundles/redoc.standalone.js',
};

function copyApiDocs() {
  const out = join(DIST, 'apidocs');
  mkdirSync(out, { recursive: true });
  for (const [name, from] of Object.entries(API_DOCS)) copyFileSync(join(WEB, '..', 'node_modules', from), join(out, name));
  // ReDoc's footer shows a logo from its CDN: an empty image instead, so the page fetches nothing
  // from another host (its CSP would block it anyway).
  const redoc = join(out, 'redoc.standalone.js');
  const logo = 'https://cdn.redoc.ly/redoc/logo-mini.svg';
  const text = readFileSync(redoc, 'utf8');
  if (!text.includes(logo)) throw new Error(`redoc's bundle no longer names ${logo}: check what it fetches`);
  writeFileSync(redoc, text.replaceAll(logo, "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"));
  copyFileSync(join(WEB, 'src/apidocs/swagger-init.js'), join(out, 'swagger-init.js'));
}

/** Each page's initial JS: its entry and every chunk it imports statically, raw and gzipped. */
export function initialSizes(metafile) {
  const out = {};
  for (const [path, output] of Object.entries(metafile.outputs)) {
    const page = output.entryPoint?.match(/src\/pages\/(\w+)\.js$/)?.[1];
    if (!page) continue;
    const files = new Set([path]);
    const visit = (p) => metafile.outputs[p].imports.filter((i) => i.kind === 'import-statement')
      .forEach((i) => { if (!files.has(i.path)) { files.add(i.path); visit(i.path); } });
    visit(path);
    const bytes = [...files].map((f) => readFileSync(join(WEB, '..', f)));
    out[page] = {
      files: files.size, raw: bytes.reduce((s, b) => s + b.length, 0), gzip: bytes.reduce((s, b) => s + gzipSync(b, { level: 9 }).length, 0),
    };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { sizes, standalone } = await buildWeb();
  for (const [page, s] of Object.entries(sizes)) {
    console.log(`web: ${page.padEnd(8)} initial JS ${(s.gzip / 1024).toFixed(1)} KiB gzipped (${(s.raw / 1024).toFixed(1)} KiB, ${s.files} files)`);
  }
  console.log(`web: verify-standalone.html script ${(standalone / 1024).toFixed(1)} KiB`);
}
