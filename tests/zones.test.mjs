// Several zones per environment (docs/CONTRACT.md, "Several zones"): each URL, prefix and host is
// purged on the zone that serves its host and nowhere else, each tag on every zone, no call names
// two zones, KV goes before each zone's calls, the second pass repeats each zone's calls, and the
// record and the dry run count per zone. The fake Cloudflare is told which hosts each zone serves
// and refuses a purge that names a foreign host (the unkind choice), so a misrouted call fails.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';

import { waitForFinal } from '../devkit/harness/worker.mjs';
import { startSystem } from '../devkit/harness/system.mjs';
import { kvKeyOf, seedKeys, listAllKeys } from '../devkit/harness/kv.mjs';
import { addJob, setBaseUrl } from '../devkit/fakes/stack.mjs';

const ADMIN = 'zones-admin-token';
const COM = 'zone0com00000000000000000000000000';
const DE = 'zone0de000000000000000000000000000';
const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

const rules = (zones) => ({
  production: {
    zones,
    kv_binding: 'CONTENT_KV',
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      tags: ['cs-{uid}'],
      urls: ['{base_url}e/{uid}'],
    },
  },
});

async function setup({ zones, zoneHosts, vars = {}, onPurge }) {
  const sys = await startSystem({
    rules: rules(zones),
    adminToken: ADMIN,
    cloudflare: { zoneHosts, onPurge },
    vars: { QUEUE_MAX_ATTEMPTS: 3, RETRY_BASE_SECONDS: 0, ...vars },
  });
  closers.push(() => sys.close());
  setBaseUrl(sys.stack, 'production', { 'en-us': 'https://www.example.com/', 'de-de': 'https://www.example.de/' });
  return sys;
}

const ok = (cf) => cf.purges.filter((p) => p.status === 200);
const itemsOn = (cf, zone, mode, calls = ok(cf)) => new Set(calls.filter((p) => p.zoneId === zone && p.mode === mode).flatMap((p) => p.items));

