// Size breakdown: where the bytes of the deployed .wasm go, by crate and module, with twiggy
// (`cargo install twiggy`; not installed by scripts/setup.sh, so a missing twiggy only leaves the
// breakdown out of BENCHMARKS.md).
//
// The deployed module has its names section stripped (scripts/opt-wasm.sh), so twiggy could only
// call its functions code[N]. With --build (the default) this builds the Worker again with names
// kept (`KEEP_WASM_NAMES=1 FORCE_BUILD=1 bash scripts/build.sh`: cargo has nothing to do, only
// wasm-bindgen and wasm-opt run), copies build/index_bg.wasm to target/bench/size-breakdown/, and
// builds build/index_bg.wasm again without names, so build/ ends as the `build` step left it. Given a .wasm built with
// names kept, it analyses that file and leaves build/ alone.
//
// Sizes are the shallow sizes twiggy reports for each item of the names-kept module, with the
// names subsections (absent from the deployed module) left out; they add up to the stripped
// module's size give or take a few bytes of section headers. Writes size-breakdown.json.
//
// Usage: node benches/size-breakdown.mjs [--build | <index_bg.wasm built with KEEP_WASM_NAMES=1>]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { root, writeResult } from './common.mjs';

const workDir = path.join(root, 'target/bench/size-breakdown');
const log = (...a) => console.error('size-breakdown:', ...a);

// ---- twiggy ----------------------------------------------------------------------------------

function findTwiggy() {
  const candidates = [process.env.TWIGGY_BIN, 'twiggy', path.join(os.homedir(), '.cargo/bin/twiggy')].filter(Boolean);
  for (const bin of candidates) {
    try {
      const version = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      return { bin, version };
    } catch {}
  }
  return null;
}

const twiggy = findTwiggy();
if (!twiggy) {
  log('twiggy is not installed (cargo install twiggy); no size breakdown in this run');
  writeResult('size-breakdown', { measured: false, reason: 'twiggy is not installed (`cargo install twiggy`)' });
  process.exit(0);
}
const runTwiggy = (argv) => JSON.parse(execFileSync(twiggy.bin, argv, { encoding: 'utf8', maxBuffer: 256 << 20 }));

// ---- the module with names -------------------------------------------------------------------

fs.mkdirSync(workDir, { recursive: true });
const arg = process.argv[2] ?? '--build';
let namesWasm;
let build = null;
if (arg === '--build') {
  const built = path.join(root, 'build/index_bg.wasm');
  namesWasm = path.join(workDir, 'index_bg.names.wasm');
  const keepNames = process.env.KEEP_WASM_NAMES === '1';
  log('building with names kept (KEEP_WASM_NAMES=1 FORCE_BUILD=1 bash scripts/build.sh)');
  try {
    execFileSync('bash', ['scripts/build.sh'], { cwd: root, stdio: ['ignore', 2, 2], env: { ...process.env, KEEP_WASM_NAMES: '1', FORCE_BUILD: '1' } });
    fs.copyFileSync(built, namesWasm);
  } finally {
    // Whatever happened, build/ gets its deployed module back (unless the caller keeps names):
    // built again without names, since scripts/opt-wasm.sh optimizes a little better then
    // than a names-kept module stripped afterwards.
    if (!keepNames && fs.existsSync(built)) {
      execFileSync('bash', ['scripts/build.sh'], { cwd: root, stdio: ['ignore', 2, 2], env: { ...process.env, KEEP_WASM_NAMES: '', FORCE_BUILD: '1' } });
    }
  }
  build = { wasm: path.relative(root, built), restripped: !keepNames };
} else {
  namesWasm = path.resolve(arg);
}

// The deployed equivalent: the same module through scripts/strip-wasm.sh (within about 0.5 % of
// the deployed module, which scripts/opt-wasm.sh optimizes without names).
const strippedWasm = path.join(workDir, 'index_bg.stripped.wasm');
fs.copyFileSync(namesWasm, strippedWasm);
execFileSync('bash', ['scripts/strip-wasm.sh', strippedWasm], { cwd: root, stdio: ['ignore', 2, 2], env: { ...process.env, KEEP_WASM_NAMES: '' } });
const sizeOf = (f) => {
  const b = fs.readFileSync(f);
  return { raw: b.length, gzip: zlib.gzipSync(b, { level: 9 }).length };
};
const stripped = sizeOf(strippedWasm);
const names = sizeOf(namesWasm);
if (build) {
  build.same_as_stripped_copy = fs.readFileSync(path.join(root, build.wasm)).equals(fs.readFileSync(strippedWasm));
}

// ---- grouping --------------------------------------------------------------------------------

