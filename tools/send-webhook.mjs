#!/usr/bin/env node
// Sends a correctly signed sample job webhook to the local Worker (started by `npm start`) and
// follows the job until it is done:
//   node tools/send-webhook.mjs [publishProd|publishStaging|unpublishProd|publishAuthors] [--json]
// The argument names one of the demo jobs the simulator wrote to .wrangler/demo/demo.json (from
// makeDemoStack's `jobs`); without one it sends publishProd. `publishAuthors` republishes 2 authors
// and 1 category that many published blog posts reference: the reference-aware purge demo
// (`node tools/send-webhook.mjs publishAuthors`). The demo's `missed` jobs (demo.json) are not sent
// here: their delivery failed on purpose, and the Worker's webhook health check takes them in
// (`node tools/health-check.mjs`).
// Once the job is final it prints a summary of its record (status, items, purged counts in total,
// per environment and per zone, reference counts, verification, warm, skipped templates and
// errors, the first 3 of each list); `--json` (anywhere in the arguments) prints the whole record
// as JSON on stdout instead, with the progress lines on stderr.
import fs from 'node:fs';
import crypto from 'node:crypto';

import { jobPayload, signRsa } from '../devkit/harness/sign.mjs';
import { infoFile, keyFile } from './demo-config.mjs';

if (!fs.existsSync(infoFile)) {
  console.error('No demo is running: start it with `npm start` first.');
  process.exit(1);
}
const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
const args = process.argv.slice(2);
const asJson = args.includes('--json');
const name = args.filter((a) => a !== '--json')[0] ?? 'publishProd';
// With --json stdout carries only the record, so the progress lines go to stderr.
const progress = asJson ? console.error : console.log;
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
progress(`POST /webhooks/contentstack → ${r.status} ${await r.text()}`);
if (r.status !== 202 && r.status !== 200) process.exit(1);

const auth = { authorization: `Bearer ${info.adminToken}` };
let last = '';
const deadline = Date.now() + 180_000;
while (Date.now() < deadline) {
  const rec = await (await fetch(`${base}/api/jobs/${job.jobId}`, { headers: auth })).json();
  if (rec.status !== last) {
    last = rec.status;
    progress(`job ${job.jobId}: ${rec.status}`);
  }
  if (['done', 'partial', 'failed'].includes(rec.status)) {
    if (asJson) {
      console.log(JSON.stringify(rec, null, 2));
      progress(`see it at ${base}/#/jobs/${job.jobId}`);
    } else {
      for (const line of summary(rec)) console.log(`  ${line}`);
      console.log(`  see it at ${base}/#/jobs/${job.jobId}`);
    }
    process.exit(rec.status === 'failed' ? 1 : 0);
  }
  await new Promise((res) => setTimeout(res, 500));
}
console.error('the job did not finish in 3 minutes');
process.exit(1);

/** The final record as short lines: counts only, lists cut to their first 3. */
function summary(rec) {
  const out = [];
  const num = (v) => String(v ?? 0);
  const obj = (v) => (v && typeof v === 'object' ? v : {});
  const list = (v) => (Array.isArray(v) ? v : []);
  const first3 = (items, fmt) => {
    for (const it of items.slice(0, 3)) out.push(`  ${fmt(it)}`);
    if (items.length > 3) out.push(`  … ${items.length - 3} more`);
  };
  const zones = (byZone, indent) => {
    for (const [zone, z] of Object.entries(obj(byZone))) {
      out.push(`${indent}zone ${zone}: ${num(z.tags)} tags, ${num(z.urls)} URLs, ${num(z.prefixes)} prefixes, ` +
        `${num(z.hosts)} hosts, ${num(z.api_calls)} purge calls`);
    }
  };
  const purged = (p) => `${num(p.kv_keys)} KV keys, ${num(p.kv_prefix_keys)} list-page keys swept, ` +
    `${num(p.cache_api)} Cache API deletes, ${num(p.tags)} tags, ${num(p.urls)} URLs, ${num(p.prefixes)} prefixes, ` +
    `${num(p.hosts)} hosts, ${num(p.api_calls)} purge calls`;
  const refs = (r) => `${num(r.lookups)} look-ups, ${num(r.referrers)} referrers, truncated: ${r.truncated ? 'yes' : 'no'}`;

  const items = obj(rec.items);
  const done = rec.action === 'unpublish' ? 'unpublished' : 'published';
  out.push(`status: ${rec.status}; attempts: ${num(rec.attempts)}; duration: ` +
    `${rec.duration_ms == null ? 'n/a' : `${rec.duration_ms} ms`}; environments: ${list(rec.environments).join(', ') || 'none'}`);
  out.push(`items: ${num(items.success)} ${done}, ${num(items.failed)} failed, ${num(items.skipped)} skipped (${num(items.total)} total)`);

  const p = obj(rec.purged);
  out.push(`purged: ${purged(p)}`);
  zones(p.by_zone, '  ');
  for (const [env, e] of Object.entries(obj(rec.purged_by_environment))) {
    out.push(`  in ${env}: ${purged(obj(e))}`);
    zones(obj(e).by_zone, '    ');
  }

  if (rec.references) {
    const r = obj(rec.references);
    out.push(`references: ${refs(r)}; pulled_in lists ${list(r.pulled_in).length} rows`);
    for (const [env, e] of Object.entries(obj(r.by_environment))) out.push(`  in ${env}: ${refs(obj(e))}`);
  }

  for (const [env, v] of Object.entries(obj(rec.verification))) {
    out.push(`verification ${env}: ${num(v.checked)} checked, ${num(v.fresh)} fresh, ${list(v.stale).length} stale, ` +
      `pass ${num(v.pass)} (${v.scope ?? 'scope unknown'})`);
  }
  for (const [env, w] of Object.entries(obj(rec.warm))) {
    out.push(`warm ${env}: ${num(w.requested)} requested, ${num(w.ok)} ok, ${num(w.failed)} failed (${w.scope ?? 'scope unknown'})`);
  }

  const skipped = list(rec.skipped);
  out.push(`skipped templates: ${skipped.length}`);
  first3(skipped, (s) => `${s.template} (missing ${s.missing}; ${s.environment}, uid ${s.uid})`);
  const errors = list(rec.errors);
  out.push(`errors: ${errors.length}`);
  first3(errors, (e) => String(e));
  return out;
}
