//! Serde types of the simulator's admin API (`/_sim/...`): what tests deserialize.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything the simulator holds (`GET /_sim/state`, [`crate::SimHandle::state`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimState {
    pub vendor: VendorState,
    pub organizations: Vec<OrgState>,
    pub max_rps: u32,
    pub faults: Faults,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorState {
    pub id: String,
    pub name: String,
    pub services: Vec<Service>,
}

/// A vendor-wide service (a "sku" in Gradient's vendor record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub subcategory: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_article: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_contact: Option<String>,
}

/// An account as the simulator holds it; `description: None` is shown as `""` on vendor routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimAccount {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

/// An account id the simulator refuses (`POST /_sim/organizations/{orgId}/refuse-account`): a
/// bulk create containing it and a PATCH of it answer 400 with `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedAccount {
    pub account_id: String,
    pub message: String,
}

/// One alert accepted by `POST /api/vendor-api/alerting/{accountId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub account_id: String,
    pub title: String,
    pub description: String,
    pub alert_id: String,
    pub priority: u8,
    pub status: u8,
    pub due_date_time: Option<String>,
    pub service_id: Option<String>,
    /// What the simulator answered.
    pub message_id: String,
    #[serde(rename = "correlationID")]
    pub correlation_id: String,
    /// RFC 3339 wall-clock time the alert arrived.
    pub at: String,
}

/// An (account, service) pair, as mapped by the MSP in Synthesize.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pair {
    pub account_id: String,
    pub service_id: String,
}

impl Pair {
    pub fn new(account_id: impl Into<String>, service_id: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            service_id: service_id.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountEntry {
    pub unit_count: u64,
    pub no_build: bool,
    /// RFC 3339 wall-clock time the count arrived.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountRecord {
    pub account_id: String,
    pub service_id: String,
    /// The latest unit count received for the pair.
    pub unit_count: u64,
    pub history: Vec<CountEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgState {
    pub organization_id: String,
    pub name: String,
    pub integration_id: String,
    pub status: String,
    pub last_synced_at: Option<String>,
    /// The current partner key (this is a simulator: tests need it).
    pub partner_key: String,
    pub accounts: Vec<SimAccount>,
    pub mappings: Vec<Pair>,
    pub counts: Vec<CountRecord>,
    /// Every count POST answered 404 (unknown/unmapped pair), in order.
    pub not_found_counts: Vec<Pair>,
    /// Account ids the simulator refuses (400), by id.
    #[serde(default)]
    pub refused_accounts: Vec<RefusedAccount>,
    /// Alerts accepted by the alerting route, in order.
    #[serde(default)]
    pub alerts: Vec<AlertRecord>,
}

impl OrgState {
    pub fn count(&self, account_id: &str, service_id: &str) -> Option<&CountRecord> {
        self.counts
            .iter()
            .find(|c| c.account_id == account_id && c.service_id == service_id)
    }
}

/// Response of `POST /_sim/organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrg {
    pub organization_id: String,
    pub partner_key: String,
}

/// Injected faults on vendor routes (`PUT /_sim/faults`). All default to "off".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Fraction (0..=1) of vendor calls answered 429.
    pub rate429: f64,
    /// Fraction (0..=1) of vendor calls answered 503.
    pub rate5xx: f64,
    /// Fixed latency added to every vendor call.
    pub latency_ms: u64,
    /// Fraction (0..=1) of vendor calls delayed by a further `slow_ms`.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// After this many further successful (2xx) vendor calls, every vendor call answers 401.
    pub unauthorized_after: Option<u64>,
    /// `Retry-After` seconds sent with injected 429s (none when `None`).
    pub retry_after_secs: Option<u64>,
    /// Answer every vendor call with this status (e.g. 403 "anomaly detected") — simulator extra.
    pub force_status: Option<u16>,
    /// Fraction (0..=1) of vendor calls answered 200 with a truncated JSON body — simulator extra.
    pub malformed_rate: f64,
    /// Extra latency only on `POST /api/vendor-api/service/{id}/count` (added to `latency_ms`).
    pub count_latency_ms: u64,
    /// Every error answer of a vendor route (injected or real, any status ≥ 400) carries a
    /// `message` padded to at least this many bytes — to test the client's size caps.
    pub error_body_bytes: Option<usize>,
    /// Answer only `POST /api/vendor-api/alerting/{accountId}` with this status (after auth).
    pub alert_status: Option<u16>,
    /// Answer vendor calls with an error whose body echoes the received `GRADIENT-TOKEN` value,
    /// as a careless Gradient or proxy might — to test that the client never shows a piece of a
    /// secret. See [`EchoToken`] — simulator extra.
    pub echo_token: Option<EchoToken>,
    /// What #11 (`GET /api/vendor-api/alerting/debug/{messageId}`) says of every alert from now
    /// on: `{"status": "pending" | "failed" | "success", "errors": [...]}`; `success` with a
    /// ticket id when absent.
    pub alert_ticket: Option<AlertTicket>,
}

/// The `alertTicket` fault: what #11 answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlertTicket {
    pub status: String,
    pub errors: Vec<String>,
}

