// KV helpers shared by the suites and the benches: the keys the usual purge rules give a
// job item, seeding many keys at once and listing every key under a prefix.

/** Purge rules that delete each production item's KV key (kvKeyOf's names) and nothing else. */
export const KV_ONLY_RULES = {
  production: {
    kv_binding: 'CONTENT_KV',
    entry: { kv_keys: ['{environment}:{locale}:entry:{content_type}:{uid}'] },
    asset: { kv_keys: ['{environment}:asset:{uid}'] },
  },
};

/**
 * The KV key of a job item (from addJob's `job.items`) in environment `env`, as the usual rules
 * name it: '{environment}:{locale}:entry:{content_type}:{uid}' for an entry ('{environment}:{locale}:entry:{uid}'
 * with `contentType: false`) and '{environment}:asset:{uid}' for an asset.
 */
export function kvKeyOf(env, it, { contentType = true } = {}) {
  if (it.type !== 'entry') return `${env}:asset:${it.uid}`;
  return contentType ? `${env}:${it.publish_locale}:entry:${it.content_type.uid}:${it.uid}` : `${env}:${it.publish_locale}:entry:${it.uid}`;
}

/** The list-page prefix of an entry item: '{environment}:{locale}:list:{content_type}:'. */
export const listPrefixOf = (env, it) => `${env}:${it.publish_locale}:list:${it.content_type.uid}:`;

/** Every key name under `prefix` (all keys when omitted), following the list cursor to the end. */
export async function listAllKeys(kv, prefix) {
  const out = [];
  let cursor;
  do {
    const page = await kv.list({ prefix, cursor, limit: 1000 });
    out.push(...page.keys.map((k) => k.name));
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

/** Puts every key (value `value`), `batch` at a time. Returns the keys. */
export async function seedKeys(kv, keys, { value = 'cached', batch = 100 } = {}) {
  const list = [...keys];
  for (let i = 0; i < list.length; i += batch) await Promise.all(list.slice(i, i + batch).map((k) => kv.put(k, value)));
  return list;
}
