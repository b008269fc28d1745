// Checks that the crate's modules, file by file, form a graph without cycles: no module uses a
// module that (directly or through others) uses it back. Reads `crate::…` and `super::…` paths
// in the code of src/ (comments and strings left out; a folder's mod.rs naming its children
// does not count), prints the graph in layers, and exits 1 on a cycle. Run by `npm test`;
// `node scripts/check-modules.mjs` alone prints the layers; `--top` checks top-level modules
// only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');

/** Module path of a file under src/: `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, `src/a.rs` → `a`. */
function moduleOf(file) {
  const rel = path.relative(src, file).replace(/\.rs$/, '').split(path.sep);
  if (rel[rel.length - 1] === 'mod') rel.pop();
  return rel.join('::');
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

// Every module (file) of the crate, so that a path can be cut at the module it names.
const files = rustFiles(src);
const modules = new Set(files.map(moduleOf).filter((m) => m !== 'lib'));
/** The longest module that `segments` starts with (`["a", "b", "Item"]` → `a::b`), if any. */
function moduleIn(segments) {
  for (let n = segments.length; n > 0; n--) {
    const m = segments.slice(0, n).join('::');
    if (modules.has(m)) return m;
  }
  return null;
}
const TOP = process.argv.includes('--top');

/**
 * Every `crate::…` and `super::…` path in a file's code, as segment lists relative to the crate:
 * `use super::{a, b::c}` in `x::y` gives `["x", "a"]`, `["x", "b", "c"]`. One level of braces
 * (all the crate uses).
 */
function pathsIn(code, from) {
  const out = [];
  // `super` of module `a::b` (a/b.rs or a/b/mod.rs) is `a`.
  const base = from.split('::');
  const parentOf = (segs) => segs.slice(0, -1);
  for (const m of code.matchAll(/\b(crate|(?:super::)*super)::(?:\{([^}]*)\}|([a-z_][a-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*))/g)) {
    let prefix;
    if (m[1] === 'crate') prefix = [];
    else {
      const ups = m[1].split('::').length;
      prefix = base;
      for (let k = 0; k < ups; k++) prefix = parentOf(prefix);
    }
    const tails = m[2] !== undefined ? m[2].split(',').map((s) => s.trim()).filter(Boolean) : [m[3]];
    for (const tail of tails) {
      const segs = tail.split('::').filter((s) => s && s !== 'self');
      out.push([...prefix, ...segs]);
    }
  }
  return out;
}

const edges = new Map();
for (const file of files) {
  let from = moduleOf(file);
  if (from === 'lib') continue;
  if (TOP) from = from.split('::')[0];
  if (!edges.has(from)) edges.set(from, new Set());
  const code = codeOnly(fs.readFileSync(file, 'utf8'));
  for (const segs of pathsIn(code, moduleOf(file))) {
    let to = moduleIn(segs);
    if (!to) continue;
    if (TOP) to = to.split('::')[0];
    // A module using its own parent's items, or a folder's mod.rs naming its children
    // (re-exports), are not edges between files; everything else is.
    if (to === from) continue;
    if (!TOP && to.startsWith(`${from}::`) && file.endsWith(`${path.sep}mod.rs`)) continue;
    edges.get(from).add(to);
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
