//! One request budget towards the PSA for the whole deployment (`GRADIENT_MAX_RPS`), shared by
//! every process at once.
//!
//! The budget is cut into `total` equal **shares**. A process that has calls to make leases some
//! of them for a short time and renews the lease while it is busy; its own pacer then sends at
//! `max_rps × shares / total`. The lease table is one small record (see [`BudgetLeases`]), so a
//! renewal is a read and a conditional write. [`allocate`] decides, from what the record says,
//! how many shares a process may hold:
//!
//! * every live holder (its lease not yet expired, allowing for clock skew) counts, also one
//!   that holds no share yet: it is waiting for one;
//! * each holder's fair part is `total / n` (the remainder goes to the first holders by name),
//!   so a lone process holds every share and N busy ones about `1/N` each;
//! * a process never takes a share another live holder still holds: it takes its fair part of
//!   what is free, and the others give theirs back at their next renewal (they see one more
//!   holder). A holder shrinks its own pacer **before** it writes the smaller lease, and grows it
//!   only **after** the larger lease is written, so the sum of what processes send never exceeds
//!   the budget, whatever the order of renewals;
//! * a crashed (or frozen) process's shares count until its lease's expiry plus the skew margin,
//!   then they are free again.
//!
//! Clocks: each process writes its expiry by its own clock; the others treat it as live until
//! that time **plus** `skew` by theirs. With `skew` at least the largest clock difference, no
//! process ever takes a share whose holder still thinks it has it.

use async_trait::async_trait;

/// One holder of the lease record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Names the process (unique per process start).
    pub owner: String,
    pub shares: u32,
    /// Expiry of the lease, epoch milliseconds by the holder's clock.
    pub until_ms: i64,
}

/// The lease record: its holders and a version for optimistic concurrency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holders: Vec<Holder>,
    /// Version of the record read (0 = no record yet); a write succeeds only on the same version.
    pub version: u64,
}

impl LeaseRecord {
    /// Holders other than `me` whose lease is still live at `now_ms` (allowing `skew_ms`).
    pub fn live_others<'a>(
        &'a self,
        me: &'a str,
        now_ms: i64,
        skew_ms: i64,
    ) -> impl Iterator<Item = &'a Holder> + 'a {
        self.holders
            .iter()
            .filter(move |h| h.owner != me && h.until_ms.saturating_add(skew_ms) > now_ms)
    }

    /// The record with `me` holding `shares` until `until_ms` (removed when `None`), and holders
    /// whose lease has expired (allowing `skew_ms`) left out.
    pub fn with(&self, me: &str, mine: Option<(u32, i64)>, now_ms: i64, skew_ms: i64) -> Self {
        let mut holders: Vec<Holder> = self.live_others(me, now_ms, skew_ms).cloned().collect();
        if let Some((shares, until_ms)) = mine {
            holders.push(Holder {
                owner: me.to_owned(),
                shares,
                until_ms,
            });
        }
        holders.sort_by(|a, b| a.owner.cmp(&b.owner));
        Self {
            holders,
            version: self.version,
        }
    }
}

/// `me`'s fair part of the `total` shares: `total / n` over the `n` live holders (`me`
/// included), the remainder going to the first holders by name.
pub fn fair_part(total: u32, record: &LeaseRecord, me: &str, now_ms: i64, skew_ms: i64) -> u32 {
    let others: Vec<&Holder> = record.live_others(me, now_ms, skew_ms).collect();
    let n = others.len() as u32 + 1;
    let rank = others.iter().filter(|h| h.owner.as_str() < me).count() as u32;
    total / n + u32::from(rank < total % n)
}

/// How many of the `total` shares `me` may hold now: its fair part of what the other live
/// holders leave free (see the module doc).
pub fn allocate(total: u32, record: &LeaseRecord, me: &str, now_ms: i64, skew_ms: i64) -> u32 {
    let taken: u32 = record
        .live_others(me, now_ms, skew_ms)
        .map(|h| h.shares)
        .sum();
    fair_part(total, record, me, now_ms, skew_ms).min(total.saturating_sub(taken))
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another process wrote the record since it was read.
    #[error("the lease record changed since it was read")]
    Conflict,
    #[error("lease store: {0}")]
    Store(String),
}

