//! Queue messages: what one pipeline message carries (a job, its ledger attempt, the delivery's
//! scope and the step to run), and sending it. A leaf module: the pipeline and the ledger's
//! alarm both send these.

use serde::{Deserialize, Serialize};
use worker::{Env, MessageBuilder};

use crate::event::Action;
use crate::plan::PlanEnvironment;

/// Queue binding for pipeline steps.
pub const JOBS_QUEUE: &str = "JOBS";
/// Queue binding for jobs that ran out of tries.
pub const DEAD_LETTER_QUEUE: &str = "DEAD_LETTERS";

/// Where a job is in the pipeline. Written internally tagged (`{"step":"collect","skip":…}`);
/// read through [`StepFields`], which takes the same shape without serde's buffering of
/// internally tagged enums (a large share of the .wasm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", try_from = "StepFields")]
pub enum Step {
    Start,
    Collect {
        skip: u64,
        api_key: String,
        branch: Option<String>,
        environments: Vec<PlanEnvironment>,
    },
    /// Reference look-ups of the scope's changed items, after its pages (and before it is
    /// collected).
    References {
        api_key: String,
        branch: Option<String>,
        environments: Vec<PlanEnvironment>,
    },
    Drain,
    /// The second purge pass, sent `REPURGE_DELAY_SECONDS` after the first.
    SecondPass,
    /// The probe step (`pipeline::probe`; serialized as `verify`): probing a sample of purged
    /// URLs after a pass (docs/CONTRACT.md, "Verified invalidation").
    Verify,
    /// Requesting the purged URLs again after the last pass (`pipeline::warm`; docs/CONTRACT.md,
    /// "Warm after the purge").
    Warm,
}

/// The step names.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StepName {
    Start,
    Collect,
    References,
    Drain,
    SecondPass,
    Verify,
    Warm,
}

/// A [`Step`] as written: its name and the fields of every step (those of other steps are
/// ignored, as the derived internally tagged reading ignored unknown fields).
#[derive(Deserialize)]
struct StepFields {
    step: StepName,
    skip: Option<u64>,
    api_key: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    environments: Option<Vec<PlanEnvironment>>,
}

impl TryFrom<StepFields> for Step {
    type Error = String;

    fn try_from(f: StepFields) -> Result<Step, String> {
        fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("missing field `{name}`"))
        }
        Ok(match f.step {
            StepName::Start => Step::Start,
            StepName::Collect => Step::Collect {
                skip: need(f.skip, "skip")?,
                api_key: need(f.api_key, "api_key")?,
                branch: f.branch,
                environments: need(f.environments, "environments")?,
            },
            StepName::References => Step::References {
                api_key: need(f.api_key, "api_key")?,
                branch: f.branch,
                environments: need(f.environments, "environments")?,
            },
            StepName::Drain => Step::Drain,
            StepName::SecondPass => Step::SecondPass,
            StepName::Verify => Step::Verify,
            StepName::Warm => Step::Warm,
        })
    }
}

/// One queue message: a job, the ledger attempt it belongs to, and the step to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: String,
    pub action: Action,
    #[serde(default)]
    pub api_key: Option<String>,
    /// The ledger attempt (1 = first delivery; replays add one).
    pub attempt: u32,
    /// The delivery this message works for: the environment its channel named, or `*`.
    #[serde(default = "any_scope")]
    pub scope: String,
    pub step: Step,
    /// Failed tries of this step so far.
    #[serde(default)]
    pub tries: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl JobMessage {
    pub fn start(job_id: &str, action: Action, api_key: Option<String>, attempt: u32) -> Self {
        JobMessage {
            job_id: job_id.to_string(),
            action,
            api_key,
            attempt,
            scope: any_scope(),
            step: Step::Start,
            tries: 0,
            last_error: None,
        }
    }

    /// The same job at another step, with the try counter reset (progress was made).
    pub fn at(&self, step: Step) -> Self {
        JobMessage {
            step,
            tries: 0,
            last_error: None,
            ..self.clone()
        }
    }
}

