// Checks that the crate's top-level modules form a graph without cycles: no module uses a
// module that (directly or through others) uses it back. Reads `crate::<module>` paths in the
// code of src/ (comments and strings left out), prints the graph in layers, and exits 1 on a
// cycle. Run by `npm test`; `node scripts/check-modules.mjs` alone prints the layers.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');

/** Top-level module of a file under src/: `src/a/b.rs` → `a`, `src/a.rs` → `a`. */
function moduleOf(file) {
  const rel = path.relative(src, file).split(path.sep);
  return rel[0].replace(/\.rs$/, '');
}

/** The code of a Rust file without comments, string and char literals. */
export function codeOnly(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        if (text[i] === '/' && text[i + 1] === '*') { depth++; i += 2; } else if (text[i] === '*' && text[i + 1] === '/') { depth--; i += 2; } else i++;
      }
    } else if (c === 'r' && /^r#*"/.test(text.slice(i, i + 10)) && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
      const hashes = /^r(#*)"/.exec(text.slice(i))[1];
      const end = text.indexOf(`"${hashes}`, i + 2 + hashes.length);
      i = end < 0 ? text.length : end + 1 + hashes.length;
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === "'" && /^'(\\.|[^\\'])'/.test(text.slice(i, i + 4))) {
      i += text[i + 1] === '\\' ? 4 : 3;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function rustFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...rustFiles(p));
    else if (e.name.endsWith('.rs')) out.push(p);
  }
  return out;
}

const edges = new Map();
for (const file of rustFiles(src)) {
  const from = moduleOf(file);
  if (from === 'lib') continue;
  if (!edges.has(from)) edges.set(from, new Set());
  const code = codeOnly(fs.readFileSync(file, 'utf8'));
  // `crate::x` and `crate::{x, y::z}` (one level of braces is all the crate uses).
  for (const m of code.matchAll(/crate::\{([^}]*)\}|crate::([a-z_][a-z0-9_]*)/g)) {
    const names = m[1] ? m[1].split(',').map((s) => s.trim().split('::')[0]).filter(Boolean) : [m[2]];
    for (const to of names) if (to !== from && to !== 'self') edges.get(from).add(to);
  }
}

// Tarjan's strongly connected components: any component of more than one module is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) cycles.push(comp.sort());
  }
}
for (const v of [...edges.keys()].sort()) if (!idx.has(v)) visit(v);

if (cycles.length) {
  for (const c of cycles) {
    console.error(`modules: cycle between ${c.join(', ')}`);
    for (const a of c) {
      const back = [...(edges.get(a) ?? [])].filter((b) => c.includes(b));
      console.error(`  ${a} uses ${back.join(', ')}`);
    }
  }
  process.exit(1);
}

// Layers, leaves first: each module sits one above the highest module it uses.
const layer = new Map();
function depth(v) {
  if (layer.has(v)) return layer.get(v);
  const d = Math.max(-1, ...[...(edges.get(v) ?? [])].filter((w) => edges.has(w)).map(depth)) + 1;
  layer.set(v, d);
  return d;
}
const byLayer = [];
for (const v of edges.keys()) (byLayer[depth(v)] ??= []).push(v);
console.log(`modules: no cycles among ${edges.size} modules`);
byLayer.forEach((vs, d) => console.log(`  layer ${d}: ${vs.sort().join(', ')}`));
