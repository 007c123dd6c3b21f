//! The readings of each run, written so that a night costs what changed.
//!
//! Three kinds of record, chosen by the reading's outcome:
//! - `unchanged` (Coro's count equals what the PSA already holds — on a quiet night almost every
//!   reading): packed, in reading order, [`CHUNK`] to an item (`RCHUNK#<type>#<inc>#<runId>#<first
//!   account>#<first service>`, the readings as deflated JSON), so 2,000 of them cost a few dozen
//!   write units instead of 2,000;
//! - `posted`: one item each under `RPOSTED#…`, without an index entry (a change: its pair state
//!   is written anyway; the index entry would double its cost);
//! - every other outcome (rare, or a problem to list): one item each under `READING#…` with the
//!   `byOutcome` index entry.
//!
//! Pages merge the kinds in reading order and still cost their size: each kind a page may hold is
//! one Query of `limit + 1` (chunks: at most two small Queries around the cursor), so a page is at
//! most four requests whatever the run's size; `outcome=failed`, `unmapped`, `held`,
//! `skipped_disabled` one Query on `byOutcome`. The cursor is the key of the page's last reading
//! whichever kind held it. A job that records `unchanged` readings when the run already has
//! chunks (a rare continuation) writes them as items, so a run's chunks never overlap. Each
//! record carries when it was written (`recordedAt`, µs): a reading recorded again wins over its earlier
//! record in every listing that holds both. Runs written before this layout (every reading under
//! `READING#…`) list the same way: `posted` pages also read the index.

use crate::connectors::ws_pk;
use crate::error::{serde_error, store_error};
use crate::history::{READING_RETENTION_S, decode_cursor, encode_cursor, now_s};
use crate::sync::{DynamoSync, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{Page, PageError, RunReadings, StoreError};
use psa_domain::{ConnectorRef, Outcome, RunId, RunReading};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

/// Unchanged readings per chunk item: ~25 bytes each once deflated, so a chunk is a few KB.
pub(crate) const CHUNK: usize = 250;

pub(crate) fn readings_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("READING#{}#{run}#", c.key())
}

fn chunks_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("RCHUNK#{}#{run}#", c.key())
}

fn posted_prefix(c: &ConnectorRef, run: &RunId) -> String {
    format!("RPOSTED#{}#{run}#", c.key())
}

/// A reading's place in the run: `<account>#<service>` (the order of every listing).
fn key_of(r: &RunReading) -> String {
    format!("{}#{}", r.account_id, r.service)
}

/// The `byOutcome` index's partition of a run's readings with one outcome; its sort key is the
/// reading's `<account>#<service>`, so a filtered page is ordered as the unfiltered one.
fn outcome_index_pk(c: &ConnectorRef, run: &RunId, outcome: Outcome) -> String {
    format!(
        "READINGS#{}#{}#{run}#{}",
        c.workspace,
        c.key(),
        outcome.as_str()
    )
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ReadingItem {
    pk: String,
    sk: String,
    /// The `byOutcome` entry (absent for `posted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    /// When it was recorded (epoch µs, see [`recorded_at`]; 0 for records older than this field).
    #[serde(rename = "recordedAt", default)]
    pub(crate) at: u64,
    #[serde(flatten)]
    pub(crate) reading: RunReading,
}

/// Packed `unchanged` readings, in reading order.
#[derive(Serialize, Deserialize)]
pub(crate) struct ChunkItem {
    pk: String,
    sk: String,
    #[serde(rename = "expiresAt")]
    expires_at: i64,
    #[serde(rename = "recordedAt", default)]
    at: u64,
    /// How many readings it holds.
    n: usize,
    /// The key of its last reading.
    last: String,
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
        pk: ws_pk(&c.workspace),
        sk: format!("{}{}", chunks_prefix(c, run), key_of(&part[0])),
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
        pk: ws_pk(&c.workspace),
        sk: format!("{prefix}{}", key_of(r)),
        gsi2pk: (!is_posted).then(|| outcome_index_pk(c, run, r.outcome)),
        gsi2sk: (!is_posted).then(|| key_of(r)),
        expires_at,
        at,
        reading: r.clone(),
    }
}

fn pack(readings: &[RunReading]) -> Result<Vec<u8>, StoreError> {
    let json =
        serde_json::to_vec(readings).map_err(|e| StoreError(format!("pack readings: {e}")))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&json)
        .and_then(|()| z.finish())
        .map_err(|e| StoreError(format!("pack readings: {e}")))
}

pub(crate) fn unpack(chunk: &ChunkItem) -> Result<Vec<RunReading>, StoreError> {
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(chunk.data.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| StoreError(format!("unpack readings of {}: {e}", chunk.sk)))?;
    serde_json::from_slice(&json).map_err(|e| StoreError(format!("unpack readings: {e}")))
}

