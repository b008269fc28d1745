// Size: the deployed .wasm and the whole bundle (every file worker-build writes to build/ that
// wrangler uploads), raw and gzip (level 9, per file, summed), next to the hello-world Worker in
// benches/hello-world built with the same profile in the same run.
//
// With a third directory (another build of the Worker, e.g. the single ledger's at commit 6e8811a,
// built the same way) also measures that one, as `before`.
//
// Usage: node benches/size.mjs <worker build dir> <hello-world build dir> [<before build dir>]
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { root, writeResult } from './common.mjs';

function files(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    // What wrangler uploads: the shim, the JS glue and the wasm (not package.json or dotfiles).
    else if (/\.(m?js|wasm)$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

function measure(dir) {
  const list = files(dir);
  const wasm = list.find((f) => f.endsWith('.wasm'));
  if (!wasm) throw new Error(`no .wasm under ${dir}`);
  const sizeOf = (f) => {
    const raw = fs.readFileSync(f);
    return { raw: raw.length, gzip: zlib.gzipSync(raw, { level: 9 }).length };
  };
  const perFile = Object.fromEntries(list.map((f) => [path.relative(dir, f), sizeOf(f)]));
  const bundle = Object.values(perFile).reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });
  return { wasm: sizeOf(wasm), bundle, files: perFile };
}

const [workerDir = path.join(root, 'build'), helloDir, beforeDir] = process.argv.slice(2);
if (!helloDir) throw new Error('usage: node benches/size.mjs <worker build dir> <hello-world build dir> [<before build dir>]');
const result = { worker: measure(workerDir), hello_world: measure(helloDir) };
if (beforeDir) {
  result.before = { ...measure(beforeDir), dir: path.relative(root, beforeDir), commit: process.env.BENCH_BEFORE_COMMIT ?? null };
}
writeResult('size', result);
console.error(`size: worker wasm ${result.worker.wasm.raw} B (gzip ${result.worker.wasm.gzip}), hello-world wasm ${result.hello_world.wasm.raw} B (gzip ${result.hello_world.wasm.gzip})` +
  (result.before ? `, before wasm ${result.before.wasm.raw} B (gzip ${result.before.wasm.gzip})` : ''));
