//! Engine bugs the simulation found and that are not fixed yet (see the report of issue 19).
//! A seed that runs into one stops there and counts it; `SIM_STRICT=1` fails on them instead.
//! Each is recognised by what the checks saw, and only that.

/// A known bug, by the violation it shows as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Known {
    /// A job of a duplicate delivery reads the run (queued or running), stalls before it takes
    /// the lease; meanwhile the other delivery runs the run to its end and frees the slot; the
    /// stalled job's `take_lease` then creates a new slot and takes it, and the job writes its
    /// stale copy of the run back as `running` (`run_job`: `get_run` → `take_lease` →
    /// `put_run`, nothing re-read): a finished run is running again and is run a second time.
    FinishedRunRunsAgain,
    /// An admin's "Sync now" (or release) died between `create_run` and `enqueue` (the
    /// function killed while the queue did not answer): the run stays `queued` for ever, and
    /// holds the connector's slot until it expires (`slot_ttl`, 6 h), so "Sync now" answers
    /// "already queued or running" meanwhile.
    QueuedRunNeverSent,
}

impl Known {
    pub fn name(self) -> &'static str {
        match self {
            Self::FinishedRunRunsAgain => "known bug: a finished run runs again",
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
    if v.ends_with("which read the run before it finished") {
        return Some(Known::FinishedRunRunsAgain);
    }
    if v.contains("never finished")
        && v.contains("no job was ever sent")
        && !v.contains("(Scheduled)")
    {
        return Some(Known::QueuedRunNeverSent);
    }
    None
}
