//! One page of a run's readings, optionally of one outcome: the three kinds of record merged in
//! reading order, each read from the cursor on (see the module above for the costs).

use super::chunks::CHUNK;
use super::merged::Merged;
use crate::attrs::s;
use crate::cursor::{decode_cursor, encode_cursor};
use crate::items::{ReadingItem, key_of, unpack};
use crate::keys::{
    BY_OUTCOME, in_run, outcome_index_pk, posted_prefix, readings_prefix, workspace_pk,
};
use crate::table::DynamoSync;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{Page, PageError};
use psa_domain::{ConnectorRef, Outcome, RunId, RunReading};
use std::collections::HashMap;

impl DynamoSync {
    pub(super) async fn page_of_readings(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        outcome: Option<Outcome>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RunReading>, PageError> {
        let pk = workspace_pk(&connector.workspace);
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
                    ("sk".to_owned(), s(in_run(p, k))),
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
                        ("sk".to_owned(), s(in_run(&prefix, k))),
                        ("gsi2pk".to_owned(), s(ipk.clone())),
                        ("gsi2sk".to_owned(), s(k.clone())),
                    ])
                });
                let page: Page<ReadingItem> = self
                    .page(
                        Some(BY_OUTCOME),
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
                k.insert("sk".into(), s(in_run(&prefix, key)));
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
