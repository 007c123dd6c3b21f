//! Building a client: its configuration is checked, its key refresher and budget are shared by
//! its clones.

use super::*;
use crate::vendor_key::key_refresh;
use std::time::Duration;

#[tokio::test]
async fn key_refresh_boxes_a_closure() {
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let refresh = key_refresh(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::Relaxed);
            VendorKey::parse("k2").map_err(|_| "bad".to_owned())
        }
    });
    assert_eq!(refresh().await.unwrap().expose_secret(), "k2");
    assert_eq!(refresh().await.unwrap().expose_secret(), "k2");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    let client = GradientClient::new(
        GradientConfig::new("http://127.0.0.1:1"),
        VendorKey::parse("k1").unwrap(),
    )
    .unwrap()
    .with_key_refresh(refresh);
    assert!(format!("{client:?}").contains("key_refresh: true"));
    assert_eq!(client.key_refreshes(), 0);
    assert_eq!(
        client.config().key_refresh_interval,
        Duration::from_secs(10)
    );
}

#[test]
fn config_is_checked() {
    let key = VendorKey::parse("v").unwrap();
    for bad in ["", "ftp://x", "not a url", "http://h/?q=1"] {
        let err = GradientClient::new(GradientConfig::new(bad), key.clone()).unwrap_err();
        assert!(matches!(err, GradientError::Config { .. }), "{bad}");
    }
    let mut c = GradientConfig::new("http://127.0.0.1:1/");
    c.max_rps = 0;
    assert!(GradientClient::new(c, key.clone()).is_err());
    let client = GradientClient::new(GradientConfig::new("http://127.0.0.1:1/"), key).unwrap();
    assert_eq!(client.inner.base, "http://127.0.0.1:1");
    assert!(!format!("{client:?}").contains("VendorKey"));
}

#[test]
fn clones_share_one_budget_and_same_rate_shares_across_clients() {
    let key = VendorKey::parse("v").unwrap();
    let mut c = GradientConfig::new("http://127.0.0.1:1");
    c.max_rps = 7;
    let a = GradientClient::new(c.clone(), key.clone()).unwrap();
    let b = GradientClient::new(c, key).unwrap();
    assert!(Arc::ptr_eq(&a.budget(), &a.clone().budget()));
    assert!(Arc::ptr_eq(&a.budget(), &b.budget()));
    let own = Budget::local(7);
    let c = b.clone().with_budget(own.clone());
    assert!(Arc::ptr_eq(&c.budget(), &own));
    assert!(
        Arc::ptr_eq(&b.budget(), &own),
        "clones share the budget they were given"
    );
    assert!(!Arc::ptr_eq(&a.budget(), &own));
}
