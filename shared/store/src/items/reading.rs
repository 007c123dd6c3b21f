//! The items of a run's readings, kept 40 days (the contract asks for at least 35): one item per
//! reading (`READING#…` with its `byOutcome` entry, or `RPOSTED#…` without), or a chunk of
//! `unchanged` readings packed as deflated JSON (`RCHUNK#…`). Every item says when it was written
//! (`recordedAt`, epoch µs; 0 for records older than the field).
//!
//! A reading is written as the store's own [`ReadingRecord`] (as attributes of its item, or as
//! JSON in a chunk), not as the API's `RunReading`: the names below are the table's.

use crate::attrs::DAY_S;
use crate::keys::{
    chunks_prefix, in_run, outcome_index_pk, posted_prefix, reading_key, readings_prefix,
    workspace_pk,
};
use psa_domain::ports::StoreError;
use psa_domain::{ConnectorRef, Outcome, RunId, RunReading, Unit};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// A run's readings are kept 40 days (the contract asks for at least 35).
pub(crate) const READING_RETENTION_S: i64 = 40 * DAY_S;

/// A reading's place in its run: `<account>#<service>` (the order of every listing).
pub(crate) fn key_of(r: &RunReading) -> String {
    reading_key(&r.account_id, &r.service)
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ReadingItem {
    pk: String,
    pub(crate) sk: String,
    /// The `byOutcome` entry (absent for `posted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    /// When it was recorded (epoch µs; 0 for records older than this field).
    #[serde(rename = "recordedAt", default)]
    pub(crate) at: u64,
    #[serde(flatten)]
    reading: ReadingRecord,
}

impl ReadingItem {
    /// The reading the item holds and when it was recorded.
    pub(crate) fn into_reading(self) -> (RunReading, u64) {
        (self.reading.into(), self.at)
    }
}

/// Packed `unchanged` readings, in reading order.
#[derive(Serialize, Deserialize)]
pub(crate) struct ChunkItem {
    pk: String,
    pub(crate) sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(rename = "recordedAt", default)]
    pub(crate) at: u64,
    /// How many readings it holds.
    n: usize,
    /// The key of its last reading.
    pub(crate) last: String,
    /// The readings as JSON, deflated.
    #[serde(with = "serde_bytes")]
    pub(crate) data: Vec<u8>,
}

/// The item of readings `part` (at least one, in reading order) packed.
pub(crate) fn chunk_item(
    c: &ConnectorRef,
    run: &RunId,
    part: &[RunReading],
    expires_at: i64,
    at: u64,
) -> Result<ChunkItem, StoreError> {
    Ok(ChunkItem {
        pk: workspace_pk(&c.workspace),
        sk: in_run(&chunks_prefix(c, run), &key_of(&part[0])),
        expires_at,
        at,
        n: part.len(),
        last: key_of(&part[part.len() - 1]),
        data: pack(part)?,
    })
}

/// The item of one reading: `posted` under `RPOSTED#…` without an index entry, any other outcome
/// under `READING#…` with its `byOutcome` entry.
pub(crate) fn reading_item(
    c: &ConnectorRef,
    run: &RunId,
    r: &RunReading,
    expires_at: i64,
    at: u64,
) -> ReadingItem {
    let is_posted = r.outcome == Outcome::Posted;
    let prefix = if is_posted {
        posted_prefix(c, run)
    } else {
        readings_prefix(c, run)
    };
    ReadingItem {
        pk: workspace_pk(&c.workspace),
        sk: in_run(&prefix, &key_of(r)),
        gsi2pk: (!is_posted).then(|| outcome_index_pk(c, run, r.outcome)),
        gsi2sk: (!is_posted).then(|| key_of(r)),
        expires_at,
        at,
        reading: r.into(),
    }
}

fn pack(readings: &[RunReading]) -> Result<Vec<u8>, StoreError> {
    let records: Vec<ReadingRecord> = readings.iter().map(ReadingRecord::from).collect();
    let json =
        serde_json::to_vec(&records).map_err(|e| StoreError(format!("pack readings: {e}")))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&json)
        .and_then(|()| z.finish())
        .map_err(|e| StoreError(format!("pack readings: {e}")))
}

/// The readings a chunk holds, in reading order.
pub(crate) fn unpack(chunk: &ChunkItem) -> Result<Vec<RunReading>, StoreError> {
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(chunk.data.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| StoreError(format!("unpack readings of {}: {e}", chunk.sk)))?;
    let records: Vec<ReadingRecord> =
        serde_json::from_slice(&json).map_err(|e| StoreError(format!("unpack readings: {e}")))?;
    Ok(records.into_iter().map(RunReading::from).collect())
}

/// One reading of a run and how it ended.
#[derive(Serialize, Deserialize)]
struct ReadingRecord {
    #[serde(rename = "accountId")]
    account_id: String,
    #[serde(rename = "accountName")]
    account_name: String,
    service: String,
    unit: Unit,
    value: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<u64>,
    outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&RunReading> for ReadingRecord {
    fn from(r: &RunReading) -> Self {
        Self {
            account_id: r.account_id.clone(),
            account_name: r.account_name.clone(),
            service: r.service.clone(),
            unit: r.unit,
            value: r.value,
            previous: r.previous,
            outcome: r.outcome,
            reason: r.reason.clone(),
        }
    }
}

impl From<ReadingRecord> for RunReading {
    fn from(r: ReadingRecord) -> Self {
        Self {
            account_id: r.account_id,
            account_name: r.account_name,
            service: r.service,
            unit: r.unit,
            value: r.value,
            previous: r.previous,
            outcome: r.outcome,
            reason: r.reason,
        }
    }
}