/// Where the lease record lives (one DynamoDB item in production).
#[async_trait]
pub trait BudgetLeases: Send + Sync {
    /// The record as it is now (a strongly consistent read).
    async fn read(&self) -> Result<LeaseRecord, LeaseError>;
    /// Writes `record` if the stored one still has `record.version`; the stored version becomes
    /// `record.version + 1`.
    async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(holders: &[(&str, u32, i64)]) -> LeaseRecord {
        LeaseRecord {
            holders: holders
                .iter()
                .map(|&(o, s, u)| Holder {
                    owner: o.into(),
                    shares: s,
                    until_ms: u,
                })
                .collect(),
            version: 3,
        }
    }

    #[test]
    fn a_lone_process_takes_every_share() {
        assert_eq!(allocate(20, &LeaseRecord::default(), "a", 1_000, 2_000), 20);
        // its own old lease does not count against it
        assert_eq!(
            allocate(20, &rec(&[("a", 5, 9_000)]), "a", 1_000, 2_000),
            20
        );
    }

    #[test]
    fn a_newcomer_waits_for_shares_others_still_hold() {
        let r = rec(&[("a", 20, 5_000)]);
        assert_eq!(allocate(20, &r, "b", 1_000, 2_000), 0);
        // "a" sees "b" waiting and gives back half at its next renewal
        let r = rec(&[("a", 20, 5_000), ("b", 0, 5_000)]);
        assert_eq!(allocate(20, &r, "a", 1_000, 2_000), 10);
        let r = rec(&[("a", 10, 5_000), ("b", 0, 5_000)]);
        assert_eq!(allocate(20, &r, "b", 1_000, 2_000), 10);
    }

    #[test]
    fn shares_are_split_fairly_and_all_used() {
        let r = rec(&[("a", 0, 9_000), ("b", 0, 9_000), ("c", 0, 9_000)]);
        let got: Vec<u32> = ["a", "b", "c"]
            .iter()
            .map(|me| allocate(20, &r, me, 1_000, 0))
            .collect();
        assert_eq!(got, vec![7, 7, 6]);
        assert_eq!(got.iter().sum::<u32>(), 20);
        // ten processes: two shares each
        let ten: Vec<(String, u32, i64)> = (0..10).map(|i| (format!("p{i}"), 0, 9_000)).collect();
        let r = LeaseRecord {
            holders: ten
                .iter()
                .map(|(o, s, u)| Holder {
                    owner: o.clone(),
                    shares: *s,
                    until_ms: *u,
                })
                .collect(),
            version: 1,
        };
        for i in 0..10 {
            assert_eq!(allocate(20, &r, &format!("p{i}"), 1_000, 0), 2);
        }
    }

    #[test]
    fn expired_leases_free_their_shares_only_after_the_skew_margin() {
        let r = rec(&[("dead", 20, 1_000)]);
        // expired by its own clock, but within the 2 s margin: still counted
        assert_eq!(allocate(20, &r, "b", 2_500, 2_000), 0);
        assert_eq!(allocate(20, &r, "b", 3_001, 2_000), 20);
        let pruned = r.with("b", Some((20, 9_000)), 3_001, 2_000);
        assert_eq!(pruned.holders.len(), 1);
        assert_eq!(pruned.holders[0].owner, "b");
        assert_eq!(pruned.version, 3);
    }

    #[test]
    fn the_sum_never_exceeds_the_total_whatever_the_order() {
        // Processes renew one after another in every order, each from what the record says.
        let owners = ["a", "b", "c", "d"];
        let mut record = LeaseRecord::default();
        for round in 0..12 {
            let me = owners[(round * 7 + round / 3) % owners.len()];
            let mine = allocate(20, &record, me, 1_000, 0);
            record = record.with(me, Some((mine, 10_000)), 1_000, 0);
            let sum: u32 = record.holders.iter().map(|h| h.shares).sum();
            assert!(sum <= 20, "round {round}: {sum}");
        }
        // once everyone renewed twice, each holds its fair part
        for _ in 0..2 {
            for me in owners {
                let mine = allocate(20, &record, me, 1_000, 0);
                record = record.with(me, Some((mine, 10_000)), 1_000, 0);
            }
        }
        let shares: Vec<u32> = record.holders.iter().map(|h| h.shares).collect();
        assert_eq!(shares, vec![5, 5, 5, 5]);
    }
}
