use super::*;
use std::time::Instant;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn seeds() {
    if let Some(seed) = env("SIM_SEED") {
        let report = run_seed(seed, Plant::None);
        println!("{}", report.explain());
        assert!(!report.failed(), "seed {seed} failed");
        return;
    }
    let n = env("SIM_SEEDS").unwrap_or(SEEDS);
    let from = env("SIM_FROM").unwrap_or(0);
    let started = Instant::now();
    let reports = run_seeds(from, from + n, Plant::None);
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.stats {
            *totals.entry(k).or_default() += v;
        }
    }
    println!("{n} seeds in {:.1?}: {totals:#?}", started.elapsed());
    if let Some(bad) = reports.iter().find(|r| r.failed()) {
        let failing: Vec<String> = reports
            .iter()
            .filter(|r| r.failed())
            .map(|r| {
                format!(
                    "  seed {}: {:?} {:?}",
                    r.seed,
                    r.violations.first(),
                    r.known
                )
            })
            .collect();
        panic!(
            "{} seeds failed:\n{}\n{}",
            failing.len(),
            failing.join("\n"),
            bad.explain()
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 17, 101] {
        let (a, b) = (run_seed(seed, Plant::None), run_seed(seed, Plant::None));
        assert_eq!(a.log, b.log, "seed {seed} replayed differently");
        assert!(a.log.len() > 30, "seed {seed} did little: {:?}", a.log);
    }
}

/// The checks can find a bug: a PSA that acknowledges a count and keeps nothing is caught.
#[test]
fn a_dropped_count_is_caught() {
    let reports = run_seeds(0, 40, Plant::DropCounts);
    let caught = reports.iter().filter(|r| r.failed()).count();
    assert!(caught > 0, "no seed caught the PSA dropping counts");
    let oracle = reports
        .iter()
        .flat_map(|r| &r.violations)
        .any(|v| v.starts_with("oracle"));
    assert!(oracle, "the oracle did not see the dropped counts");
}

/// ... and a count of an ended job written to the PSA again later.
#[test]
fn a_replayed_stale_count_is_caught() {
    let reports = run_seeds(0, 200, Plant::StaleReplay);
    let caught: Vec<&Report> = reports.iter().filter(|r| r.failed()).collect();
    assert!(!caught.is_empty(), "no seed caught the replayed count");
    assert!(
        caught
            .iter()
            .flat_map(|r| &r.violations)
            .any(|v| v.contains("after it had ended")),
        "{}",
        caught[0].explain()
    );
}

/// ... and a reading the store loses after its run finished (the run's tallies no longer add up
/// to its readings).
#[test]
fn a_lost_reading_is_caught() {
    let reports = run_seeds(0, 20, Plant::LoseReading);
    let caught: Vec<&Report> = reports.iter().filter(|r| r.failed()).collect();
    assert!(!caught.is_empty(), "no seed caught the lost reading");
    let first = &caught[0].violations[0];
    assert!(first.contains("≠ its readings"), "{}", caught[0].explain());
}

/// The seeds that showed the engine bugs fixed in issue 19 (two workers on one run, a run held
/// after posting, a queued run never sent, an old incarnation's count over a newer one) pass,
/// with no known bug either. (The fixes changed what each seed does, so these are smoke, not
/// replays: the bugs' own regression tests are `usecase/tests/job_fence.rs`.)
#[test]
fn the_seeds_that_found_bugs_pass() {
    for seed in [
        0, 102, 108, 158, 170, 180, 184, 211, 437, 986, 1667, 3061, 3871, 13764,
    ] {
        let report = run_seed(seed, Plant::None);
        assert!(
            report.violations.is_empty() && report.known.is_empty(),
            "{}",
            report.explain()
        );
    }
}
