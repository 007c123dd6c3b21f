//! Readings gathered from the three kinds of record, in reading order.

use crate::items::{ReadingItem, key_of};
use psa_domain::RunReading;
use psa_domain::ports::Page;
use std::collections::BTreeMap;

/// Readings by key; of two records of one reading, the one recorded last.
#[derive(Default)]
pub(super) struct Merged(pub(super) BTreeMap<String, (RunReading, u64)>);

impl Merged {
    /// Adds a page of reading items; answers whether more follow it.
    pub(super) fn page(&mut self, page: Page<ReadingItem>) -> bool {
        for i in page.items {
            let (r, at) = i.into_reading();
            self.add(r, at);
        }
        page.next.is_some()
    }

    pub(super) fn add(&mut self, r: RunReading, at: u64) {
        let key = key_of(&r);
        match self.0.get(&key) {
            Some((_, earlier)) if *earlier > at => {}
            _ => {
                self.0.insert(key, (r, at));
            }
        }
    }
}