impl DynamoSync {
    async fn has_chunks(&self, c: &ConnectorRef, run: &RunId) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s(ws_pk(&c.workspace)))
            .expression_attribute_values(":s", s(chunks_prefix(c, run)))
            .projection_expression("pk")
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| store_error("look for packed readings", e))?;
        Ok(out.count > 0)
    }

    /// Up to `max` chunks of the run from key `after` on (exclusive; `None`: from the start),
    /// plus the chunk that holds `after` itself; `true` when more chunks follow.
    async fn chunks_from(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ChunkItem>, bool), StoreError> {
        let (pk, prefix) = (ws_pk(&c.workspace), chunks_prefix(c, run));
        let query = |cond: &str| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression(cond)
                .expression_attribute_values(":p", s(pk.clone()))
                .consistent_read(true)
        };
        let mut chunks = Vec::new();
        let forward = match after {
            None => query("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":s", s(prefix.clone())),
            Some(key) => {
                // The chunk that starts at or before the cursor may hold readings after it.
                let holding = query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(prefix.clone()))
                    .expression_attribute_values(":hi", s(format!("{prefix}{key}")))
                    .scan_index_forward(false)
                    .limit(1)
                    .send()
                    .await
                    .map_err(|e| store_error("read packed readings", e))?;
                chunks.extend(
                    serde_dynamo::from_items::<_, ChunkItem>(holding.items.unwrap_or_default())
                        .map_err(|e| serde_error("read packed readings", e))?,
                );
                // The prefix with its final `#` raised to `$`: just past this run's chunks.
                let end = format!("{}$", &prefix[..prefix.len() - 1]);
                query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(format!("{prefix}{key}\u{1}")))
                    .expression_attribute_values(":hi", s(end))
            }
        };
        let out = forward
            .limit(i32::try_from(max).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("read packed readings", e))?;
        let more = out.last_evaluated_key.is_some();
        chunks.extend(
            serde_dynamo::from_items::<_, ChunkItem>(out.items.unwrap_or_default())
                .map_err(|e| serde_error("read packed readings", e))?,
        );
        Ok((chunks, more))
    }
}

