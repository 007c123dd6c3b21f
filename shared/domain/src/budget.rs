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
//! * a process that is done gives its shares back at once, without waiting: it writes them as
//!   **cooling** ([`Cooling`]): steps that say how many of them still count, and for how long,
//!   while the requests it sent are still in Gradient's window (computed from those requests:
//!   as they leave the window, the shares free up step by step). The others count the steps
//!   from the moment they first *saw* the entry (by their own monotonic clock: the write
//!   happened before they read it, so no clock comparison is involved), or until its expiry
//!   plus `skew`, whichever comes first. So a process that has answered holds nothing it could
//!   still use, and its shares are free again as soon as Gradient's window has forgotten its
//!   requests.
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
    /// Given back, but still counted while requests sent under the shares may be in Gradient's
    /// window (`None`: held by a live process).
    pub cooling: Option<Cooling>,
}

/// A holder's shares given back while its last requests may still be in Gradient's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooling {
    /// By time after the write, ascending: until `ms` after it, `shares` still count (then the
    /// next step's; none after the last).
    pub steps: Vec<CoolingStep>,
    /// The record version the entry was written as (with the owner, names this give-back, so a
    /// reader knows when it first saw it).
    pub version: u64,
}

/// One step of a [`Cooling`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoolingStep {
    pub ms: u32,
    pub shares: u32,
}

impl Cooling {
    /// Shares that still count `elapsed_ms` after the write.
    pub fn counted(&self, elapsed_ms: u64) -> u32 {
        self.steps
            .iter()
            .find(|s| elapsed_ms < u64::from(s.ms))
            .map_or(0, |s| s.shares)
    }

    /// When (ms after the write) the count next drops, if it still will after `elapsed_ms`.
    pub fn next_drop(&self, elapsed_ms: u64) -> Option<u32> {
        self.steps
            .iter()
            .find(|s| elapsed_ms < u64::from(s.ms))
            .map(|s| s.ms)
    }
}

/// The cooling steps of a give-back: `leaving_ms` says, for each request sent in the last window,
/// in how many ms it leaves Gradient's window; a share carries `per_share` requests a window.
/// At most `levels` steps, each counting at least the shares the requests still in the window
/// need (`ceil(in window / per_share)`), so the sum over all processes stays within the budget
/// at every moment.
pub fn cooling_steps(leaving_ms: &[u32], per_share: f64, levels: u32) -> Vec<CoolingStep> {
    let mut leaving: Vec<u32> = leaving_ms.iter().copied().filter(|&ms| ms > 0).collect();
    leaving.sort_unstable();
    let k = leaving.len();
    if k == 0 || per_share <= 0.0 {
        return Vec::new();
    }
    let need = |n: usize| (n as f64 / per_share - 1e-9).ceil().max(0.0) as u32;
    let top = need(k);
    let levels = levels.clamp(1, top);
    let mut steps = Vec::new();
    for j in 0..levels {
        let shares = (u64::from(top) * u64::from(levels - j)).div_ceil(u64::from(levels)) as u32;
        let next = (u64::from(top) * u64::from(levels - j - 1)).div_ceil(u64::from(levels)) as u32;
        // `shares` count until no more than `next` shares' worth of requests is in the window.
        let fits = ((f64::from(next) * per_share) + 1e-9).floor() as usize;
        if fits >= k {
            continue;
        }
        let until = leaving[k - fits - 1];
        if steps.last().is_some_and(|s: &CoolingStep| s.ms >= until) {
            continue;
        }
        steps.push(CoolingStep { ms: until, shares });
    }
    steps
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
                cooling: None,
            });
        }
        holders.sort_by(|a, b| a.owner.cmp(&b.owner));
        Self {
            holders,
            version: self.version,
        }
    }

    /// The record with `me`'s shares given back, cooling by `steps` (see [`Cooling`]); expired
    /// holders left out. A give-back with nothing left to cool removes `me`.
    pub fn cooling(&self, me: &str, steps: Vec<CoolingStep>, now_ms: i64, skew_ms: i64) -> Self {
        let mut next = self.with(me, None, now_ms, skew_ms);
        if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
            next.holders.push(Holder {
                owner: me.to_owned(),
                shares: first.shares,
                until_ms: now_ms + i64::from(last.ms),
                cooling: Some(Cooling {
                    steps,
                    version: self.version + 1,
                }),
            });
            next.holders.sort_by(|a, b| a.owner.cmp(&b.owner));
        }
        next
    }

    /// The record with each cooling entry counting what `counted` says it still counts (left
    /// out at 0). Live holders are kept as they are.
    pub fn cooling_counted(&self, mut counted: impl FnMut(&Holder, &Cooling) -> u32) -> Self {
        Self {
            holders: self
                .holders
                .iter()
                .filter_map(|h| match &h.cooling {
                    None => Some(h.clone()),
                    Some(c) => {
                        let shares = counted(h, c).min(h.shares);
                        (shares > 0).then(|| Holder {
                            shares,
                            ..h.clone()
                        })
                    }
                })
                .collect(),
            version: self.version,
        }
    }
}

