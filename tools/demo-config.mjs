// Shared settings of the local demo: ports, the demo stack, the purge rules and the files the
// simulator leaves for `wrangler dev` and for tools/send-webhook.mjs.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const stateDir = path.join(root, '.wrangler', 'demo');
export const envFile = path.join(stateDir, 'demo.env');
export const keyFile = path.join(stateDir, 'signing-key.pem');
export const infoFile = path.join(stateDir, 'demo.json');

export const WORKER_PORT = Number(process.env.WORKER_PORT ?? 8787);
export const CONTENTSTACK_PORT = Number(process.env.SIMULATOR_PORT ?? 8788);
export const CLOUDFLARE_PORT = Number(process.env.CLOUDFLARE_SIMULATOR_PORT ?? 8789);
/** The fake website behind the cache (devkit/fakes/site.mjs) that the production URLs point at. */
export const SITE_PORT = Number(process.env.SITE_PORT ?? 8790);
export const DEMO_ZONE = 'demo0zone0000000000000000000000a';
/** The second locale's domain is a zone of its own (SPEC §10): the demo serves it as `localhost`. */
export const DEMO_ZONE_FR = 'demo0zone0000000000000000000000b';

/**
 * Purge rules of the demo: production purges KV, list pages, tags and URLs, and also the entries
 * that reference a changed author, category or asset (two levels deep; the publishAuthors job
 * shows it), then probes 10 of the purged URLs after each purge pass (`verify_sample`); staging
 * only KV. In the demo every production URL, entry pages and asset files alike, lives on the
 * local fake site (the simulator moves the stack's production URLs and asset URLs there), so the
 * probes never leave 127.0.0.1. The fr-fr pages are on a second host (`localhost`, the same local
 * site) and so on a second zone: each purge URL goes to its own zone, tags to both. After the last
 * pass the Worker warms up to 200 of the purged URLs again, 10 a second (`warm`).
 */
export const DEMO_RULES = {
  production: {
    zones: [
      { zone_id: DEMO_ZONE, hosts: ['127.0.0.1'] },
      { zone_id: DEMO_ZONE_FR, hosts: ['localhost'] },
    ],
    kv_binding: 'CONTENT_KV',
    resolve_urls: true,
    verify_sample: 10,
    warm: 200,
    warm_rate: 10,
    on_failure: ['tag:cs-{environment}', 'kv_prefix:{environment}:'],
    entry: {
      kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'],
      kv_prefixes: ['{environment}:{locale}:list:{content_type}:'],
      tags: ['cs-{environment}-{uid}', 'cs-{environment}-ct-{content_type}'],
      urls: ['{base_url}{url}'],
    },
    asset: {
      kv_keys: ['{environment}:asset:{uid}'],
      tags: ['cs-{environment}-{uid}'],
      urls: ['{url}'],
    },
    references: { content_types: ['author', 'category'], depth: 2, max_lookups: 1000 },
  },
  staging: {
    kv_binding: 'CONTENT_KV',
    on_failure: ['kv_prefix:{environment}:'],
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'] },
  },
};
