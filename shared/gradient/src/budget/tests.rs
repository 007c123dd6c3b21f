//! Unit tests of the pacer and the lease (over an in-memory lease record).

use super::*;
use async_trait::async_trait;
use psa_domain::budget::LeaseRecord;

/// A lease record in memory (unit tests of the pacing logic only; the DynamoDB store has its
/// own integration test).
#[derive(Default)]
struct MemLeases(Mutex<LeaseRecord>);

#[async_trait]
impl BudgetLeases for MemLeases {
    async fn read(&self) -> Result<LeaseRecord, LeaseError> {
        Ok(lock(&self.0).clone())
    }
    async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
        let mut cur = lock(&self.0);
        if cur.version != record.version {
            return Err(LeaseError::Conflict);
        }
        *cur = record.clone();
        cur.version += 1;
        Ok(())
    }
}

#[test]
fn a_429_cuts_the_rate_once_per_signal_and_success_restores_it() {
    let b = Budget::local(80);
    assert!((b.rate() - 80.0).abs() < 1e-9);
    b.on_response(429);
    b.on_response(429); // same congestion signal
    assert!((b.rate() - 60.0).abs() < 1e-9, "{}", b.rate());
    assert_eq!(b.throttled(), 2);
    {
        let mut p = lock(&b.pace);
        p.last_raise -= Duration::from_secs(1);
    }
    b.on_response(200);
    assert!((b.rate() - 61.6).abs() < 1e-6, "{}", b.rate());
    for _ in 0..100 {
        {
            let mut p = lock(&b.pace);
            p.last_raise -= Duration::from_secs(1);
        }
        b.on_response(200);
    }
    assert!((b.rate() - 80.0).abs() < 1e-9);
}

#[tokio::test]
async fn a_rate_cut_below_one_request_a_window_never_stalls() {
    let b = Budget::local(2);
    for _ in 0..20 {
        lock(&b.pace).last_cut = None;
        b.on_response(429);
    }
    assert!(b.rate() < 1.0, "{}", b.rate());
    tokio::time::timeout(Duration::from_secs(3), b.acquire())
        .await
        .expect("one request a window still goes");
}

#[tokio::test]
async fn pacing_spaces_requests() {
    let b = Budget::local(100);
    let t = Instant::now();
    for _ in 0..21 {
        b.acquire().await;
    }
    // 20 gaps of 10.2 ms
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(200), "{e:?}");
}

/// Every 21st request is held up 80 ms between being let through and going out (a busy
/// core). Counted when let through, the 21st after it goes 1.02 s after it, on time, while
/// it went out 80 ms late: 21 within 1.02 s. Counted when out: never.
#[tokio::test]
async fn the_window_bounds_the_instants_requests_go_out() {
    let b = Budget::local(20);
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..42 {
        let mut slot = b.acquire().await;
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            if i % 21 == 0 {
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
            lock(&out).push(Instant::now());
            slot.sent();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut out = lock(&out).clone();
    out.sort();
    for (i, t) in out.iter().enumerate() {
        let n = out[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < WINDOW)
            .count();
        assert!(
            n <= 20,
            "{n} requests went out within {WINDOW:?} of request {i}"
        );
    }
}

#[tokio::test]
async fn two_leased_budgets_share_and_a_release_gives_everything_back() {
    let store: Arc<dyn BudgetLeases> = Arc::new(MemLeases::default());
    let timing = LeaseTiming {
        ttl: Duration::from_millis(600),
        renew_every: Duration::from_millis(200),
        watch_every: Duration::from_millis(50),
        skew: Duration::from_millis(100),
    };
    let a = Budget::leased(80, store.clone(), "a", 20, timing);
    let b = Budget::leased(80, store.clone(), "b", 20, timing);
    a.acquire().await;
    assert_eq!(a.shares(), Some(20));
    assert!((a.rate() - 80.0).abs() < 1e-9);
    // b waits until a gives back half at a renewal
    let keep_a_busy = {
        let a = a.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                a.acquire().await;
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(3), b.acquire())
        .await
        .expect("b gets a share");
    let (sa, sb) = (a.shares().unwrap(), b.shares().unwrap());
    assert!(sa + sb <= 20, "{sa} + {sb}");
    assert_eq!(sb, 10, "b took its fair part once a gave it back");
    // b, idle for a renewal period, gives its shares back by itself
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(b.shares(), Some(0));
    keep_a_busy.abort();
    let _ = keep_a_busy.await;
    let released = Instant::now();
    let last_sent = lock(&a.pace).sent.back().copied().expect("a sent");
    a.release().await;
    assert!(
        last_sent.elapsed() < WINDOW,
        "the release waited for the window to pass"
    );
    let record = store.read().await.unwrap();
    let given = record.holders.iter().find(|h| h.owner == "a").unwrap();
    assert!(given.cooling.is_some(), "{given:?}");
    // A look of the renewer that was waiting its turn during the release takes nothing.
    a.renew(Renewal::Watch).await;
    assert_eq!(a.shares(), Some(0));
    let record = store.read().await.unwrap();
    let given = record.holders.iter().find(|h| h.owner == "a").unwrap();
    assert!(given.cooling.is_some(), "a took a lease again: {given:?}");
    assert_eq!(a.shares(), Some(0));
    assert_eq!(a.rate(), 0.0);
    // a's shares still count while its last requests are in the window: b, busy again,
    // gets at once only what those requests leave free, and the rest as they leave.
    let keep_b_busy = {
        let b = b.clone();
        tokio::spawn(async move {
            loop {
                b.acquire().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let in_window = lock(&a.pace)
        .sent
        .iter()
        .filter(|t| t.elapsed() < WINDOW)
        .count() as u32;
    assert!(in_window > 0);
    assert!(
        b.shares().unwrap() <= 20 - in_window.div_ceil(4),
        "b holds {:?} while {in_window} of a's requests are in the window",
        b.shares()
    );
    while b.shares() != Some(20) {
        assert!(
            released.elapsed() < Duration::from_secs(2),
            "{:?}",
            b.shares()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        last_sent.elapsed() >= WINDOW,
        "a's shares were taken {:?} after its last request, before its window ended",
        last_sent.elapsed()
    );
    keep_b_busy.abort();
}

/// A lease store whose writes fail from a moment on (DynamoDB unreachable).
struct Breaks {
    inner: MemLeases,
    broken: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl BudgetLeases for Breaks {
    async fn read(&self) -> Result<LeaseRecord, LeaseError> {
        self.inner.read().await
    }
    async fn write(&self, record: &LeaseRecord) -> Result<(), LeaseError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(LeaseError::Store("unreachable".into()));
        }
        self.inner.write(record).await
    }
}

#[tokio::test]
async fn a_give_back_that_cannot_be_written_still_holds_nothing() {
    let store = Arc::new(Breaks {
        inner: MemLeases::default(),
        broken: false.into(),
    });
    let timing = LeaseTiming::default();
    let a = Budget::leased(80, store.clone(), "a", 20, timing);
    a.acquire().await;
    assert_eq!(a.shares(), Some(20));
    store.broken.store(true, Ordering::SeqCst);
    a.release().await;
    assert_eq!(a.shares(), Some(0));
    assert_eq!(a.rate(), 0.0);
    // the record still names "a" as a live holder: the others wait for its expiry
    let record = store.read().await.unwrap();
    assert_eq!(record.holders[0].shares, 20);
    assert!(record.holders[0].cooling.is_none());
}
