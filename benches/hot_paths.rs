//! Hot paths of the Worker, measured natively next to their physical floor (`npm run bench`).
//!
//! Each group holds the crate's function (`crate`) and the least work that could produce the
//! same answer (`floor`); scripts/bench.sh reads criterion's estimates and reports the ratio.
//! - `hmac/1KiB`, `hmac/64KiB`: `signature::verify_hmac` on a valid `t=…,v1=…` header against one
//!   HMAC-SHA256 of the same signed bytes (`"{t}." + body`) with the same `hmac`/`sha2` crates.
//! - `payload/job`, `payload/64KiB`: `event::parse_body` + `event::recognize` against
//!   `serde_json::from_slice::<Value>` of the same bytes.
//! - `plan/10000x5`: `plan::plan` of 10,000 entries × 5 templates against a loop that only
//!   formats the 50,000 strings (no validation, normalisation, de-duplication or sorting).

use std::collections::BTreeMap;
use std::hint::black_box;

use contentstack_edge_purge::event::{self, Recognition};
use contentstack_edge_purge::plan::{self, ItemType, PlanEnvironment, PlanItem, PlanJob};
use contentstack_edge_purge::rules::Rules;
use contentstack_edge_purge::signature::{self, Secret};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "whsec_bench_0123456789abcdef";
const T: &str = "1767225600";
const ITEMS: usize = 10_000;
const CONTENT_TYPES: [&str; 3] = ["blog", "page", "author"];
const LOCALES: [&str; 2] = ["en-us", "fr-fr"];

fn hmac_hex(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(T.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A JSON body of exactly `len` bytes (a job payload padded with a `data.note` string).
fn body_of_len(len: usize) -> Vec<u8> {
    let mut v = job_payload();
    v["data"]["note"] = json!("");
    let base = serde_json::to_vec(&v).expect("serialises").len();
    v["data"]["note"] = json!("x".repeat(len.saturating_sub(base)));
    let out = serde_json::to_vec(&v).expect("serialises");
    assert_eq!(out.len(), len);
    out
}

/// A job-completion webhook as Contentstack sends it (the shape devkit/harness/sign.mjs builds).
fn job_payload() -> Value {
    json!({
        "module": "jobs",
        "api_key": "blt_api_key_1",
        "event": "jobs.environments.production.publish.completed",
        "triggered_at": "2026-01-01T00:00:00.000Z",
        "data": {
            "status": "completed",
            "action": "publish",
            "summary": {"success": 250, "unsuccess": 2, "skip": 0, "total_processed": 252},
            "environments": ["production"],
            "job_id": "6f1c2a9e-3b7d-4e21-9a55-0c8f1d2e3b4a"
        }
    })
}

fn bench_hmac(c: &mut Criterion) {
    let secrets = [Secret::new(SECRET)];
    let mut g = c.benchmark_group("hmac");
    for (name, len) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let body = body_of_len(len);
        let header = format!("t={T},v1={}", hmac_hex(&body));
        assert!(signature::verify_hmac(&header, &body, &secrets).is_ok());
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("{name}/crate"), |b| {
            b.iter(|| signature::verify_hmac(black_box(&header), black_box(&body), &secrets))
        });
        g.bench_function(format!("{name}/floor"), |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
                mac.update(black_box(T).as_bytes());
                mac.update(b".");
                mac.update(black_box(&body));
                mac.finalize().into_bytes()
            })
        });
    }
    g.finish();
}

fn bench_payload(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload");
    let job = serde_json::to_vec(&job_payload()).expect("serialises");
    for (name, body) in [("job", job), ("64KiB", body_of_len(64 * 1024))] {
        let v = event::parse_body(&body).expect("valid");
        assert!(matches!(event::recognize(&v), Ok(Recognition::Job(_))));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("{name}/crate"), |b| {
            b.iter(|| {
                let v = event::parse_body(black_box(&body)).expect("valid");
                event::recognize(&v).expect("a job")
            })
        });
        g.bench_function(format!("{name}/floor"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).expect("valid"))
        });
    }
    g.finish();
}

