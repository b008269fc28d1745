#!/usr/bin/env bash
# Runs the Worker locally with `wrangler dev` (local KV, Queues, Durable Objects).
# With real credentials in .dev.vars (CONTENTSTACK_MANAGEMENT_TOKEN), it talks to Contentstack.
# Without them it starts the local simulator (fake Contentstack with a demo stack, fake
# Cloudflare API, a fake website behind the cache for the verification probes), seeds KV with
# cached copies, runs the webhook health check once (a disabled webhook, a missed job taken in)
# and prints how to send a signed sample webhook.
# Either way `--test-scheduled` lets the cron trigger (the webhook health check) be run locally:
#   curl 'http://127.0.0.1:8787/__scheduled?cron=*/10+*+*+*+*'   (or node tools/health-check.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/setup.sh
PORT="${WORKER_PORT:-8787}"
SITE_PORT="${SITE_PORT:-8790}"

if [ -f .dev.vars ] && grep -q '^CONTENTSTACK_MANAGEMENT_TOKEN' .dev.vars; then
  echo "dev: using .dev.vars (real Contentstack credentials)"
  exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --test-scheduled --show-interactive-dev-session=false
fi

echo "dev: no credentials in .dev.vars — starting the local Contentstack simulator"
rm -f .wrangler/demo/ready
node tools/simulator.mjs &
SIM=$!
WR=
cleanup() {
  [ -n "$WR" ] && kill "$WR" 2>/dev/null || true
  kill "$SIM" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do [ -f .wrangler/demo/ready ] && break; sleep 0.2; done
[ -f .wrangler/demo/ready ] || { echo "dev: the simulator did not start" >&2; exit 1; }

echo "dev: seeding KV with cached copies"
node_modules/.bin/wrangler kv bulk put --local --binding CONTENT_KV .wrangler/demo/kv-seed.json >/dev/null

TOKEN=$(node -e "console.log(JSON.parse(require('fs').readFileSync('.wrangler/demo/demo.json','utf8')).adminToken)")
(
  for _ in $(seq 1 300); do
    if node -e "fetch('http://127.0.0.1:$PORT/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" 2>/dev/null; then
      echo "dev: running the webhook health check once"
      node tools/health-check.mjs || echo "dev: the webhook health check did not run" >&2
      cat <<MSG

  ┌──────────────────────────────────────────────────────────────────────
  │ contentstack-edge-purge is running locally (demo mode)
  │   dashboard:   http://127.0.0.1:$PORT/
  │   admin token: $TOKEN
  │   send a signed sample job webhook:
  │     node tools/send-webhook.mjs            (production publish, 600+ items)
  │     node tools/send-webhook.mjs publishStaging | unpublishProd
  │     node tools/send-webhook.mjs publishAuthors (reference-aware purge)
  │   production URLs live on a fake cached site (http://127.0.0.1:$SITE_PORT/):
  │     the Worker probes 10 purged URLs per pass (the job's "verification")
  │   webhook health check (cron */10; ran once at start), run it again:
  │     node tools/health-check.mjs
  │     (or curl 'http://127.0.0.1:$PORT/__scheduled?cron=*/10+*+*+*+*')
  └──────────────────────────────────────────────────────────────────────

MSG
      exit 0
    fi
    sleep 1
  done
) &
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --env-file .wrangler/demo/demo.env --test-scheduled --show-interactive-dev-session=false &
WR=$!
wait "$WR"
