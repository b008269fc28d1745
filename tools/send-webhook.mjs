#!/usr/bin/env node
// Sends a correctly signed sample job webhook to the local Worker (started by `npm start`) and
// follows the job until it is done:
//   node tools/send-webhook.mjs [publishProd|publishStaging|unpublishProd|publishAuthors]
// The argument names one of the demo jobs the simulator wrote to .wrangler/demo/demo.json (from
// makeDemoStack's `jobs`); without one it sends publishProd. `publishAuthors` republishes 2 authors
// and 1 category that many published blog posts reference: the reference-aware purge demo
// (`node tools/send-webhook.mjs publishAuthors`). The demo's `missed` jobs (demo.json) are not sent
// here: their delivery failed on purpose, and the Worker's webhook health check takes them in
// (`node tools/health-check.mjs`).
import fs from 'node:fs';
import crypto from 'node:crypto';

import { jobPayload, signRsa } from '../devkit/harness/sign.mjs';
import { infoFile, keyFile } from './demo-config.mjs';

if (!fs.existsSync(infoFile)) {
  console.error('No demo is running: start it with `npm start` first.');
  process.exit(1);
}
const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
const name = process.argv[2] ?? 'publishProd';
const job = info.jobs[name];
if (!job) {
  if (info.missed?.[name]) {
    console.error(`${name} is the demo's missed job: the webhook health check takes it in (node tools/health-check.mjs)`);
    process.exit(1);
  }
  console.error(`Unknown sample job ${name}; choose one of: ${Object.keys(info.jobs).join(', ')}`);
  process.exit(1);
}
const base = process.env.WORKER_URL ?? `http://127.0.0.1:${info.workerPort}`;
const privateKey = crypto.createPrivateKey(fs.readFileSync(keyFile));
const body = JSON.stringify(jobPayload({ jobId: job.jobId, action: job.action, environment: job.environments[0], apiKey: info.apiKey }));

const r = await fetch(`${base}/webhooks/contentstack`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'user-agent': 'Contentstack', 'x-contentstack-request-signature': signRsa(body, privateKey) },
  body,
});
console.log(`POST /webhooks/contentstack → ${r.status} ${await r.text()}`);
if (r.status !== 202 && r.status !== 200) process.exit(1);

const auth = { authorization: `Bearer ${info.adminToken}` };
let last = '';
const deadline = Date.now() + 180_000;
while (Date.now() < deadline) {
  const rec = await (await fetch(`${base}/api/jobs/${job.jobId}`, { headers: auth })).json();
  if (rec.status !== last) {
    last = rec.status;
    console.log(`job ${job.jobId}: ${rec.status}`);
  }
  if (['done', 'partial', 'failed'].includes(rec.status)) {
    const p = rec.purged;
    console.log(`  items: ${rec.items.success} published, ${rec.items.failed} failed; environments: ${rec.environments.join(', ')}`);
    console.log(`  purged: ${p.kv_keys} KV keys, ${p.kv_prefix_keys} list-page keys, ${p.tags} tags, ${p.urls} URLs in ${p.api_calls} purge call(s); ${rec.skipped.length} template(s) skipped`);
    for (const [zone, z] of Object.entries(p.by_zone ?? {})) {
      console.log(`  zone ${zone}: ${z.tags} tags, ${z.urls} URLs in ${z.api_calls} purge call(s)`);
    }
    for (const [env, w] of Object.entries(rec.warm ?? {})) {
      console.log(`  warmed ${env}: ${w.requested} requested, ${w.ok} ok, ${w.failed} failed (${w.scope})`);
    }
    if (rec.references) console.log(`  references: ${JSON.stringify(rec.references)}`);
    console.log(`  see it at ${base}/#/jobs/${job.jobId}`);
    process.exit(rec.status === 'failed' ? 1 : 0);
  }
  await new Promise((res) => setTimeout(res, 500));
}
console.error('the job did not finish in 3 minutes');
process.exit(1);
