//! Engine bugs the simulation found and that are not fixed yet (see the report of issue 19).
//! A seed that runs into one stops there and counts it; `SIM_STRICT=1` fails on them instead.
//! Each is recognised by what the checks saw, and only that.

/// A known bug, by the violation it shows as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Known {
    /// Two workers on one run: a job that read the run before it finished writes it (its
    /// record or readings) after another finished it. Two ways found:
    /// * a duplicate delivery's job reads the run (queued or running) and stalls before it takes
    ///   the lease; meanwhile the other delivery runs the run to its end and frees the slot; the
    ///   stalled job's `take_lease` then creates a new slot and takes it, and the job writes its
    ///   stale copy back as `running` and runs the run again (`run_job`: `get_run` →
    ///   `take_lease` → `put_run`, the run not read again);
    /// * a delete clears the incarnation's slot (`finish_delete` → `RunSlots::clear`) while a
    ///   job holds its lease: the run's message, delivered again, finds no lease, takes one and
    ///   cancels the run; the first job, still going, then records readings (`not_sent`) of the
    ///   finished run, whose tallies no longer add up to them.
    TwoWorkersOnOneRun,
    /// An admin's "Sync now" (or release) died between `create_run` and `enqueue` (the
    /// function killed while the queue did not answer): the run stays `queued` for ever, and
    /// holds the connector's slot until it expires (`slot_ttl`, 6 h), so "Sync now" answers
    /// "already queued or running" meanwhile.
    QueuedRunNeverSent,
    /// A job plans, finds the guard does not hold, posts and checkpoints some counts, and stops
    /// (crashed, or a store error: its message comes back) before the run is written again; the
    /// guard's decision was never saved (`run.guard` lives in the job's memory until the next
    /// `put_run`), so the next job decides again on the pair states the first one updated and on
    /// a tree that changed meanwhile — and holds the run. The run ends `held` with `posted`
    /// readings, counts in the PSA and pair states it set: "nothing was sent" is untrue.
    HeldAfterPosting,
    /// A job of an incarnation that has ended (deleted and connected again, or re-tokened) is
    /// still posting: it re-reads the connector only every `cancel_check_every` counts, so a
    /// count it sends after the end can land in the PSA after the new incarnation's run sent
    /// the same pair — and, when the counts differ, the PSA keeps the old one while the new
    /// incarnation's pair state says it holds the new (until the next full resend).
    StaleCountOverNewer,
}

impl Known {
    pub fn name(self) -> &'static str {
        match self {
            Self::TwoWorkersOnOneRun => "known bug: two workers on one run",
            Self::QueuedRunNeverSent => "known bug: a queued run whose job was never sent",
            Self::HeldAfterPosting => "known bug: a run held after an earlier job posted",
            Self::StaleCountOverNewer => "known bug: an old incarnation's count over a newer one",
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
        return Some(Known::TwoWorkersOnOneRun);
    }
    if v.contains(" of generation ") && !v.contains("after it had ended") {
        return Some(Known::StaleCountOverNewer);
    }
    if v.starts_with("held run ") && v.ends_with(" in an earlier job") {
        return Some(Known::HeldAfterPosting);
    }
    if v.contains("never finished")
        && v.contains("no job was ever sent")
        && !v.contains("(Scheduled)")
    {
        return Some(Known::QueuedRunNeverSent);
    }
    None
}
