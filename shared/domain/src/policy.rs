//! The sync's knobs and their defaults — the one place a default is written (the wiring reads
//! the optional environment variables over them).

use std::time::Duration;

/// Knobs of the sync, from optional environment variables (see `Settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Every reading is resent when the last full resend is older than this (default 7 days).
    pub full_resend_every: Duration,
    /// Counts in flight at once (the shared rate budget still bounds requests per second).
    pub in_flight: usize,
    /// Outcomes are checkpointed (readings and pair states saved, the lease renewed) after this
    /// many results or `checkpoint_interval`, whichever comes first, while posting goes on.
    pub checkpoint_every: usize,
    pub checkpoint_interval: Duration,
    /// Worker lease duration; renewed at every checkpoint.
    pub lease_ttl: Duration,
    /// How long a queued run may hold the connector's slot without a worker.
    pub slot_ttl: Duration,
    /// Minimum time between two on-demand requests of one connector.
    pub cooldown: Duration,
    /// A job stops and enqueues its continuation when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Follow-up jobs a run may enqueue; what is left after the last one ends `failed`.
    pub max_continuations: u32,
    /// The connector is re-read (deleted? re-tokened?) after every this many counts.
    pub cancel_check_every: usize,
    /// This many different MSPs (a channel workspace and its subchannels are one) rejected (401,
    /// or 403) within `key_fault_window` with no accepted call in between is a fault of the vendor
    /// key, not of the MSPs' tokens (`SYNC_KEY_FAULT_CONNECTORS`, named before MSPs were told
    /// apart).
    pub key_fault_connectors: usize,
    pub key_fault_window: Duration,
    /// The billing guard's threshold for new connectors (`SYNC_GUARD_DROP_PERCENT`; `None` = off).
    pub guard_drop_percent: Option<u8>,
    /// The guard judges no run whose `before` is below this (`SYNC_GUARD_MIN_UNITS`).
    pub guard_min_units: u64,
    /// At most one PSA alert per account and kind within this (`PSA_ALERT_INTERVAL_DAYS`).
    pub alert_interval: Duration,
    /// After this many runs in a row end `failed` or `partially_failed`, the MSP is shown in the
    /// PSA that the integration is failing (`SYNC_ERROR_AFTER`).
    pub error_after: u32,
    /// Token verifications (each a PSA call) a workspace may make per `verify_window`.
    pub verify_attempts: u64,
    pub verify_window: Duration,
    /// Settings changes (each an audit entry kept 401 days) a workspace may make per
    /// `settings_window`.
    pub settings_changes: u64,
    pub settings_window: Duration,
    /// The PSA check of a token on the API path must answer within this, or the request is a 503
    /// and nothing is written.
    pub verify_deadline: Duration,
    /// Everything an API request does with the PSA ends within this (API Gateway gives up at
    /// 29 s): set-up that would take longer is left to the next sync (`setup_incomplete`).
    pub api_deadline: Duration,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            full_resend_every: Duration::from_secs(7 * 24 * 3600),
            in_flight: 8,
            checkpoint_every: 200,
            checkpoint_interval: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(90),
            slot_ttl: Duration::from_secs(6 * 3600),
            cooldown: Duration::from_secs(300),
            deadline_margin: Duration::from_secs(30),
            max_continuations: 10,
            cancel_check_every: 8,
            key_fault_connectors: 3,
            key_fault_window: Duration::from_secs(15 * 60),
            guard_drop_percent: Some(50),
            guard_min_units: 20,
            alert_interval: Duration::from_secs(7 * 24 * 3600),
            error_after: 3,
            verify_attempts: 10,
            verify_window: Duration::from_secs(600),
            settings_changes: 30,
            settings_window: Duration::from_secs(3600),
            verify_deadline: Duration::from_secs(12),
            api_deadline: Duration::from_secs(25),
        }
    }
}