async function dryRun(sys, job) {
  const r = await sys.w.fetch('/api/plan', { method: 'POST', headers: auth, body: JSON.stringify({ job_id: job.jobId }) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

describe('several zones per environment', () => {
  test('300 items over 3 pages in 2 locales: URLs on their zone, tags on both, KV first, the second pass per zone', async () => {
    // KV before each zone's calls: when a call purges a tag, on either zone, the KV keys of its
    // entry (both locales) are already gone.
    const keysOfUid = new Map();
    const early = [];
    let kv;
    const onPurge = async (p) => {
      if (p.mode !== 'tags') return;
      for (const tag of p.items) {
        for (const key of keysOfUid.get(tag.slice('cs-'.length)) ?? []) {
          if ((await kv.get(key)) !== null) early.push(`${p.zoneId} ${tag}: ${key}`);
        }
      }
    };
    const sys = await setup({
      onPurge,
      zones: [
        { zone_id: COM, hosts: ['www.example.com', 'example.com'] },
        { zone_id: DE, hosts: ['*.example.de'] },
      ],
      zoneHosts: { [COM]: ['www.example.com', 'example.com'], [DE]: ['*.example.de'] },
      vars: { REPURGE_DELAY_SECONDS: 3 },
    });
    kv = await sys.w.kv();
    const job = addJob(sys.stack, { locales: ['en-us', 'de-de'], entries: 150 });
    assert.equal(job.items.length, 300, 'three item pages');
    const keys = job.items.map((it) => kvKeyOf('production', it));
    await seedKeys(kv, keys);

    for (const it of job.items) keysOfUid.set(it.uid, [...(keysOfUid.get(it.uid) ?? []), kvKeyOf('production', it)]);

    const plan = await dryRun(sys, job);
    const zp = plan.plan.environments.production.zones;
    assert.deepEqual(Object.keys(zp).sort(), [COM, DE].sort(), 'the plan lists both zones');
    assert.ok(zp[COM].files.every((u) => u.startsWith('https://www.example.com/')), 'the .com zone has the en-us URLs only');
    assert.ok(zp[DE].files.every((u) => u.startsWith('https://www.example.de/')), 'the .de zone has the de-de URLs only');
    assert.equal(zp[COM].files.length + zp[DE].files.length, plan.plan.environments.production.files.length, 'the flat list is their union');
    assert.deepEqual(zp[COM].tags, zp[DE].tags, 'every tag on both zones');

    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 120000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(sys.cf.misrouted, 0, 'no call named a host its zone does not serve');
    assert.deepEqual(await listAllKeys(kv, 'production:'), [], 'every KV key is gone');

    // First pass and second pass, split at the end of the first pass.
    const firstEnd = Date.parse(rec.passes.production.first_pass_at);
    const first = ok(sys.cf).filter((p) => p.answeredAt <= firstEnd);
    const second = ok(sys.cf).filter((p) => p.at > firstEnd);
    assert.ok(first.length > 0 && second.length > 0, `both passes sent calls (${first.length} / ${second.length})`);
    assert.equal(first.length, plan.purge_calls, 'first-pass calls: the run against its dry run');
    const tags = new Set(job.items.map((it) => `cs-${it.uid}`));
    const enUrls = new Set(job.items.filter((it) => it.publish_locale === 'en-us').map((it) => `https://www.example.com/e/${it.uid}`));
    const deUrls = new Set(job.items.filter((it) => it.publish_locale === 'de-de').map((it) => `https://www.example.de/e/${it.uid}`));
    for (const [name, calls] of [['first', first], ['second', second]]) {
      assert.deepEqual(itemsOn(sys.cf, COM, 'tags', calls), tags, `${name} pass: every tag on .com`);
      assert.deepEqual(itemsOn(sys.cf, DE, 'tags', calls), tags, `${name} pass: every tag on .de`);
      assert.deepEqual(itemsOn(sys.cf, COM, 'files', calls), enUrls, `${name} pass: the en-us URLs on .com only`);
      assert.deepEqual(itemsOn(sys.cf, DE, 'files', calls), deUrls, `${name} pass: the de-de URLs on .de only`);
    }

    // The record: totals are the sums of by_zone, calls counted per zone.
    const bz = rec.purged.by_zone;
    assert.deepEqual(Object.keys(bz).sort(), [COM, DE].sort());
    for (const f of ['tags', 'urls', 'api_calls']) {
      assert.equal(bz[COM][f] + bz[DE][f], rec.purged[f], `purged.${f} is the sum of by_zone`);
    }
    assert.equal(bz[COM].tags, tags.size, 'each tag counted once per zone');
    assert.equal(bz[COM].urls, enUrls.size);
    assert.equal(bz[DE].urls, deUrls.size);
    assert.equal(bz[COM].api_calls, ok(sys.cf).filter((p) => p.zoneId === COM).length, '.com calls counted');
    assert.equal(bz[DE].api_calls, ok(sys.cf).filter((p) => p.zoneId === DE).length, '.de calls counted');
    assert.ok(keysOfUid.size === 150, 'the KV check knew every entry');
    assert.deepEqual(early, [], 'no tag was purged on any zone before its KV keys were deleted');
  });

  test('a URL whose host no zone takes is sent nowhere, listed in skipped, and still deleted from the Cache API', async () => {
    const sys = await setup({
      zones: [{ zone_id: COM, hosts: ['www.example.com'] }],
      zoneHosts: { [COM]: ['www.example.com'] },
    });
    const job = addJob(sys.stack, { locales: ['en-us', 'de-de'], entries: 4 });
    await sys.deliver(job, 'production');
    const rec = await waitForFinal(sys.w, job.jobId, { token: ADMIN, timeoutMs: 60000 });
    assert.equal(rec.status, 'done', JSON.stringify(rec.errors));
    assert.equal(sys.cf.misrouted, 0);
    const zoneless = rec.skipped.filter((s) => s.missing === 'zone');
    const deUrls = job.items.filter((it) => it.publish_locale === 'de-de').map((it) => `https://www.example.de/e/${it.uid}`);
    assert.deepEqual(zoneless.map((s) => s.template).sort(), deUrls.sort(), 'each .de URL is listed in skipped');
    assert.ok(zoneless.every((s) => s.environment === 'production' && s.uid), 'with its item and environment');
    assert.equal(rec.purged.urls, 4, 'the .com URLs only');
    assert.equal(rec.purged.cache_api, 8, 'both locales deleted from the Cache API');
    assert.deepEqual(itemsOn(sys.cf, COM, 'files'), new Set(job.items.filter((it) => it.publish_locale === 'en-us').map((it) => `https://www.example.com/e/${it.uid}`)));
  });

  test('every zones problem is reported at once, with its path', async () => {
    const sys = await startSystem({
      rules: {
        production: {
          zone_id: COM,
          kv_binding: 'CONTENT_KV',
          entry: { kv_keys: ['{uid}'] },
        },
        staging: {
          zones: [
            { zone_id: COM, hosts: ['https://www.example.com', 'shop.example.com:8443'] },
            { zone_id: DE, hosts: [] },
            { zone_id: 'zone-c', hosts: ['www.example.org'] },
            { zone_id: 'zone-d', hosts: ['WWW.example.org'] },
            { zone_id: 'zone-e' },
            { zone_id: 'zone-f' },
          ],
          entry: { tags: ['t-{uid}'] },
        },
      },
      adminToken: ADMIN,
    });
    closers.push(() => sys.close());
    const job = addJob(sys.stack, { entries: 1 });
    const r = await sys.deliver(job, 'production', { expect: 500 });
    assert.equal(r.json.error, 'misconfigured');
    const logged = sys.w.events('misconfigured').flatMap((e) => e.errors);
    for (const want of [
      'ENVIRONMENTS.staging.zones[0].hosts[0]: a host, not a URL',
      'ENVIRONMENTS.staging.zones[0].hosts[1]: a host, without a port',
      'ENVIRONMENTS.staging.zones[1].hosts: must not be empty',
      'ENVIRONMENTS.staging.zones[3].hosts[0]: www.example.org is already served by zones[2]',
      'ENVIRONMENTS.staging.zones[5]: only one zone may leave hosts out',
    ]) {
      assert.ok(logged.some((e) => e.startsWith(want)), `missing ${want}: ${JSON.stringify(logged)}`);
    }
  });
});
