#!/usr/bin/env node
// Local Contentstack + Cloudflare API simulator for `npm start` (the same fakes the tests use).
// Serves a demo stack (a few hundred entries and assets, two environments, two locales, four
// ready jobs, blog posts that reference authors, categories and assets), writes the Worker's demo settings to .wrangler/demo/demo.env, and a KV seed file
// with cached copies of every entry, asset and list page.
import fs from 'node:fs';
import crypto from 'node:crypto';

import { startContentstack } from '../devkit/fakes/contentstack.mjs';
import { startCloudflare } from '../devkit/fakes/cloudflare.mjs';
import { makeDemoStack } from '../devkit/fakes/stack.mjs';
import {
  stateDir, envFile, keyFile, infoFile, WORKER_PORT, CONTENTSTACK_PORT, CLOUDFLARE_PORT, DEMO_RULES,
} from './demo-config.mjs';

fs.mkdirSync(stateDir, { recursive: true });

// Keep one signing key across runs so a sent webhook verifies after a restart.
let keyPair;
if (fs.existsSync(keyFile)) {
  const privateKey = crypto.createPrivateKey(fs.readFileSync(keyFile));
  keyPair = { privateKey, publicKey: crypto.createPublicKey(privateKey) };
} else {
  keyPair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(keyFile, keyPair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

const demo = makeDemoStack();
const { stack } = demo;
const cs = await startContentstack({ stacks: [stack], keyPair, port: CONTENTSTACK_PORT, rateLimitPerSecond: 10 });
const cf = await startCloudflare({ token: 'demo-cloudflare-token', port: CLOUDFLARE_PORT });

const adminToken = fs.existsSync(infoFile)
  ? JSON.parse(fs.readFileSync(infoFile, 'utf8')).adminToken
  : crypto.randomBytes(12).toString('hex');

const vars = {
  CONTENTSTACK_API_BASE: cs.url,
  CONTENTSTACK_APP_BASE: cs.url,
  CONTENTSTACK_API_KEYS: stack.apiKey,
  CONTENTSTACK_MANAGEMENT_TOKEN: stack.token,
  CLOUDFLARE_API_BASE: cf.url,
  CLOUDFLARE_API_TOKEN: 'demo-cloudflare-token',
  PURGE_RATE_PER_SECOND: '20',
  PURGE_BATCH_SIZE: '30',
  RETRY_BASE_SECONDS: '2',
  // The second purge pass after 10 s instead of 60, so the demo job ends soon (README).
  REPURGE_DELAY_SECONDS: '10',
  WEBHOOK_VERIFY: 'rsa',
  ADMIN_TOKEN: adminToken,
  ENVIRONMENTS: JSON.stringify(DEMO_RULES),
};
fs.writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}='${String(v)}'`).join('\n') + '\n', { mode: 0o600 }); // single quotes: literal values

// Cached copies in KV: every entry and asset in both environments and locales, plus list pages.
const seed = [];
for (const env of stack.environments) {
  for (const { locale } of env.urls) {
    for (const e of stack.entries.values()) {
      seed.push({ key: `${env.name}:${locale}:entry:${e.content_type}:${e.uid}`, value: JSON.stringify({ title: e.title, url: e.url ?? null }) });
    }
    for (const ct of stack.contentTypes) {
      for (let p = 1; p <= 3; p++) seed.push({ key: `${env.name}:${locale}:list:${ct}:page${p}`, value: '[]' });
    }
  }
  for (const a of stack.assets.values()) seed.push({ key: `${env.name}:asset:${a.uid}`, value: JSON.stringify({ url: a.url }) });
}
fs.writeFileSync(`${stateDir}/kv-seed.json`, JSON.stringify(seed));

const jobs = Object.fromEntries(Object.entries(demo.jobs).map(([name, j]) => [name, { jobId: j.jobId, action: j.action, environments: j.environments, items: j.items.length }]));
fs.writeFileSync(infoFile, JSON.stringify({ adminToken, apiKey: stack.apiKey, workerPort: WORKER_PORT, jobs }, null, 2));

fs.writeFileSync(`${stateDir}/ready`, String(process.pid));
console.log(`simulator: Contentstack on ${cs.url}, Cloudflare API on ${cf.url}; ${stack.entries.size} entries, ${stack.assets.size} assets, ${seed.length} cached KV keys`);

let lastPurges = 0;
setInterval(() => {
  if (cf.purges.length !== lastPurges) {
    const fresh = cf.purges.slice(lastPurges);
    lastPurges = cf.purges.length;
    const items = fresh.reduce((n, p) => n + p.items.length, 0);
    console.log(`simulator: Cloudflare received ${fresh.length} purge call(s), ${items} item(s)`);
  }
}, 1000).unref();

const stop = async () => {
  await cs.close();
  await cf.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
