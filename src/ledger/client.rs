//! The Worker's typed handle on the ledger Durable Object: one method per operation, each
//! with its own request and answer type ([`super::ops`]).

use serde::de::DeserializeOwned;
use serde_json::Value;
use worker::{Env, Method, Result};

use super::ops::*;
use super::JobRecord;

/// Binding name of the ledger namespace.
pub const LEDGER_BINDING: &str = "LEDGER";
/// Name of the single ledger instance.
pub const LEDGER_NAME: &str = "ledger";

/// Worker-side handle on the ledger instance.
pub struct LedgerClient {
    stub: worker::Stub,
}

impl LedgerClient {
    pub fn new(env: &Env) -> Result<LedgerClient> {
        let ns = env.durable_object(LEDGER_BINDING)?;
        Ok(LedgerClient {
            stub: ns.get_by_name(LEDGER_NAME)?,
        })
    }

    /// Sends one operation and decodes its answer (as `Response::json` would).
    async fn call<T: DeserializeOwned>(&self, op: LedgerOp) -> Result<T> {
        let text = self.send(op).await?;
        serde_json::from_str(&text).map_err(worker::Error::from)
    }

    /// Sends one operation and reads its answer's text. Boxed, so that the request code is one
    /// function rather than a copy inlined into `call` for every answer type.
    fn send(
        &self,
        op: LedgerOp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + '_>> {
        Box::pin(async move {
            let body =
                serde_json::to_string(&op).map_err(|e| worker::Error::RustError(e.to_string()))?;
            let req =
                crate::request::new_request("https://ledger/op", Method::Post, None, Some(&body))?;
            let mut resp = self.stub.fetch_with_request(req).await?;
            if resp.status_code() != 200 {
                let text = resp.text().await.unwrap_or_default();
                return Err(worker::Error::RustError(format!(
                    "ledger answered {}: {}",
                    resp.status_code(),
                    text
                )));
            }
            resp.text().await
        })
    }

    /// Records a delivery (and dedupes it).
    pub async fn accept(&self, op: AcceptOp) -> Result<AcceptAnswer> {
        self.call(LedgerOp::Accept(op)).await
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

    /// A page of records, newest first.
    pub async fn list(&self, op: ListOp) -> Result<JobList> {
        self.call(LedgerOp::List(op)).await
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

    /// The webhook health check's state.
    pub async fn health(&self) -> Result<crate::health::HealthState> {
        self.call(LedgerOp::GetHealth).await
    }

    /// Replaces the webhook health check's state.
    pub async fn put_health(&self, state: crate::health::HealthState) -> Result<()> {
        self.call::<Value>(LedgerOp::PutHealth(Box::new(state)))
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
    }
}