#[async_trait]
impl RunReadings for DynamoSync {
    async fn put_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        readings: &[RunReading],
    ) -> Result<(), StoreError> {
        let (mut unchanged, mut single): (Vec<&RunReading>, Vec<&RunReading>) = readings
            .iter()
            .partition(|r| r.outcome == Outcome::Unchanged);
        if !unchanged.is_empty() && self.has_chunks(connector, run).await? {
            single.append(&mut unchanged);
        }
        let expires_at = now_s() + READING_RETENTION_S;
        let at = recorded_at();
        if !unchanged.is_empty() {
            let mut by_key: BTreeMap<String, RunReading> = BTreeMap::new();
            for r in unchanged {
                by_key.insert(key_of(r), r.clone());
            }
            let sorted: Vec<RunReading> = by_key.into_values().collect();
            let mut items = Vec::new();
            for part in sorted.chunks(CHUNK) {
                items.push(chunk_item(connector, run, part, expires_at, at)?);
            }
            self.put_keyed(items.into_iter(), |i| &i.sk, "record packed readings")
                .await?;
        }
        let items = single
            .into_iter()
            .map(|r| reading_item(connector, run, r, expires_at, at));
        self.put_keyed(items, |i| &i.sk, "record readings").await
    }

    async fn all_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Vec<RunReading>, StoreError> {
        let pk = ws_pk(&connector.workspace);
        let chunks: Vec<ChunkItem> = self
            .query_all(
                pk.clone(),
                &chunks_prefix(connector, run),
                "query packed readings",
            )
            .await?;
        let mut items: Vec<ReadingItem> = self
            .query_all(
                pk.clone(),
                &readings_prefix(connector, run),
                "query readings",
            )
            .await?;
        items.extend(
            self.query_all::<ReadingItem>(pk, &posted_prefix(connector, run), "query readings")
                .await?,
        );
        let mut all = Merged::default();
        for chunk in &chunks {
            for r in unpack(chunk)? {
                all.add(r, chunk.at);
            }
        }
        for i in items {
            all.add(i.reading, i.at);
        }
        Ok(all.0.into_values().map(|(r, _)| r).collect())
    }

    async fn readings_page(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        outcome: Option<Outcome>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RunReading>, PageError> {
        let pk = ws_pk(&connector.workspace);
        let prefix = readings_prefix(connector, run);
        let limit = limit.clamp(1, 1000);
        const TABLE: [&str; 2] = ["pk", "sk"];
        const INDEX: [&str; 4] = ["pk", "sk", "gsi2pk", "gsi2sk"];
        let index_pk = outcome.map(|o| outcome_index_pk(connector, run, o));
        // The cursor is the key of the last reading shown, in the shape of this list's cursors.
        let after: Option<String> = match (cursor, &index_pk) {
            (None, _) => None,
            (Some(c), None) => Some(decode_cursor(c, &TABLE, &pk, &prefix)?),
            (Some(c), Some(ipk)) => {
                let key = decode_cursor(c, &INDEX, &pk, &prefix)?;
                if key.get("gsi2pk").and_then(|v| v.as_s().ok()) != Some(ipk) {
                    return Err(PageError::InvalidCursor);
                }
                Some(key)
            }
        }
        .map(|k| {
            k.get("sk")
                .and_then(|v| v.as_s().ok())
                .and_then(|sk| sk.strip_prefix(&prefix))
                .map(str::to_owned)
                .ok_or(PageError::InvalidCursor)
        })
        .transpose()?;
        let table_start = |p: &str| {
            after.as_ref().map(|k| {
                HashMap::from([
                    ("pk".to_owned(), s(pk.clone())),
                    ("sk".to_owned(), s(format!("{p}{k}"))),
                ])
            })
        };
        let mut merged = Merged::default();
        let mut more = false;
        // Items of one prefix of the table, from the cursor on.
        let table_stream = |p: String| {
            let start = table_start(&p);
            let pk = pk.clone();
            async move {
                self.page::<ReadingItem>(
                    None,
                    ("pk", pk),
                    Some(("sk", p)),
                    &TABLE,
                    limit,
                    start,
                    true,
                    "list readings",
                )
                .await
            }
        };
        let packed = matches!(outcome, None | Some(Outcome::Unchanged));
        match outcome {
            None => {
                for p in [prefix.clone(), posted_prefix(connector, run)] {
                    more |= merged.page(table_stream(p).await?);
                }
            }
            Some(o) => {
                if o == Outcome::Posted {
                    more |= merged.page(table_stream(posted_prefix(connector, run)).await?);
                }
                // The index: every outcome's items (for `posted`, runs recorded before `RPOSTED`).
                let ipk = index_pk.clone().unwrap_or_default();
                let start = after.as_ref().map(|k| {
                    HashMap::from([
                        ("pk".to_owned(), s(pk.clone())),
                        ("sk".to_owned(), s(format!("{prefix}{k}"))),
                        ("gsi2pk".to_owned(), s(ipk.clone())),
                        ("gsi2sk".to_owned(), s(k.clone())),
                    ])
                });
                let page: Page<ReadingItem> = self
                    .page(
                        Some("byOutcome"),
                        ("gsi2pk", ipk),
                        None,
                        &INDEX,
                        limit,
                        start,
                        true,
                        "list readings by outcome",
                    )
                    .await?;
                more |= merged.page(page);
            }
        }
        if packed {
            let want = limit as usize + 1;
            let (chunks, more_chunks) = self
                .chunks_from(connector, run, after.as_deref(), want.div_ceil(CHUNK) + 1)
                .await?;
            let mut count = 0;
            for chunk in &chunks {
                if after.as_deref().is_some_and(|a| chunk.last.as_str() <= a) {
                    continue;
                }
                for r in unpack(chunk)? {
                    if after.as_deref().is_none_or(|a| key_of(&r).as_str() > a) {
                        merged.add(r, chunk.at);
                        count += 1;
                    }
                }
            }
            more |= more_chunks && count <= limit as usize;
        }
        let merged = merged.0;
        more |= merged.len() > limit as usize;
        let page: Vec<(String, RunReading)> = merged
            .into_iter()
            .take(limit as usize)
            .map(|(k, (r, _))| (k, r))
            .collect();
        let next = match (more, page.last()) {
            (true, Some((key, _))) => {
                let mut k: HashMap<String, AttributeValue> = HashMap::new();
                k.insert("pk".into(), s(pk.clone()));
                k.insert("sk".into(), s(format!("{prefix}{key}")));
                if let Some(ipk) = &index_pk {
                    k.insert("gsi2pk".into(), s(ipk.clone()));
                    k.insert("gsi2sk".into(), s(key.clone()));
                }
                Some(encode_cursor(&k))
            }
            _ => None,
        };
        Ok(Page {
            items: page.into_iter().map(|(_, r)| r).collect(),
            next,
        })
    }
}

/// When a record is written: epoch microseconds, strictly increasing within the process (two
/// records of one reading written in the same microsecond still tell which came last).
fn recorded_at() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |prev| {
            Some(now.max(prev + 1))
        })
        .unwrap_or_default();
    now.max(prev + 1)
}

/// Readings by key; of two records of one reading, the one recorded last.
#[derive(Default)]
struct Merged(BTreeMap<String, (RunReading, u64)>);

impl Merged {
    /// Adds a page of reading items; answers whether more follow it.
    fn page(&mut self, page: Page<ReadingItem>) -> bool {
        for i in page.items {
            self.add(i.reading, i.at);
        }
        page.next.is_some()
    }

    fn add(&mut self, r: RunReading, at: u64) {
        let key = key_of(&r);
        match self.0.get(&key) {
            Some((_, earlier)) if *earlier > at => {}
            _ => {
                self.0.insert(key, (r, at));
            }
        }
    }
}