fn any_scope() -> String {
    crate::event::ANY_SCOPE.to_string()
}

/// Sends a message to the jobs queue, optionally delayed.
pub async fn enqueue(env: &Env, msg: &JobMessage, delay_seconds: u32) -> worker::Result<()> {
    send_to(env, JOBS_QUEUE, msg, delay_seconds).await
}

/// Sends a message to a queue binding.
pub async fn send_to(
    env: &Env,
    binding: &str,
    msg: &JobMessage,
    delay_seconds: u32,
) -> worker::Result<()> {
    let q = env.queue(binding)?;
    // Sent as JSON text: a structured-clone body would carry maps (the environments' base
    // URLs) as JavaScript Maps, which do not come back as JSON objects.
    let text = serde_json::to_string(msg).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut b = MessageBuilder::new(text);
    if delay_seconds > 0 {
        b = b.delay_seconds(delay_seconds);
    }
    q.send(b.build()).await
}

/// Reads a queue message body as JSON text: the text [`send_to`] sends, or an object body's
/// `JSON.stringify` text.
pub fn decode_message(text: &str) -> Result<JobMessage, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_stay_small() {
        let env = PlanEnvironment {
            name: "production".into(),
            uid: "blt1".into(),
            base_urls: [("en-us".to_string(), "https://www.example.com/".to_string())]
                .into_iter()
                .collect(),
        };
        let m = JobMessage::start("job-1", Action::Publish, Some("blt_key".into()), 2).at(
            Step::Collect {
                skip: 300,
                api_key: "blt_key".into(),
                branch: None,
                environments: vec![env; 50],
            },
        );
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.len() < 128 * 1024 / 8, "{}", json.len());
        let back = decode_message(&json).unwrap();
        assert_eq!(back, m);
        // An object body is read as its JSON text, re-serialized.
        let as_object: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(decode_message(&as_object.to_string()).unwrap(), m);
        match &back.step {
            Step::Collect { environments, .. } => {
                assert_eq!(
                    environments[0].base_urls["en-us"],
                    "https://www.example.com/"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(back.tries, 0);
    }

    #[test]
    fn steps_read_as_the_derived_internally_tagged_enum_read_them() {
        let read = |s: &str| serde_json::from_str::<Step>(s);
        assert_eq!(read(r#"{"step":"drain"}"#).unwrap(), Step::Drain);
        assert_eq!(read(r#"{"step":"second_pass"}"#).unwrap(), Step::SecondPass);
        assert_eq!(read(r#"{"skip":1,"step":"verify"}"#).unwrap(), Step::Verify);
        assert_eq!(read(r#"{"step":"warm"}"#).unwrap(), Step::Warm);
        assert_eq!(
            read(r#"{"api_key":"k","environments":[],"step":"references","x":1}"#).unwrap(),
            Step::References {
                api_key: "k".into(),
                branch: None,
                environments: vec![]
            }
        );
        for step in [Step::Start, Step::Drain, Step::SecondPass, Step::Verify] {
            assert_eq!(read(&serde_json::to_string(&step).unwrap()).unwrap(), step);
        }
        assert!(read(r#"{"step":"collect","api_key":"k","environments":[]}"#).is_err());
        assert!(read(r#"{"step":"nope"}"#).is_err());
        assert!(read(r#"{"skip":1}"#).is_err());
    }

    #[test]
    fn at_resets_the_try_counter() {
        let mut m = JobMessage::start("j", Action::Unpublish, None, 1);
        m.tries = 3;
        m.last_error = Some("x".into());
        let n = m.at(Step::Drain);
        assert_eq!(n.tries, 0);
        assert_eq!(n.last_error, None);
        assert_eq!(n.step, Step::Drain);
        assert_eq!(n.attempt, 1);
    }
}
