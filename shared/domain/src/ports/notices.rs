//! What the sync-complete email needs besides the run's records: a mail service, and a record of
//! which runs were emailed (at most one email per run, whatever the event deliveries).

use super::StoreError;
use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::notify::Email;
use async_trait::async_trait;
use std::time::Duration;

/// A mail service (Amazon SES). The sender address is the adapter's (`NOTIFY_FROM`).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `email` to every address of `to` (one message).
    async fn send(&self, to: &[String], email: &Email) -> Result<(), MailError>;
}

/// Why an email was not sent. Either way the notifier releases its claim and fails, so the
/// event's retry policy tries again.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail service refused this message (an unverified sender, a rejected address, a
    /// paused account): retrying helps only once someone fixes that.
    #[error("the mail service refused the email: {0}")]
    Refused(String),
    /// The mail service could not be reached or failed.
    #[error("the mail service is unavailable: {0}")]
    Unavailable(String),
}

/// The state of a run's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeClaim {
    /// This caller may send it now (until its lease ends).
    Claimed,
    /// Another delivery is sending it (its lease has not ended).
    Sending,
    /// It was sent.
    Sent,
}

/// Which runs were emailed. A claim is a lease: a notifier that dies while sending leaves a claim
/// that the next delivery may take over once `lease` has passed.
#[async_trait]
pub trait NoticeLog: Send + Sync {
    async fn claim_notice(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
        lease: Duration,
    ) -> Result<NoticeClaim, StoreError>;
    /// The email of `run` was sent (by `owner`): no delivery sends it again.
    async fn notice_sent(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError>;
    /// `owner` could not send it: the next delivery may.
    async fn release_notice(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError>;
}