// Items the stripped module does not have: the names section's subsections and `producers`.
const isStrippedAway = (n) => /^"[^"]*names?" subsection$/.test(n) || /^custom section '(name|producers)'$/.test(n);
const STRUCTURE = /^(type\[|import |export |elem\[|table\[|global\[|memory\[|wasm magic|header|"[^"]*" subsection)/;
const isFunction = (n) => !n.startsWith('data segment') && !n.startsWith('custom section') && !STRUCTURE.test(n);
const noHash = (n) => n.replace(/::h[0-9a-f]{16}$/, '').replace(/\[[0-9a-f]{16}\]/g, '');

const CRATES = [
  [/^serde_json$/, 'serde_json'],
  [/^serde_wasm_bindgen$/, 'serde_wasm_bindgen (used by `worker`)'],
  [/^(worker|worker_sys|worker_macros)$/, '`worker` / `worker_sys`'],
  [/^(js_sys|wasm_bindgen|wasm_bindgen_futures|web_sys|wasm_streams)$/, 'js_sys / wasm_bindgen / web_sys (JS bindings)'],
  [/^(url|idna|icu_\w+|percent_encoding|form_urlencoded|serde_urlencoded|utf8_iter|utf16_iter|write16|idna_adapter|zerovec|zerofrom|yoke|tinystr|potential_utf|litemap|writeable)$/, 'url (with idna / icu_*, percent-encoding)'],
  [/^(sha2|hmac|digest|subtle|block_buffer|crypto_common|generic_array|hybrid_array|cpufeatures)$/, 'sha2 / hmac (+ digest, subtle)'],
  [/^(base64|hex|itoa|ryu|zmij|memchr)$/, 'base64 / hex / itoa / ryu / zmij / memchr'],
  [/^(dlmalloc|__rustc)$/, 'dlmalloc (the allocator, with the Rust allocator shims)'],
  [/^(futures_util|futures_core|futures_channel|futures_task|pin_project_lite)$/, 'futures_util / futures_core'],
  [/^(hashbrown|indexmap|smallvec|matchit)$/, 'hashbrown / smallvec / matchit'],
  [/^compiler_builtins$/, 'compiler builtins'],
];

/** The crate an item's code belongs to: the first path segment of the (self) type or function. */
function crateOf(n) {
  if (/^<\[?&?(str|char|bool|[ui](8|16|32|64|128|size)|f32|f64|u8\]|T\])\]?>::/.test(n)) return 'core'; // `<str>::…`, `<[u8]>::…`
  const m = /([A-Za-z_][A-Za-z0-9_]*)::/.exec(n);
  return m ? m[1] : null;
}

function groupOf(rawName) {
  // Mangling v0 / newer rustc may print crate disambiguators (`core[c5930c85a12de822]::…`).
  const name = rawName.replace(/\[[0-9a-f]{16}\]/g, '');
  if (name.startsWith('data segment')) return 'data segments (string constants, tables)';
  if (name.startsWith('custom section')) return 'custom sections (target_features)';
  if (STRUCTURE.test(name)) return 'module structure (types, imports, exports, table)';
  if (/^code\[\d+\]$/.test(name)) return 'unnamed functions';
  if (/^(__wbg_|__wbindgen_|__externref_|__wbindgen)/.test(name) || /^(ledger|ratelimiter)_\w+_[0-9a-f]{16}$/.test(name)) return 'js_sys / wasm_bindgen / web_sys (JS bindings)';
  if (/^__[a-z0-9_]+$/.test(name) || /^(memcpy|memmove|memset|memcmp|bcmp|fmin|fmax|fminf|fmaxf)$/.test(name)) return 'compiler builtins';
  // wasm-bindgen's exports and their shims: `ledger_fetch`, `queue externref shim`, `init_64cc4b2d035528c7`.
  if (/^[a-z][A-Za-z0-9_]*( externref shim)?$/.test(name)) return 'js_sys / wasm_bindgen / web_sys (JS bindings)';
  const crate = crateOf(name);
  if (crate === 'contentstack_edge_purge') {
    const mod = /^[<&*\s(\[]*(?:mut |dyn |const )?contentstack_edge_purge::([A-Za-z_][A-Za-z0-9_]*)/.exec(name)?.[1];
    return mod && mod !== '_' ? `contentstack_edge_purge::${mod}` : 'contentstack_edge_purge (crate root)';
  }
  if (crate === 'serde' || crate === 'serde_core') {
    if (/serde::(private|__private)\w*::de::content/.test(name)) return 'serde: buffered `Content` (untagged / flattened / tagged enums)';
    return 'serde / serde_core (other)';
  }
  if (crate === 'core' || crate === 'alloc' || crate === 'std') {
    if (/^core::ptr::drop_in_place</.test(name)) return 'drop glue (`core::ptr::drop_in_place<…>`)';
    if (/(^|[<\s&])(core|alloc|std)::(fmt|num::flt2dec|num::fmt|panicking|result::unwrap_failed|option::(expect_failed|unwrap_failed))\b/.test(name)
      || /::(fmt|_fmt|escape_debug_ext|pad_integral|pad)$/.test(noHash(name))) return 'core / alloc / std: formatting and panics';
    return 'core / alloc / std (collections, sort, iterators, …)';
  }
  for (const [re, label] of CRATES) if (crate && re.test(crate)) return label;
  return crate ? `other: ${crate}` : 'other';
}

// ---- analysis --------------------------------------------------------------------------------

let top;
try {
  top = runTwiggy(['top', '--format', 'json', namesWasm]);
} catch (e) {
  // A breakdown is worth having, not worth failing the benchmark run for.
  log(`twiggy top failed: ${e.message}`);
  writeResult('size-breakdown', { measured: false, reason: `\`twiggy top\` failed (${twiggy.version}): ${String(e.message).split('\n')[0]}` });
  process.exit(0);
}
const items = top.filter((x) => !isStrippedAway(x.name));
const namesBytes = top.filter((x) => isStrippedAway(x.name)).reduce((a, x) => a + x.shallow_size, 0);
const counted = items.reduce((a, x) => a + x.shallow_size, 0);

const groups = new Map();
for (const x of items) {
  const g = groupOf(x.name);
  const e = groups.get(g) ?? { group: g, bytes: 0, items: 0, functions: 0 };
  e.bytes += x.shallow_size;
  e.items += 1;
  if (isFunction(x.name)) e.functions += 1;
  groups.set(g, e);
}
// Crates not named above are folded into one "the rest" group (listed by crate in the JSON).
const rest = { group: 'the rest (other crates)', bytes: 0, items: 0, functions: 0, crates: {} };
for (const [g, e] of [...groups]) {
  if (!g.startsWith('other')) continue;
  rest.bytes += e.bytes;
  rest.items += e.items;
  rest.functions += e.functions;
  rest.crates[g.replace(/^other:? ?/, '') || '(unnamed)'] = e.bytes;
  groups.delete(g);
}
if (rest.items) groups.set(rest.group, rest);
const byGroup = [...groups.values()].sort((a, b) => b.bytes - a.bytes);

const functions = items.filter((x) => isFunction(x.name)).sort((a, b) => b.shallow_size - a.shallow_size);
const topFunctions = functions.slice(0, 20).map((x) => ({ name: noHash(x.name), bytes: x.shallow_size, group: groupOf(x.name) }));
const topItems = top.slice(0, 40).map((x) => ({ name: x.name, bytes: x.shallow_size, stripped_away: isStrippedAway(x.name) }));

let garbage = null;
try {
  const all = runTwiggy(['garbage', '--all', '--format', 'json', namesWasm]);
  const falsePositive = all.filter((x) => /potential false-positive data segments/.test(x.name));
  const g = all.filter((x) => !isStrippedAway(x.name) && !/^(\.\.\.|Σ)/.test(x.name) && !falsePositive.includes(x));
  garbage = {
    bytes: g.reduce((a, x) => a + (x.bytes ?? 0), 0),
    items: g.length,
    top: g.slice(0, 10).map((x) => ({ name: x.name, bytes: x.bytes })),
    // Data segments twiggy cannot tie to code (it does not follow addresses in code): not garbage.
    unreferenced_data_segments_bytes: falsePositive.reduce((a, x) => a + (x.bytes ?? 0), 0),
  };
} catch (e) {
  log(`twiggy garbage failed: ${e.message}`);
}

let monos = null;
try {
  monos = runTwiggy(['monos', '-n', '15', '--format', 'json', namesWasm]).filter((x) => x.generic && !/^\.\.\./.test(x.generic) && !/^Σ/.test(x.generic)).map((x) => {
    const listed = x.monomorphizations.filter((m) => !/^\.\.\. and \d+ more/.test(m.name)).length;
    const more = x.monomorphizations.map((m) => /^\.\.\. and (\d+) more/.exec(m.name)?.[1]).find(Boolean);
    return { generic: x.generic, copies: listed + Number(more ?? 0), total_bytes: x.total_size, approximate_bloat_bytes: x.approximate_monomorphization_bloat_bytes };
  });
} catch (e) {
  log(`twiggy monos failed: ${e.message}`);
}

const result = {
  measured: true,
  twiggy: twiggy.version,
  names_wasm: path.relative(root, namesWasm),
  build,
  names_module: names,
  stripped_module: stripped,
  names_section_bytes: namesBytes,
  counted_bytes: counted,
  groups: byGroup,
  top_functions: topFunctions,
  top_items: topItems,
  garbage,
  monos,
};
writeResult('size-breakdown', result);
log(`stripped module ${stripped.raw} B (gzip ${stripped.gzip}); counted ${counted} B in ${byGroup.length} groups; names section ${namesBytes} B left out`);
for (const g of byGroup.slice(0, 5)) log(`  ${g.bytes.toString().padStart(8)}  ${g.group}`);
