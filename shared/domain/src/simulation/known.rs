//! Engine bugs the simulation found and that are not fixed (see the report of issue 19). A seed
//! that runs into one stops there and counts it; `SIM_STRICT=1` fails on them instead. Each is
//! recognised by what the checks saw, and only that.
//!
//! Fixed, and no longer tolerated (a seed that shows one fails): two workers on one run (the
//! lease is taken before the run is read; a finished run is never written again; a delete keeps
//! a leased slot), a run held after an earlier job posted (the guard's decision is saved before
//! the first count), and an old incarnation's count over a newer one (a job posts only while
//! its lease surely runs; a new incarnation's first job waits out the old one's live lease).
//! Their regression tests are in `usecase/tests/job_fence.rs`.

/// A known bug, by the violation it shows as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Known {
    /// A run left `queued` for ever, its job never sent. The engine now ends or sends such a run
    /// whenever something meets it: a "Sync now" or a firing that finds it holding the slot
    /// sends its job again, and a claim that takes over its expired slot ends it `failed`. What
    /// is left: the request or firing that created it died, and then the one claim that took
    /// over its expired slot failed too (a store fault in that best-effort ending, or a claim
    /// whose answer was lost), so no one knows of the run any more. About 1 seed in 5,000.
    QueuedRunNeverSent,
}

impl Known {
    pub fn name(self) -> &'static str {
        match self {
            Self::QueuedRunNeverSent => "known bug: a queued run whose job was never sent",
        }
    }
}

/// The known bug every violation of `found` is, if they are all one.
pub fn recognise(found: &[String]) -> Option<Known> {
    let each: Option<Vec<Known>> = found.iter().map(|v| one(v)).collect();
    let each = each?;
    let first = *each.first()?;
    each.iter().all(|k| *k == first).then_some(first)
}

fn one(v: &str) -> Option<Known> {
    (v.contains("never finished") && v.contains("no job was ever sent"))
        .then_some(Known::QueuedRunNeverSent)
}
