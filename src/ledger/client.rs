//! The Worker's typed handles on the ledger's Durable Objects: [`JobClient`] for one job's
//! object and [`IndexClient`] for the job index, one method per operation, each with its own
//! request and answer type ([`super::ops`], [`super::index`]).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use worker::{Env, Result};

use crate::request::ObjectStub;

use super::index::{IndexEntry, IndexOp};
use super::ops::*;
use super::JobRecord;

/// Binding of the per-job Durable Object namespace ([`super::job_object::Job`]).
pub const JOBS_BINDING: &str = "JOB_OBJECTS";
/// Binding of the job index namespace ([`super::index_object::JobIndex`]).
pub const INDEX_BINDING: &str = "JOB_INDEX";
/// Name of the single index instance.
pub const INDEX_NAME: &str = "index";

/// Sends one operation to a Durable Object and reads its answer's text. One function (boxed)
/// for both clients and every operation, so the request code is not inlined per answer type.
fn send<'a, O: Serialize + 'a>(
    stub: &'a ObjectStub,
    op: &'a O,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + 'a>> {
    let body = serde_json::to_string(op).map_err(|e| worker::Error::RustError(e.to_string()));
    Box::pin(async move { stub.post("ledger", "https://ledger/op", &body?).await })
}

/// Sends one operation and decodes its answer (as `Response::json` would).
async fn call<T: DeserializeOwned, O: Serialize>(stub: &ObjectStub, op: O) -> Result<T> {
    let text = send(stub, &op).await?;
    serde_json::from_str(&text).map_err(worker::Error::from)
}

/// Worker-side handle on one job's object.
pub struct JobClient {
    stub: ObjectStub,
}

impl JobClient {
    /// The object of job `job_id` (its name is the job id).
    pub fn new(env: &Env, job_id: &str) -> Result<JobClient> {
        Ok(JobClient {
            stub: ObjectStub::new(env, JOBS_BINDING, job_id)?,
        })
    }

    async fn call<T: DeserializeOwned>(&self, op: LedgerOp) -> Result<T> {
        call(&self.stub, op).await
    }

    /// Records a delivery (and dedupes it).
    pub async fn accept(&self, op: AcceptOp) -> Result<AcceptAnswer> {
        self.call(LedgerOp::Accept(op)).await
    }

    pub async fn claim_warm(&self, op: ClaimWarmOp) -> Result<WarmClaim> {
        self.call(LedgerOp::ClaimWarm(op)).await
    }

    pub async fn report_warm(&self, op: ReportWarmOp) -> Result<Progress> {
        self.call(LedgerOp::ReportWarm(op)).await
    }

    /// Deletes a dry run's throwaway job.
    pub async fn discard(&self) -> Result<()> {
        self.call::<Value>(LedgerOp::Discard).await.map(|_| ())
    }

    /// Undoes an accept or replay whose queue message could not be sent.
    pub async fn rollback(&self, op: RollbackOp) -> Result<()> {
        self.call::<Value>(LedgerOp::Rollback(op)).await.map(|_| ())
    }

    /// One record, if the ledger knows the job.
    pub async fn get(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.call(LedgerOp::Get(GetOp {
            job_id: job_id.to_string(),
        }))
        .await
    }

    /// Starts a new attempt of a known job.
    pub async fn replay(&self, op: ReplayOp) -> Result<Option<ReplayAnswer>> {
        self.call(LedgerOp::Replay(op)).await
    }

    pub async fn start(&self, op: StartOp) -> Result<Progress> {
        self.call(LedgerOp::Start(op)).await
    }

    pub async fn add_actions(&self, op: AddActionsOp) -> Result<Progress> {
        self.call(LedgerOp::AddActions(op)).await
    }

    pub async fn claim(&self, op: ClaimOp) -> Result<Vec<crate::purge::ClaimedAction>> {
        self.call(LedgerOp::Claim(op)).await
    }

    pub async fn report(&self, op: ReportOp) -> Result<Reported> {
        self.call(LedgerOp::Report(op)).await
    }

    pub async fn second_pass(&self, op: SecondPassOp) -> Result<Progress> {
        self.call(LedgerOp::SecondPass(op)).await
    }

    pub async fn claim_lookups(&self, op: ClaimLookupsOp) -> Result<LookupClaim> {
        self.call(LedgerOp::ClaimLookups(op)).await
    }

    pub async fn report_lookups(&self, op: ReportLookupsOp) -> Result<Progress> {
        self.call(LedgerOp::ReportLookups(op)).await
    }

    pub async fn fail(&self, op: FailOp) -> Result<Progress> {
        self.call(LedgerOp::Fail(op)).await
    }

    pub async fn claim_verification(&self, op: ClaimVerificationOp) -> Result<VerificationClaim> {
        self.call(LedgerOp::ClaimVerification(op)).await
    }

    pub async fn report_verification(&self, op: ReportVerificationOp) -> Result<Progress> {
        self.call(LedgerOp::ReportVerification(op)).await
    }
}

/// Worker-side handle on the job index: the dashboard's list and the webhook health state.
pub struct IndexClient {
    stub: ObjectStub,
}

impl IndexClient {
    pub fn new(env: &Env) -> Result<IndexClient> {
        Ok(IndexClient {
            stub: ObjectStub::new(env, INDEX_BINDING, INDEX_NAME)?,
        })
    }

    /// A page of records, newest first.
    pub async fn list(&self, op: ListOp) -> Result<JobList> {
        call(&self.stub, IndexOp::List(op)).await
    }

    /// Tells the index what one job's object holds now (its record, or nothing).
    pub async fn put(&self, entry: IndexEntry) -> Result<()> {
        call::<Value, _>(&self.stub, IndexOp::Put(Box::new(entry)))
            .await
            .map(|_| ())
    }

    /// The webhook health check's state.
    pub async fn health(&self) -> Result<crate::webhook_health::HealthState> {
        call(&self.stub, IndexOp::GetHealth).await
    }

    /// Replaces the webhook health check's state.
    pub async fn put_health(&self, state: crate::webhook_health::HealthState) -> Result<()> {
        call::<Value, _>(&self.stub, IndexOp::PutHealth(Box::new(state)))
            .await
            .map(|_| ())
    }
}

/// The `accept` operation for a verified delivery.
pub fn accept_op(
    key: String,
    ev: &crate::event::JobEvent,
    received_at: String,
    raw: &[u8],
    parsed: &Value,
    source: &str,
) -> AcceptOp {
    let mut record = JobRecord::accepted(
        ev.job_id.clone(),
        ev.action,
        received_at,
        ev.channel_environment.clone(),
        ev.hinted_environments.clone(),
        ev.api_key.clone(),
        super::cap_payload_value(raw, parsed),
    );
    record.source = source.to_string();
    AcceptOp {
        key,
        record: Box::new(record),
        scratch: false,
    }
}
