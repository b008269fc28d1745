#!/usr/bin/env node
// Runs the Worker's webhook health check (its cron trigger, `[triggers] crons` in wrangler.toml)
// once in the local Worker started by `npm start`, and prints what GET /api/health reports: the
// webhooks that deliver to this Worker (disabled, unhealthy, failed deliveries) and the missed
// jobs the check took in (`source: "recovered"`):
//   node tools/health-check.mjs
// `npm start` runs `wrangler dev --test-scheduled`, which serves /__scheduled; scripts/dev.sh
// calls this once when the Worker is up. WORKER_URL and ADMIN_TOKEN override the demo's
// (.wrangler/demo/demo.json), e.g. for `npm start` with real credentials in .dev.vars.
import fs from 'node:fs';

import { infoFile, WORKER_PORT } from './demo-config.mjs';

const CRON = '*/10 * * * *';

const info = fs.existsSync(infoFile) ? JSON.parse(fs.readFileSync(infoFile, 'utf8')) : {};
const base = process.env.WORKER_URL ?? `http://127.0.0.1:${info.workerPort ?? WORKER_PORT}`;
const token = process.env.ADMIN_TOKEN ?? info.adminToken;

const run = await fetch(`${base}/__scheduled?cron=${CRON.replaceAll(' ', '+')}`);
const ran = await run.text();
if (!run.ok) {
  console.error(`GET /__scheduled → ${run.status} ${ran.trim()} (is the Worker running with --test-scheduled?)`);
  process.exit(1);
}
if (!token) {
  console.log('health check ran; set ADMIN_TOKEN to read GET /api/health');
  process.exit(0);
}
const r = await fetch(`${base}/api/health`, { headers: { authorization: `Bearer ${token}` } });
if (!r.ok) {
  console.error(`GET /api/health → ${r.status} ${(await r.text()).trim()}`);
  process.exit(1);
}
const h = await r.json();
const hooks = h.webhooks ?? [];
console.log(`webhook health check at ${h.checked_at}: ${hooks.length} webhook(s) deliver to this Worker`);
for (const w of hooks) {
  const state = [w.disabled ? 'DISABLED' : 'enabled', w.unhealthy ? 'unhealthy' : null].filter(Boolean).join(', ');
  const failures = w.failed_executions ? `; ${w.failed_executions} failed deliveries, the last at ${w.last_failure_at}` : '';
  console.log(`  "${w.name}" (${w.uid}): ${state}${failures}`);
}
for (const j of h.recovered ?? []) {
  console.log(`  missed job taken in: ${j.job_id} (${j.action}${j.environment ? `, ${j.environment}` : ''}) → ${base}/#/jobs/${j.job_id}`);
}
if (h.error) console.log(`  error: ${h.error}`);