/// The `echoToken` fault: `PUT /_sim/faults` `{"echoToken": {"shape": "large", "status": 400,
/// "pathPrefix": "/api/vendor-api/service/", "times": 3}}` (every field optional).
///
/// A matching vendor call is answered `status` with a body that carries the `GRADIENT-TOKEN`
/// value it sent (empty when it sent none) in `shape`. It is decided before authentication and
/// before every other fault (only the simulator's own rate limit comes first, and an echo is
/// never padded by `errorBodyBytes`), so it answers even a wrong token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EchoToken {
    /// How the body carries the value (default `json`).
    pub shape: EchoShape,
    /// Status of the answer, an error: 400..=599 (default 400).
    pub status: u16,
    /// Only vendor calls whose path (without the query) starts with this, e.g.
    /// `/api/vendor-api/service/`; every vendor call when absent.
    pub path_prefix: Option<String>,
    /// Answer only this many more matching calls (it counts down; `0` is spent); every matching
    /// call when absent.
    pub times: Option<u64>,
}

impl Default for EchoToken {
    fn default() -> Self {
        Self {
            shape: EchoShape::Json,
            status: 400,
            path_prefix: None,
            times: None,
        }
    }
}

/// Where the echoed `GRADIENT-TOKEN` value sits in the body of an [`EchoToken`] answer. The value
/// is JSON-escaped inside JSON shapes (a header value has nothing to escape in practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EchoShape {
    /// `{"statusCode": N, "message": "bad header <value>"}` (application/json).
    #[default]
    Json,
    /// `GRADIENT-TOKEN: <value>` (text/plain).
    Text,
    /// `{"statusCode":N,"message":"bad header <value>, expected base64(vendorKey:partnerKey` —
    /// JSON cut in the middle of the string that holds the whole value (application/json).
    BrokenJson,
    /// A JSON error of more than [`ECHO_LARGE_CUT`] bytes (ASCII) whose `message` holds the value
    /// twice: once from byte [`ECHO_LARGE_AT`] of the body, and once straddling byte
    /// [`ECHO_LARGE_CUT`] (its middle there), padded with `.` between and after.
    Large,
}

/// Body offset of the first copy of the value in an [`EchoShape::Large`] answer.
pub const ECHO_LARGE_AT: usize = 180;
/// Body offset that the second copy of the value straddles in an [`EchoShape::Large`] answer
/// (16 KiB, the most of an error body the client reads).
pub const ECHO_LARGE_CUT: usize = 16 * 1024;

/// One vendor call as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Microseconds since the simulator started (monotonic clock), at arrival.
    pub at_us: u64,
    /// Milliseconds since the simulator started (monotonic clock), at arrival.
    pub at_ms: u64,
    pub method: String,
    /// Path and query as received.
    pub path: String,
    pub organization_id: Option<String>,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    pub total: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// Largest number of vendor requests (any status) that arrived within one second.
    pub max_in_one_second_total: u64,
    /// Same, counting only requests not answered 429.
    pub max_in_one_second_accepted: u64,
}

/// `GET /_sim/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestsReport {
    pub requests: Vec<RequestRecord>,
    pub stats: RequestStats,
}

/// `POST /_sim/organizations/{orgId}/mappings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingsRequest {
    pub pairs: Vec<Pair>,
    #[serde(default = "yes")]
    pub mapped: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_sim/organizations/{orgId}/mappings/all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MapAllRequest {
    pub except: Vec<Pair>,
}

/// `POST /_sim/organizations/{orgId}/refuse-account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefuseAccountRequest {
    pub account_id: String,
    pub message: String,
    #[serde(default = "yes")]
    pub refused: bool,
}

/// `PUT /_sim/vendor-key` (and the answer of `GET /_sim/vendor-key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorKeyRequest {
    pub vendor_key: String,
}

/// `PUT /_sim/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigRequest {
    pub max_rps: u32,
}

/// Largest number of timestamps (µs, sorted ascending) that fall within any 1-second window.
pub(crate) fn max_in_window(sorted_us: &[u64]) -> u64 {
    let mut best = 0usize;
    let mut lo = 0usize;
    for hi in 0..sorted_us.len() {
        while sorted_us[hi] - sorted_us[lo] >= 1_000_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as u64
}

pub(crate) fn stats(requests: &[RequestRecord]) -> RequestStats {
    let mut s = RequestStats {
        total: requests.len() as u64,
        ..Default::default()
    };
    for r in requests {
        *s.by_status.entry(r.status).or_default() += 1;
    }
    let mut all: Vec<u64> = requests.iter().map(|r| r.at_us).collect();
    all.sort_unstable();
    let mut ok: Vec<u64> = requests
        .iter()
        .filter(|r| r.status != 429)
        .map(|r| r.at_us)
        .collect();
    ok.sort_unstable();
    s.max_in_one_second_total = max_in_window(&all);
    s.max_in_one_second_accepted = max_in_window(&ok);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts() {
        assert_eq!(max_in_window(&[]), 0);
        assert_eq!(max_in_window(&[5]), 1);
        assert_eq!(max_in_window(&[0, 999_999, 1_000_000]), 2);
        assert_eq!(max_in_window(&[0, 10, 20, 2_000_000, 2_000_001]), 3);
    }
}
