// Shared by the fake servers: listening on loopback, injected fault rules (the first active rule
// matching a request wins, `times` times) and the url matching the fakes' request filters use.
// Node built-ins only.

/** Starts `server` on 127.0.0.1:`port` (0: an ephemeral port) and returns the bound port. */
export async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server.address().port;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether a request url (path + query) matches `rulePath`: a RegExp, a substring, or anything when absent. */
export function matches(rulePath, url) {
  if (rulePath === undefined || rulePath === null) return true;
  if (rulePath instanceof RegExp) { rulePath.lastIndex = 0; return rulePath.test(url); }
  return url.includes(String(rulePath));
}

/** A list of fault rules ({path?, method?, times = 1, …}); each live rule counts `remaining` and `hits`. */
export function faultRules() {
  const rules = [];
  return {
    /** Adds a rule; returns the live rule. */
    add(rule) {
      const r = { ...rule, remaining: rule.times ?? 1, hits: 0 };
      rules.push(r);
      return r;
    },
    /** The first active rule for this request (counted as used), or null. */
    take(method, url) {
      for (const f of rules) {
        if (f.remaining <= 0) continue;
        if (f.method && f.method.toUpperCase() !== method) continue;
        if (!matches(f.path, url)) continue;
        f.remaining -= 1;
        f.hits += 1;
        return f;
      }
      return null;
    },
    clear() { rules.length = 0; },
  };
}
