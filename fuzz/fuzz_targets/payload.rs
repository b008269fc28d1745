//! `event::parse_body` then `event::recognize` on arbitrary bytes.
//!
//! Checks:
//! 1. Neither panics (nor overflows the stack on deep nesting).
//! 2. `parse_body` agrees with a reference: bodies starting with a UTF-8 BOM or not UTF-8
//!    are rejected; bodies nesting arrays/objects deeper than `MAX_DEPTH` are rejected;
//!    otherwise the result equals `serde_json` with its recursion limit lifted (same value,
//!    or both errors). This covers the 128-level path, which parses piece by piece.
//! 3. A recognised job is consistent: `job_id` is 1–256 bytes, the channel is a
//!    `jobs.environments.…publish.completed` channel agreeing with the action and the
//!    environment, environment hints are non-empty and unique, and `api_key` /
//!    `triggered_at` match the accessors.
//! 4. `recognize` errors (missing / invalid `job_id`) only for job-completion channels,
//!    and every error maps to a 400.
#![no_main]

use contentstack_edge_purge::event::{
    self, parse_body, recognize, Action, EventError, Recognition, MAX_DEPTH, MAX_JOB_ID_BYTES,
};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;
use serde_json::Value;

/// Nesting depth of arrays/objects outside strings (the documented counting rule).
fn depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// serde_json without its 128-level recursion limit (input depth is bounded by the caller).
fn reference(text: &str) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let v = Value::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
}

fn is_job_channel(s: &str) -> bool {
    s.starts_with("jobs.environments.") && s.ends_with("publish.completed")
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_body(data);

    // 2: agreement with the reference.
    let text = match std::str::from_utf8(data) {
        Ok(t) if !data.starts_with(&[0xEF, 0xBB, 0xBF]) => Some(t),
        _ => None,
    };
    match text {
        None => assert!(
            matches!(parsed, Err(EventError::InvalidJson(_))),
            "BOM or non-UTF-8 body accepted"
        ),
        Some(t) if depth(t) > MAX_DEPTH => assert!(
            matches!(parsed, Err(EventError::InvalidJson(_))),
            "body nested {} deep accepted",
            depth(t)
        ),
        Some(t) => {
            let want = reference(t);
            match (&parsed, &want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "parse_body differs from serde_json"),
                (Err(EventError::InvalidJson(_)), None) => {}
                _ => panic!(
                    "parse_body and serde_json disagree (depth {}): parse_body ok={}, serde_json ok={}",
                    depth(t),
                    parsed.is_ok(),
                    want.is_some()
                ),
            }
        }
    }

    let Ok(value) = parsed else { return };

    // 3 + 4: recognition.
    match recognize(&value) {
        Ok(Recognition::Job(job)) => {
            assert!(
                !job.job_id.is_empty() && job.job_id.len() <= MAX_JOB_ID_BYTES,
                "job_id of {} bytes accepted",
                job.job_id.len()
            );
            assert!(is_job_channel(&job.channel), "channel {:?}", job.channel);
            let suffix = match job.action {
                Action::Publish => "publish.completed",
                Action::Unpublish => "unpublish.completed",
            };
            assert!(job.channel.ends_with(suffix));
            if job.action == Action::Publish {
                assert!(!job.channel.ends_with("unpublish.completed"));
            }
            match &job.channel_environment {
                Some(env) => {
                    assert!(!env.is_empty() && !env.chars().any(char::is_control));
                    assert_eq!(
                        job.channel,
                        format!("jobs.environments.{env}.{}.completed", job.action)
                    );
                }
                None => assert_eq!(
                    job.channel,
                    format!("jobs.environments.{}.completed", job.action)
                ),
            }
            for (i, h) in job.hinted_environments.iter().enumerate() {
                assert!(!h.is_empty(), "empty environment hint");
                assert!(
                    !job.hinted_environments[..i].contains(h),
                    "duplicate hint {h:?}"
                );
            }
            assert_eq!(job.api_key.as_deref(), event::api_key(&value));
            assert_eq!(job.triggered_at.as_deref(), event::triggered_at(&value));
        }
        Ok(Recognition::NotJob { reason }) => {
            assert!(!reason.is_empty());
            assert!(reason.len() < 1024, "reason is {} bytes long", reason.len());
        }
        Err(e) => {
            assert!(matches!(
                e,
                EventError::MissingJobId | EventError::InvalidJobId
            ));
            assert_eq!(e.status(), 400);
            // Only an object naming a job-completion channel somewhere can error.
            let obj = value.as_object().expect("errors only for objects");
            let mut names: Vec<String> = Vec::new();
            for k in ["event", "channel", "channels"] {
                match obj.get(k) {
                    Some(Value::String(s)) => names.push(s.clone()),
                    Some(Value::Array(a)) if k == "channels" => {
                        names.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                    }
                    _ => {}
                }
            }
            if let (Some(m), Some(ev)) = (
                obj.get("module").and_then(Value::as_str),
                obj.get("event").and_then(Value::as_str),
            ) {
                names.push(format!("{m}.{ev}"));
            }
            assert!(
                names.iter().any(|n| is_job_channel(n)),
                "{e:?} for a payload without a job channel"
            );
        }
    }
});
