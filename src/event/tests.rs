//! Tests for body parsing and job-event recognition.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn job(v: Value) -> JobEvent {
    match recognize(&v) {
        Ok(Recognition::Job(j)) => j,
        other => panic!("expected a job event for {v}, got {other:?}"),
    }
}

fn not_job_reason(v: Value) -> String {
    match recognize(&v) {
        Ok(Recognition::NotJob { reason }) => reason,
        other => panic!("expected NotJob for {v}, got {other:?}"),
    }
}

fn nested_arrays(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

fn nested_objects(n: usize) -> String {
    // n objects: {"a":{"a":…{}…}}
    format!("{}{{}}{}", r#"{"a":"#.repeat(n - 1), "}".repeat(n - 1))
}

// ---------------------------------------------------------------------------
// Channel forms
// ---------------------------------------------------------------------------

#[test]
fn generic_channels_in_event() {
    let j = job(json!({"event": "jobs.environments.publish.completed", "job_id": "j1"}));
    assert_eq!(j.action, Action::Publish);
    assert_eq!(j.channel_environment, None);
    assert_eq!(j.channel, "jobs.environments.publish.completed");
    assert_eq!(j.job_id, "j1");

    let j = job(json!({"event": "jobs.environments.unpublish.completed", "job_id": "j1"}));
    assert_eq!(j.action, Action::Unpublish);
    assert_eq!(j.channel_environment, None);
}

#[test]
fn named_environment_channels_in_event() {
    let j = job(json!({"event": "jobs.environments.production.publish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Publish, Some("production"))
    );
    let j = job(json!({"event": "jobs.environments.staging.unpublish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Unpublish, Some("staging"))
    );
    // Names may contain dots, dashes, and even look like action words.
    let j = job(json!({"event": "jobs.environments.eu.prod-2.publish.completed", "job_id": "j"}));
    assert_eq!(j.channel_environment.as_deref(), Some("eu.prod-2"));
    let j = job(json!({"event": "jobs.environments.publish.publish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Publish, Some("publish"))
    );
    let j = job(json!({"event": "jobs.environments.unpublish.publish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Publish, Some("unpublish"))
    );
    let j = job(json!({"event": "jobs.environments.publish.unpublish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Unpublish, Some("publish"))
    );
}

#[test]
fn module_plus_event_channels() {
    let j = job(json!({
        "module": "jobs",
        "event": "environments.production.publish.completed",
        "job_id": "j"
    }));
    assert_eq!(j.action, Action::Publish);
    assert_eq!(j.channel_environment.as_deref(), Some("production"));
    assert_eq!(j.channel, "jobs.environments.production.publish.completed");

    let j =
        job(json!({"module": "jobs", "event": "environments.unpublish.completed", "job_id": "j"}));
    assert_eq!((j.action, j.channel_environment), (Action::Unpublish, None));
    assert_eq!(j.channel, "jobs.environments.unpublish.completed");

    let j =
        job(json!({"module": "jobs.environments", "event": "publish.completed", "job_id": "j"}));
    assert_eq!(j.channel, "jobs.environments.publish.completed");

    // A full channel in `event` works whatever `module` says.
    let j = job(
        json!({"module": "jobs", "event": "jobs.environments.dev.publish.completed", "job_id": "j"}),
    );
    assert_eq!(j.channel_environment.as_deref(), Some("dev"));

    // module alone is not an event.
    let r = not_job_reason(json!({"module": "jobs.environments.publish.completed", "job_id": "j"}));
    assert!(!r.is_empty());
}

#[test]
fn channel_and_channels_fields() {
    let j = job(json!({"channel": "jobs.environments.qa.unpublish.completed", "job_id": "j"}));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Unpublish, Some("qa"))
    );

    let j = job(json!({
        "channels": ["entry.publish", 7, "jobs.environments.production.publish.completed"],
        "job_id": "j"
    }));
    assert_eq!(j.channel_environment.as_deref(), Some("production"));

    let j = job(json!({"channels": "jobs.environments.publish.completed", "job_id": "j"}));
    assert_eq!(j.channel, "jobs.environments.publish.completed");

    // event that is not a job channel, but a job channel elsewhere: first job channel wins.
    let j = job(json!({
        "event": "publish",
        "module": "entry",
        "channel": "jobs.environments.x.publish.completed",
        "channels": ["jobs.environments.y.unpublish.completed"],
        "job_id": "j"
    }));
    assert_eq!(
        (j.action, j.channel_environment.as_deref()),
        (Action::Publish, Some("x"))
    );
}

#[test]
fn look_alikes_and_near_misses_are_not_jobs() {
    for channel in [
        "j\u{043e}bs.environments.publish.completed", // Cyrillic о
        "jobs.envir\u{043e}nments.publish.completed",
        "jobs.environments.publish.c\u{043e}mpleted",
        "jobs\u{ff0e}environments.publish.completed", // full-width dot
        "jobs.environments.publish.completed\u{200b}", // zero-width space
        "\u{feff}jobs.environments.publish.completed",
        "Jobs.environments.publish.completed",
        "JOBS.ENVIRONMENTS.PUBLISH.COMPLETED",
        " jobs.environments.publish.completed",
        "jobs.environments.publish.completed ",
        "jobs.environments.publish.completed.",
        "jobs.environments..publish.completed",
        "jobs.environments.publish.completed.extra",
        "jobs.environments.publish.started",
        "jobs.environments.production.publish.started",
        "jobs.environments.production.publish.failed",
        "jobs.environments.production.publish",
        "jobs.environments.production.republish.completed",
        "jobs.environments.prod\nuction.publish.completed",
        "jobs.environments",
        "jobs.environments.",
        "jobs.publish.completed",
        "environments.publish.completed",
        "job.environments.publish.completed",
        "jobs_environments_publish_completed",
        "entry.publish",
        "entry.environments.production.publish.completed",
        "asset.unpublish",
        "",
    ] {
        let reason = not_job_reason(json!({"event": channel, "job_id": "j"}));
        assert!(
            reason.contains("not a job-completion event"),
            "{channel:?}: {reason}"
        );
        let reason = not_job_reason(json!({"channel": channel, "job_id": "j"}));
        assert!(!reason.is_empty(), "{channel:?}");
    }
}

#[test]
fn non_job_payloads() {
    // A regular entry publish, even with a job_id-looking field, is not a job event.
    let r = not_job_reason(json!({
        "module": "entry", "event": "publish", "api_key": "blt1",
        "data": {"entry": {"uid": "e"}, "job_id": "j"}
    }));
    assert!(r.contains("entry.publish") || r.contains("publish"), "{r}");
    // No event at all.
    assert!(not_job_reason(json!({"job_id": "j"})).contains("no event"));
    // event not a string.
    assert!(!not_job_reason(json!({"event": 5, "job_id": "j"})).is_empty());
    // Valid JSON that is not an object.
    for v in [
        json!([]),
        json!("jobs.environments.publish.completed"),
        json!(1),
        json!(null),
        json!(true),
    ] {
        assert!(not_job_reason(v).contains("not a JSON object"));
    }
    // A non-job event with no job_id is still NotJob, not MissingJobId.
    assert!(matches!(
        recognize(&json!({"event": "entry.publish"})),
        Ok(Recognition::NotJob { .. })
    ));
}

#[test]
fn not_job_reason_is_short_and_escaped() {
    let long = format!("evil\n{}", "x".repeat(500));
    let r = not_job_reason(json!({"event": long}));
    assert!(r.len() < 160, "{}", r.len());
    assert!(!r.contains('\n'));
    assert!(r.contains("\\n"));
    // Cutting never splits a multi-byte character.
    let r = not_job_reason(json!({"event": "é".repeat(100)}));
    assert!(r.contains('é'));
}

// ---------------------------------------------------------------------------
// job_id
// ---------------------------------------------------------------------------

#[test]
fn job_id_positions_and_precedence() {
    let ev = "jobs.environments.publish.completed";
    assert_eq!(job(json!({"event": ev, "job_id": "top"})).job_id, "top");
    assert_eq!(
        job(json!({"event": ev, "data": {"job_id": "data"}})).job_id,
        "data"
    );
    assert_eq!(
        job(json!({"event": ev, "data": {"job": {"uid": "uid"}}})).job_id,
        "uid"
    );
    assert_eq!(
        job(json!({"event": ev, "data": {"job": {"job_id": "jj"}}})).job_id,
        "jj"
    );
    let all = json!({
        "event": ev, "job_id": "top",
        "data": {"job_id": "data", "job": {"uid": "uid", "job_id": "jj"}}
    });
    assert_eq!(job(all).job_id, "top");
    let three =
        json!({"event": ev, "data": {"job_id": "data", "job": {"uid": "uid", "job_id": "jj"}}});
    assert_eq!(job(three).job_id, "data");
    let two = json!({"event": ev, "data": {"job": {"uid": "uid", "job_id": "jj"}}});
    assert_eq!(job(two).job_id, "uid");
    // null counts as absent.
    let nulls = json!({"event": ev, "job_id": null, "data": {"job_id": null, "job": {"uid": "u"}}});
    assert_eq!(job(nulls).job_id, "u");
    // The documented example id.
    let doc = json!({"event": ev, "job_id": "00906443-2ba3-420e-a3bd-2b6b4cd7c5745"});
    assert_eq!(job(doc).job_id, "00906443-2ba3-420e-a3bd-2b6b4cd7c5745");
}

#[test]
fn missing_and_invalid_job_ids() {
    let ev = "jobs.environments.production.publish.completed";
    let missing = [
        json!({"event": ev}),
        json!({"event": ev, "job_id": null}),
        json!({"event": ev, "data": {}}),
        json!({"event": ev, "data": {"job": {}}}),
        json!({"event": ev, "data": "job_id"}),
        json!({"event": ev, "data": {"job": "j"}}),
        json!({"event": ev, "data": {"jobs": {"uid": "j"}}}),
        json!({"event": ev, "jobId": "j"}),
    ];
    for v in missing {
        let err = recognize(&v).unwrap_err();
        assert_eq!(err, EventError::MissingJobId, "{v}");
        assert_eq!(err.code(), "missing_job_id");
    }
    let invalid = [
        json!({"event": ev, "job_id": 12345}),
        json!({"event": ev, "job_id": ""}),
        json!({"event": ev, "job_id": true}),
        json!({"event": ev, "job_id": ["j"]}),
        json!({"event": ev, "job_id": {"uid": "j"}}),
        json!({"event": ev, "job_id": "x".repeat(257)}),
        json!({"event": ev, "job_id": format!("{}a", "é".repeat(128))}), // 257 bytes, 129 chars
        json!({"event": ev, "data": {"job": {"uid": 7}}}),
        // First present wins even if a later one is valid.
        json!({"event": ev, "job_id": 1, "data": {"job_id": "ok"}}),
    ];
    for v in invalid {
        let err = recognize(&v).unwrap_err();
        assert_eq!(err, EventError::InvalidJobId, "{v}");
        assert_eq!(err.code(), "invalid_job_id");
        assert_eq!(err.status(), 400);
    }
    // Boundaries that are valid.
    assert_eq!(
        job(json!({"event": ev, "job_id": "x".repeat(256)}))
            .job_id
            .len(),
        256
    );
    assert_eq!(
        job(json!({"event": ev, "job_id": "é".repeat(128)}))
            .job_id
            .len(),
        256
    );
    assert_eq!(job(json!({"event": ev, "job_id": "x"})).job_id, "x");
}

// ---------------------------------------------------------------------------
// Other fields
// ---------------------------------------------------------------------------

#[test]
fn realistic_payload_fields() {
    let body = br#"{
        "module": "jobs",
        "api_key": "blt0123456789abcdef",
        "event": "environments.production.publish.completed",
        "triggered_at": "2026-05-14T03:28:20.123Z",
        "data": {
            "job_id": "00906443-2ba3-420e-a3bd-2b6b4cd7c5745",
            "environments": ["blt_env_uid_1", {"name": "production", "uid": "blt_env_uid_2"}, {"uid": "blt_env_uid_3"}, "", "blt_env_uid_1"],
            "environment": {"name": "", "uid": "blt_env_uid_0"},
            "summary": {"success": 29, "failed": 0, "skip": 0},
            "cs$meta": {"cs$key": 1}
        }
    }"#;
    let v = parse_body(body).unwrap();
    let j = job(v.clone());
    assert_eq!(j.job_id, "00906443-2ba3-420e-a3bd-2b6b4cd7c5745");
    assert_eq!(j.action, Action::Publish);
    assert_eq!(j.channel_environment.as_deref(), Some("production"));
    assert_eq!(j.api_key.as_deref(), Some("blt0123456789abcdef"));
    assert_eq!(j.triggered_at.as_deref(), Some("2026-05-14T03:28:20.123Z"));
    assert_eq!(
        j.hinted_environments,
        [
            "blt_env_uid_0",
            "blt_env_uid_1",
            "production",
            "blt_env_uid_3"
        ]
    );
    assert_eq!(api_key(&v), Some("blt0123456789abcdef"));
    assert_eq!(triggered_at(&v), Some("2026-05-14T03:28:20.123Z"));
    assert_eq!(v["data"]["cs$meta"]["cs$key"], 1);
}

#[test]
fn environment_hints_from_every_position() {
    let ev = "jobs.environments.publish.completed";
    let j = job(json!({"event": ev, "job_id": "j", "data": {"environment": "staging"}}));
    assert_eq!(j.hinted_environments, ["staging"]);
    let j = job(json!({"event": ev, "job_id": "j", "data": {"environments": "staging"}}));
    assert_eq!(j.hinted_environments, ["staging"]);
    let j = job(
        json!({"event": ev, "job_id": "j", "environments": [{"name": "a"}, {"uid": "b"}], "environment": "c"}),
    );
    assert_eq!(j.hinted_environments, ["c", "a", "b"]);
    let j = job(
        json!({"event": ev, "job_id": "j", "data": {"environments": [1, null, {"x": "y"}, [], "ok"]}}),
    );
    assert_eq!(j.hinted_environments, ["ok"]);
    let j = job(json!({"event": ev, "job_id": "j"}));
    assert!(j.hinted_environments.is_empty());
    assert_eq!(j.api_key, None);
    assert_eq!(j.triggered_at, None);
    let j = job(json!({"event": ev, "job_id": "j", "api_key": 5, "triggered_at": 1_778_729_300}));
    assert_eq!((j.api_key, j.triggered_at), (None, None));
}

#[test]
fn action_serialisation() {
    assert_eq!(
        serde_json::to_string(&Action::Publish).unwrap(),
        r#""publish""#
    );
    assert_eq!(
        serde_json::to_string(&Action::Unpublish).unwrap(),
        r#""unpublish""#
    );
    assert_eq!(
        serde_json::from_str::<Action>(r#""unpublish""#).unwrap(),
        Action::Unpublish
    );
    assert_eq!(Action::Publish.as_str(), "publish");
    assert_eq!(Action::Unpublish.to_string(), "unpublish");
}

// ---------------------------------------------------------------------------
// parse_body
// ---------------------------------------------------------------------------

fn assert_invalid_json(raw: &[u8]) {
    match parse_body(raw) {
        Err(e @ EventError::InvalidJson(_)) => assert_eq!(e.code(), "invalid_json"),
        other => panic!(
            "expected invalid_json for {:?}, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

#[test]
fn bom_and_non_utf8_are_invalid() {
    assert_invalid_json(b"\xEF\xBB\xBF{\"event\":\"x\"}");
    assert_invalid_json(b"\xEF\xBB\xBF");
    assert_invalid_json(b"{\"a\":\"\xFF\"}");
    assert_invalid_json(b"{\"a\":\"\xC3\"}"); // truncated 2-byte sequence
    assert_invalid_json(b"{\"a\":\"\xED\xA0\x80\"}"); // UTF-8-encoded surrogate
    assert_invalid_json(b"\xFF\xFE{\x00}\x00"); // UTF-16 LE with BOM
                                                // A BOM character later in a string is just a character.
    let v = parse_body("{\"a\":\"\u{feff}x\"}".as_bytes()).unwrap();
    assert_eq!(v["a"], "\u{feff}x");
    // The message does not echo the body.
    let Err(EventError::InvalidJson(msg)) = parse_body(b"{\"secret-ish\": \xFF}") else {
        panic!("expected invalid_json");
    };
    assert!(!msg.contains("secret-ish"), "{msg}");
}

#[test]
fn invalid_json_variants() {
    for raw in [
        "",
        "   ",
        "{",
        "}",
        "{\"a\":1,}",
        "[1,]",
        "{'a':1}",
        "{a:1}",
        "{\"a\":1} {\"b\":2}",
        "{\"a\":NaN}",
        "{\"a\":01}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"\\ud800\"}",
        "// comment\n{}",
        "{\"a\":1}\u{0}",
        "\u{a0}{}", // non-breaking space is not JSON whitespace
    ] {
        assert_invalid_json(raw.as_bytes());
    }
    // Surrounding JSON whitespace is fine.
    assert_eq!(parse_body(b" \r\n\t{\"a\":1}\n ").unwrap(), json!({"a": 1}));
    assert_eq!(parse_body(b"[]").unwrap(), json!([]));
    assert_eq!(parse_body(b"\"str\"").unwrap(), json!("str"));
}

#[test]
fn depth_128_is_accepted_and_129_rejected() {
    // Arrays.
    let v = parse_body(nested_arrays(128).as_bytes()).unwrap();
    let mut depth = 0;
    let mut cur = &v;
    while let Some(inner) = cur.as_array() {
        depth += 1;
        match inner.first() {
            Some(next) => cur = next,
            None => break,
        }
    }
    assert_eq!(depth, 128);
    assert_invalid_json(nested_arrays(129).as_bytes());
    assert_invalid_json(nested_arrays(10_000).as_bytes());

    // Objects.
    let v = parse_body(nested_objects(128).as_bytes()).unwrap();
    let mut depth = 1;
    let mut cur = &v;
    while let Some(next) = cur.get("a") {
        depth += 1;
        cur = next;
    }
    assert_eq!(depth, 128);
    assert_eq!(cur, &json!({}));
    assert_invalid_json(nested_objects(129).as_bytes());

    // Mixed, with scalars at the bottom (scalars add no depth).
    let mixed_128 = format!("{}1{}", r#"{"a":["#.repeat(64), "]}".repeat(64));
    assert!(parse_body(mixed_128.as_bytes()).is_ok());
    let mixed_129 = format!("[{mixed_128}]");
    assert_invalid_json(mixed_129.as_bytes());
}

#[test]
fn depth_ignores_brackets_inside_strings() {
    let deep_text = format!(r#"{{"a":"{}","b":"\"[[[{{"}}"#, "[".repeat(300));
    let v = parse_body(deep_text.as_bytes()).unwrap();
    assert_eq!(v["a"].as_str().unwrap().len(), 300);
    assert_eq!(v["b"], "\"[[[{");
    // 127 real levels + brackets in strings at the bottom still parse.
    let s = format!("{}\"]]]\\\\\"{}", "[".repeat(127), "]".repeat(127));
    assert!(parse_body(s.as_bytes()).is_ok());
}

#[test]
fn depth_128_documents_parse_like_serde_json_would() {
    // A real-looking event wrapped so that its deepest point is exactly 128:
    // the peeled path must give the same value as building it by hand.
    let inner = nested_arrays(126); // depth 126 inside data.deep => total 128
    let raw = format!(
        r#" {{ "event" : "jobs.environments.a,b:c.publish.completed", "job_id":"j,1:2",
            "data": {{"deep": {inner}, "s": "}},{{\"x\":[", "n": [1, 2.5, -3e2, true, null]}},
            "dup": 1, "dup": 2 }} "#
    );
    let v = parse_body(raw.as_bytes()).unwrap();
    let j = job(v.clone());
    assert_eq!(j.job_id, "j,1:2");
    assert_eq!(j.channel_environment.as_deref(), Some("a,b:c"));
    assert_eq!(v["data"]["s"], "},{\"x\":[");
    assert_eq!(v["data"]["n"], json!([1, 2.5, -300.0, true, null]));
    assert_eq!(v["dup"], 2, "last duplicate key wins, as in serde_json");
    assert_eq!(
        v["data"]["deep"],
        serde_json::from_str::<Value>(&nested_arrays(126)).unwrap()
    );

    // Invalid documents at depth 128 are still invalid.
    let deep = nested_arrays(127);
    for raw in [
        format!("[{deep},]"),
        format!("[,{deep}]"),
        format!("[{deep}]]"),
        format!("[{deep}"),
        format!("{{{deep}}}"),
        format!("{{\"a\" {deep}}}"),
        format!("{{\"a\":{deep},}}"),
        format!("{{\"a\":{deep}:1}}"),
        format!("{{a:{deep}}}"),
        format!("[{deep}}}"),
        format!("[{deep}] x"),
        format!("[\"{deep}]"),
    ] {
        assert_invalid_json(raw.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "(\\PC|[\"\\\\,:\\[\\]{}\u{0}-\u{1f}]){0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("(\\PC|[\",:\\[\\]{}]){0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_body_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_body(&raw);
    }

    #[test]
    fn parse_body_never_panics_on_bracket_soup(raw in "[\\[\\]{}\",:\\\\a1 ]{0,400}") {
        if let Ok(v) = parse_body(raw.as_bytes()) {
            let _ = recognize(&v);
        }
    }

    #[test]
    fn parse_body_round_trips_json(v in arb_json(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
        // serde_json's float parsing is not exactly round-trip; agree with it.
        let expected: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(parse_body(text.as_bytes()).unwrap(), expected);
    }

    #[test]
    fn peeled_parse_agrees_with_serde_json(v in arb_json(), pretty in any::<bool>()) {
        prop_assume!(v.is_array() || v.is_object());
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
        let expected: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(parse_peeled(&text).unwrap(), expected);
    }

    #[test]
    fn peeled_parse_rejects_what_serde_json_rejects(open in "[\\[{]", rest in "[\\[\\]{}\",:\\\\a1 ]{0,60}") {
        let raw = format!("{open}{rest}");
        let serde_ok = serde_json::from_str::<Value>(&raw).ok();
        let peeled_ok = parse_peeled(&raw).ok();
        prop_assert_eq!(peeled_ok, serde_ok);
    }

    #[test]
    fn depth_limit_is_exact(n in 1usize..300, objects in any::<bool>()) {
        let raw = if objects { nested_objects(n) } else { nested_arrays(n) };
        let ok = parse_body(raw.as_bytes()).is_ok();
        prop_assert_eq!(ok, n <= 128);
    }

    #[test]
    fn recognize_never_panics(v in arb_json(), channel in "(jobs\\.environments\\.)?[a-z.]{0,12}(publish|unpublish)?(\\.completed)?") {
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), Value::String(channel));
        obj.insert("data".into(), v.clone());
        obj.insert("job_id".into(), v);
        let _ = recognize(&Value::Object(obj));
    }
}
