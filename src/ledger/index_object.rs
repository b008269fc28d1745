//! The job index Durable Object: one instance (`"index"`) holding the dashboard's list of jobs
//! and the webhook health state ([`super::index`]). A thin shell like [`super::job_object`];
//! the only object every job talks to, a few times per job (docs/ARCHITECTURE.md, "Where
//! state lives").

use serde::Serialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::index::{self, IndexOp, SCHEMA};

/// The Durable Object class.
#[durable_object]
pub struct JobIndex {
    state: State,
    env: Env,
}

impl DurableObject for JobIndex {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for stmt in SCHEMA {
            if let Err(e) = sql.exec(stmt, None) {
                worker::console_error!(
                    "{{\"stage\":\"index_schema\",\"error\":{:?}}}",
                    e.to_string()
                );
            }
        }
        JobIndex { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Text through serde_json, as in the job object.
        let op: IndexOp = match serde_json::from_str(&req.text().await.unwrap_or_default()) {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad index op: {e}"), 400),
        };
        let sql = self.state.storage().sql();
        match dispatch(&sql, op, &self.env) {
            Ok(answer) => Ok(answer),
            Err(e) => Response::error(e.to_string(), 500),
        }
    }
}

fn dispatch(sql: &SqlStorage, op: IndexOp, env: &Env) -> Result<Response> {
    fn answer<T: Serialize>(v: Result<T>) -> Result<Response> {
        Response::from_json(&v?)
    }
    match op {
        IndexOp::Put(entry) => answer(index::put(sql, &entry)),
        IndexOp::List(o) => {
            let retention_ms = super::job_object::settings(env).retention_ms;
            index::expire(sql, js_sys::Date::now() as i64, retention_ms)?;
            answer(index::list(sql, o))
        }
        IndexOp::GetHealth => answer(index::get_health(sql)),
        IndexOp::PutHealth(state) => answer(index::put_health(sql, &state)),
    }
}
