//! The PSA connector of a channel workspace and its status machine.

use crate::ids::{ConnectorType, RunId, UserId, WorkspaceId};
use crate::sync::{RunCounts, RunStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorStatus {
    Connected,
    Disconnected,
    Error,
}

impl ConnectorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
        }
    }
}

/// Why a connector is not plainly connected (`statusReason`).
pub mod reason {
    /// Gradient answered 401: the MSP regenerated or revoked the token. An admin must paste the new one.
    pub const TOKEN_REJECTED: &str = "token_rejected";
    /// Gradient answered 403 ("anomaly detected"): runs stop until an admin re-tokens.
    pub const GRADIENT_FORBIDDEN: &str = "gradient_forbidden";
    /// The token is stored but the stored secret is missing (a crash between the two writes).
    pub const TOKEN_MISSING: &str = "token_missing";
    /// Connected, but setting up accounts/services in Gradient did not finish; the next sync does it.
    pub const SETUP_INCOMPLETE: &str = "setup_incomplete";
}

/// What the MSP's admin can change about how the connector reports (contract `settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorSettings {
    /// Hold a run whose total drops by more than this percentage (1–100); `None` = guard off.
    pub guard_drop_percent: Option<u8>,
    /// Raise a ticket in the MSP's PSA (through Gradient) for accounts with unmapped services.
    pub psa_alerts: bool,
    /// Who is told about finished runs, and about which (contract `settings.notify`; a
    /// connector stored before it existed has no addresses and `always`).
    #[serde(default)]
    pub notify: NotifySettings,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        Self {
            guard_drop_percent: Some(50),
            psa_alerts: false,
            notify: NotifySettings::default(),
        }
    }
}

/// Which finished runs are emailed (contract *Notifications*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// Every scheduled and release run, and any run that needs attention.
    #[default]
    Always,
    /// Only runs that need attention.
    Problems,
    Never,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 3] = [Self::Always, Self::Problems, Self::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Problems => "problems",
            Self::Never => "never",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }
}

/// At most this many addresses are notified.
pub const MAX_NOTIFY_EMAILS: usize = 10;

/// The connector's notification settings: the addresses (at most [`MAX_NOTIFY_EMAILS`], each a
/// plain address: no display name, a domain with a dot, no address literal) and which runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySettings {
    pub emails: Vec<String>,
    pub on: NotifyOn,
}

/// Why a notify setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notify.emails may hold at most 10 addresses")]
    TooMany,
    #[error("notify.emails holds an address that is not a plain email address")]
    BadAddress,
}

/// Whether `raw` is a plain email address a notification may go to.
pub fn is_notify_address(raw: &str) -> bool {
    use email_address::{EmailAddress, Options};
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    raw.len() <= 254 && EmailAddress::parse_with_options(raw, options).is_ok()
}

impl NotifySettings {
    /// Checked settings: every address plain, at most [`MAX_NOTIFY_EMAILS`], duplicates dropped
    /// (case-insensitively), in the order given.
    pub fn new(emails: Vec<String>, on: NotifyOn) -> Result<Self, NotifyError> {
        if emails.len() > MAX_NOTIFY_EMAILS {
            return Err(NotifyError::TooMany);
        }
        let mut kept: Vec<String> = Vec::with_capacity(emails.len());
        for e in emails {
            if !is_notify_address(&e) {
                return Err(NotifyError::BadAddress);
            }
            if !kept.iter().any(|k| k.eq_ignore_ascii_case(&e)) {
                kept.push(e);
            }
        }
        Ok(Self { emails: kept, on })
    }

    /// A new connector's: the creator's address when the caller has a usable one.
    pub fn for_creator(email: Option<&str>) -> Self {
        Self {
            emails: email
                .filter(|e| is_notify_address(e))
                .map(|e| vec![e.to_owned()])
                .unwrap_or_default(),
            on: NotifyOn::Always,
        }
    }
}

/// A change of settings: only what it names changes (`Some(None)` turns the guard off; `notify`
/// as a whole object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    pub guard_drop_percent: Option<Option<u8>>,
    pub psa_alerts: Option<bool>,
    pub notify: Option<NotifySettings>,
}

impl ConnectorSettings {
    /// Applies `patch`; answers what changed, as (setting, new value) for the audit trail.
    pub fn apply(&mut self, patch: &SettingsPatch) -> Vec<(&'static str, String)> {
        let mut changed = Vec::new();
        if let Some(g) = patch.guard_drop_percent
            && g != self.guard_drop_percent
        {
            self.guard_drop_percent = g;
            changed.push((
                "guardDropPercent",
                g.map_or("off".into(), |p| p.to_string()),
            ));
        }
        if let Some(a) = patch.psa_alerts
            && a != self.psa_alerts
        {
            self.psa_alerts = a;
            changed.push(("psaAlerts", a.to_string()));
        }
        if let Some(n) = &patch.notify
            && *n != self.notify
        {
            self.notify = n.clone();
            // The audit says what changed, not the addresses themselves.
            changed.push((
                "notify",
                format!("on {}, {} address(es)", n.on.as_str(), n.emails.len()),
            ));
        }
        changed
    }
}