struct PlanInput {
    job: PlanJob,
    items: Vec<PlanItem>,
    envs: Vec<PlanEnvironment>,
    rules: Rules,
}

fn plan_input() -> PlanInput {
    let rules = Rules::from_value(&json!({
        "production": {
            "zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
            "kv_binding": "CONTENT_KV",
            "entry": {
                "kv_keys": ["{environment}:{locale}:entry:{content_type}:{uid}"],
                "kv_prefixes": ["{environment}:{locale}:list:{content_type}:"],
                "tags": ["cs-{environment}-{uid}", "cs-{environment}-ct-{content_type}"],
                "urls": ["{base_url}{url}"]
            }
        }
    }))
    .expect("valid rules");
    let envs = vec![PlanEnvironment {
        name: "production".into(),
        uid: "blt_env_prod".into(),
        base_urls: BTreeMap::from([
            ("en-us".to_string(), "https://www.example.com/".to_string()),
            (
                "fr-fr".to_string(),
                "https://www.example.com/fr/".to_string(),
            ),
        ]),
    }];
    let items = (0..ITEMS)
        .map(|i| {
            let ct = CONTENT_TYPES[i % CONTENT_TYPES.len()];
            PlanItem {
                uid: format!("blt{i:016x}"),
                item_type: ItemType::Entry,
                locale: Some(LOCALES[(i / CONTENT_TYPES.len()) % LOCALES.len()].to_string()),
                content_type: Some(ct.to_string()),
                version: Some(1 + (i % 5) as u64),
                environment_uid: "blt_env_prod".into(),
                success: true,
                url: Some(format!("/{ct}/slug-{i}")),
            }
        })
        .collect();
    let job = PlanJob {
        job_id: "6f1c2a9e-3b7d-4e21-9a55-0c8f1d2e3b4a".into(),
        api_key: "blt_api_key_1".into(),
        branch: None,
    };
    PlanInput {
        job,
        items,
        envs,
        rules,
    }
}

/// The floor: the five strings per item, formatted and nothing else.
fn format_only(items: &[PlanItem]) -> Vec<String> {
    let env = "production";
    let mut out = Vec::with_capacity(items.len() * 5);
    for it in items {
        let locale = it.locale.as_deref().unwrap_or_default();
        let ct = it.content_type.as_deref().unwrap_or_default();
        let base = if locale == "fr-fr" {
            "https://www.example.com/fr"
        } else {
            "https://www.example.com"
        };
        out.push(format!("{env}:{locale}:entry:{ct}:{}", it.uid));
        out.push(format!("{env}:{locale}:list:{ct}:"));
        out.push(format!("cs-{env}-{}", it.uid));
        out.push(format!("cs-{env}-ct-{ct}"));
        out.push(format!("{base}{}", it.url.as_deref().unwrap_or_default()));
    }
    out
}

fn bench_plan(c: &mut Criterion) {
    let input = plan_input();
    let p = plan::plan(&input.job, &input.items, &input.envs, &input.rules);
    let prod = &p.environments["production"];
    assert_eq!(prod.kv_keys.len(), ITEMS);
    assert_eq!(prod.files().len(), ITEMS);
    assert!(p.skipped.is_empty());
    assert_eq!(format_only(&input.items).len(), ITEMS * 5);

    let mut g = c.benchmark_group("plan");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    g.throughput(Throughput::Elements(ITEMS as u64));
    g.bench_function("10000x5/crate", |b| {
        b.iter(|| {
            plan::plan(
                &input.job,
                black_box(&input.items),
                &input.envs,
                &input.rules,
            )
        })
    });
    g.bench_function("10000x5/floor", |b| {
        b.iter(|| format_only(black_box(&input.items)))
    });
    g.finish();
}

criterion_group!(benches, bench_hmac, bench_payload, bench_plan);
criterion_main!(benches);