/// `me`'s fair part of the `total` shares: `total / n` over the `n` live holders (`me`
/// included; cooling give-backs are not holders here), the remainder going to the first holders
/// by name.
pub fn fair_part(total: u32, record: &LeaseRecord, me: &str, now_ms: i64, skew_ms: i64) -> u32 {
    // A cooling give-back holds shares for a moment but wants none: it does not split the whole.
    let others: Vec<&Holder> = record
        .live_others(me, now_ms, skew_ms)
        .filter(|h| h.cooling.is_none())
        .collect();
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
                    cooling: None,
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
                    cooling: None,
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

    #[test]
    fn cooling_steps_cover_every_request_still_in_the_window() {
        // 80 requests evenly over the last second, 4 a share: 20 shares, freed in 4 steps.
        let leaving: Vec<u32> = (1..=80).map(|i| i * 12).collect();
        let steps = cooling_steps(&leaving, 4.0, 4);
        assert_eq!(
            steps.iter().map(|s| (s.ms, s.shares)).collect::<Vec<_>>(),
            vec![(240, 20), (480, 15), (720, 10), (960, 5)]
        );
        // at every moment, the shares counted carry at least the requests still in the window
        let c = Cooling { steps, version: 1 };
        for e in 0..1_000u64 {
            let in_window = leaving.iter().filter(|&&l| u64::from(l) > e).count();
            assert!(
                f64::from(c.counted(e)) * 4.0 >= in_window as f64,
                "at {e} ms: {} shares for {in_window} requests",
                c.counted(e)
            );
        }
        assert_eq!(c.counted(960), 0);
        assert_eq!(c.next_drop(500), Some(720));
        assert_eq!(c.next_drop(960), None);
        // a few requests: one step; none: nothing to cool
        let few = cooling_steps(&[300, 100, 200], 4.0, 4);
        assert_eq!(few, vec![CoolingStep { ms: 300, shares: 1 }]);
        assert!(cooling_steps(&[], 4.0, 4).is_empty());
        // a fractional share (50 req/s over 20 shares) still covers every request
        let leaving: Vec<u32> = (1..=50).map(|i| i * 20).collect();
        let c = Cooling {
            steps: cooling_steps(&leaving, 2.5, 4),
            version: 1,
        };
        for e in 0..1_000u64 {
            let in_window = leaving.iter().filter(|&&l| u64::from(l) > e).count();
            assert!(
                f64::from(c.counted(e)) * 2.5 >= in_window as f64,
                "at {e} ms"
            );
        }
    }

    #[test]
    fn a_cooling_give_back_counts_until_it_has_cooled_and_then_frees_everything() {
        let live = rec(&[("a", 20, 5_000)]);
        let steps = vec![
            CoolingStep {
                ms: 400,
                shares: 20,
            },
            CoolingStep {
                ms: 800,
                shares: 10,
            },
        ];
        let given = live.cooling("a", steps.clone(), 1_000, 2_000);
        assert_eq!(
            given.holders,
            vec![Holder {
                owner: "a".into(),
                shares: 20,
                until_ms: 1_800,
                cooling: Some(Cooling { steps, version: 4 }),
            }]
        );
        // while it cools, a newcomer gets what its steps no longer count...
        assert_eq!(allocate(20, &given, "b", 1_100, 2_000), 0);
        let half = given.cooling_counted(|_, c| c.counted(500));
        assert_eq!(half.holders[0].shares, 10);
        assert_eq!(allocate(20, &half, "b", 1_100, 2_000), 10);
        // a give-back wants nothing: the newcomer's fair part is the whole
        assert_eq!(fair_part(20, &half, "b", 1_100, 2_000), 20);
        // ... once cooled (by the reader's own sight of it), everything
        let cooled = given.cooling_counted(|_, c| c.counted(800));
        assert!(cooled.holders.is_empty());
        assert_eq!(allocate(20, &cooled, "b", 1_100, 2_000), 20);
        // or by its expiry plus the skew margin, for a reader that never saw it cool
        assert_eq!(allocate(20, &given, "b", 3_801, 2_000), 20);
        // a live holder is kept as it is
        assert_eq!(live.cooling_counted(|_, _| 0).holders, live.holders);
        // nothing sent in the window: the give-back removes the holder at once
        assert!(
            live.cooling("a", Vec::new(), 1_000, 2_000)
                .holders
                .is_empty()
        );
    }
}