/// The outcome of the connector's latest finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSync {
    pub run_id: RunId,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub counts: RunCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    pub workspace_id: WorkspaceId,
    #[serde(rename = "type")]
    pub kind: ConnectorType,
    pub status: ConnectorStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub token_hint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub created_by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<LastSync>,
    /// Bumped by every re-token; a run that saw an older token must not disconnect a newer one.
    pub token_version: u64,
    /// The next run sends every reading (after a connect or a re-token).
    pub full_resend_due: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_full_resend_at: Option<OffsetDateTime>,
    /// The daily schedule deferred the full resend due today (the day's Gradient budget was
    /// short): no run before this carries it; the first one after does, first in line
    /// (`capacity`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub full_resend_deferred_until: Option<OffsetDateTime>,
    #[serde(default)]
    pub settings: ConnectorSettings,
    /// Runs in a row that ended `failed` or `partially_failed` (held, cancelled and token-rejected
    /// runs neither count nor reset; a `succeeded` run resets).
    #[serde(default)]
    pub failed_streak: u32,
    /// This project showed the MSP, in the PSA, that its syncs keep failing (Gradient: `error`).
    #[serde(default)]
    pub psa_failing: bool,
    /// The PSA organization this connector is bound to (see `OrganizationBindings`); `None` for
    /// a connector created before bindings, which gets its binding on its next sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Set when a delete began: the connector is gone for every caller, and whoever comes next
    /// (a retried DELETE, a connect, the worker on the next scheduled firing) finishes the
    /// deletion (the PSA told, the secret, the binding, the item).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub deleting_since: Option<OffsetDateTime>,
    /// This incarnation of the connector: a connector deleted and created again is a new one,
    /// and nothing a run of an older incarnation does touches it.
    pub incarnation: String,
    /// Optimistic-concurrency version of the stored item.
    pub version: u64,
}

/// The key space of one connector incarnation: its runs, readings, pair states and slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorRef {
    pub workspace: WorkspaceId,
    pub kind: ConnectorType,
    pub incarnation: String,
}

impl ConnectorRef {
    /// `<type>#<incarnation>`: the part of every per-connector key after the workspace.
    pub fn key(&self) -> String {
        format!("{}#{}", self.kind.as_str(), self.incarnation)
    }

    /// The token-cache key of this incarnation at `token_version`.
    pub fn token_ref(&self, token_version: u64) -> String {
        format!("{}#{token_version}", self.key())
    }
}

impl Connector {
    /// A new, connected connector of type `kind` (a fresh incarnation, everything sent next run).
    pub fn new(
        kind: ConnectorType,
        workspace_id: WorkspaceId,
        created_by: UserId,
        token_hint: String,
        settings: ConnectorSettings,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            workspace_id,
            kind,
            status: ConnectorStatus::Connected,
            status_reason: None,
            token_hint,
            created_at: now,
            updated_at: now,
            created_by,
            last_sync: None,
            token_version: 1,
            full_resend_due: true,
            last_full_resend_at: None,
            full_resend_deferred_until: None,
            settings,
            failed_streak: 0,
            psa_failing: false,
            organization_id: None,
            deleting_since: None,
            incarnation: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            version: 0,
        }
    }

    pub fn reference(&self) -> ConnectorRef {
        ConnectorRef {
            workspace: self.workspace_id.clone(),
            kind: self.kind,
            incarnation: self.incarnation.clone(),
        }
    }

    /// Whether `run` may still act for this connector: same incarnation and token version, and
    /// no delete has begun.
    pub fn owns(&self, incarnation: &str, token_version: u64) -> bool {
        self.incarnation == incarnation
            && self.token_version == token_version
            && self.deleting_since.is_none()
    }

    /// Whether a delete has begun (the connector is gone for every caller).
    pub fn is_deleting(&self) -> bool {
        self.deleting_since.is_some()
    }

    /// A new token was verified and stored: connected again. Everything is resent next run,
    /// unless a full resend went out within the last day: re-tokening (even with the same
    /// organization's new key) cannot force more than one full resend a day.
    pub fn retokened(&mut self, token_hint: String, now: OffsetDateTime) {
        self.status = ConnectorStatus::Connected;
        self.status_reason = None;
        self.token_hint = token_hint;
        self.token_version += 1;
        let recent = self
            .last_full_resend_at
            .is_some_and(|at| now - at < time::Duration::days(1));
        if !recent {
            self.full_resend_due = true;
            self.full_resend_deferred_until = None;
        }
        self.updated_at = now;
    }

    pub fn set_status(
        &mut self,
        status: ConnectorStatus,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) {
        self.status = status;
        self.status_reason = reason.map(str::to_owned);
        self.updated_at = now;
    }

    /// A run of this connector finished with `last` (`full`: it carried a full resend). A full
    /// resend is done only when every reading of the run that carried it went out, i.e. the run
    /// succeeded; a successful run also ends `setup_incomplete` (it did the set-up).
    pub fn finished_run(&mut self, last: LastSync, full: bool) {
        match last.status {
            RunStatus::Failed | RunStatus::PartiallyFailed => {
                self.failed_streak = self.failed_streak.saturating_add(1)
            }
            RunStatus::Succeeded => self.failed_streak = 0,
            _ => {}
        }
        if last.status == RunStatus::Succeeded {
            if full {
                self.full_resend_due = false;
                self.last_full_resend_at = Some(last.finished_at);
                self.full_resend_deferred_until = None;
            }
            if self.status_reason.as_deref() == Some(reason::SETUP_INCOMPLETE) {
                self.status_reason = None;
            }
        }
        self.last_sync = Some(last);
    }

    /// Runs are allowed only for a connected connector that is not being deleted.
    pub fn may_sync(&self) -> bool {
        self.status == ConnectorStatus::Connected && self.deleting_since.is_none()
    }
}
