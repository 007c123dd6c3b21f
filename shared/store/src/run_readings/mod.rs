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

mod chunks;
mod merged;
mod page;

use chunks::CHUNK;
use merged::Merged;

use crate::attrs::now_s;
use crate::items::{
    ChunkItem, READING_RETENTION_S, ReadingItem, chunk_item, key_of, reading_item, unpack,
};
use crate::keys::{chunks_prefix, posted_prefix, readings_prefix, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ports::{Page, PageError, RunReadings, StoreError};
use psa_domain::{ConnectorRef, Outcome, RunId, RunReading};
use std::collections::BTreeMap;

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
        let pk = workspace_pk(&connector.workspace);
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
            let (r, at) = i.into_reading();
            all.add(r, at);
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
        self.page_of_readings(connector, run, outcome, limit, cursor)
            .await
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
