//! SQL helpers shared by the ledger's storage modules ([`super::store`], [`super::lookups`]):
//! bound values (JSON text among them) and a `COUNT(*)` query. A leaf, so the two never import each other.

use serde::Deserialize;
use worker::{Result, SqlStorage, SqlStorageValue};

/// A text value to bind.
pub(super) fn s(v: impl Into<String>) -> SqlStorageValue {
    SqlStorageValue::String(v.into())
}

/// A value as JSON text to bind.
pub(super) fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// An integer value to bind.
pub(super) fn i(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// The `n` of a `SELECT COUNT(*) AS n …` query (0 without a row).
pub(super) fn count(sql: &SqlStorage, q: &str, binds: Vec<SqlStorageValue>) -> Result<i64> {
    let rows: Vec<CountRow> = sql.exec(q, binds)?.to_array()?;
    Ok(rows.first().map(|r| r.n).unwrap_or(0))
}
