//! Alerts, which become tickets in the MSP's PSA, and the look at whether one did (#11).

use super::codec::{decode_enveloped, segment, to_body};
use crate::client::GradientClient;
use crate::error::GradientError;
use crate::transport::Retry;
use crate::types::{AlertDebug, AlertReceipt, NewAlert};
use psa_domain::ApiToken;
use reqwest::Method;

impl GradientClient {
    /// `POST /api/vendor-api/alerting/{accountId}`: an alert that becomes a ticket in the MSP's
    /// PSA. Not idempotent: only a 429 is retried. `NotFound` means the account (or the
    /// `service_id`) is unknown to Gradient. An empty 2xx body is taken as accepted (the receipt
    /// then carries only the alert id); a `data` envelope is looked into.
    pub async fn alert(
        &self,
        token: &ApiToken,
        account_id: &str,
        alert: &NewAlert,
    ) -> Result<AlertReceipt, GradientError> {
        let path = format!("/api/vendor-api/alerting/{}", segment(account_id));
        let body = to_body(alert)?;
        self.call(
            token,
            Method::POST,
            &path,
            Some(body),
            Retry::Only429,
            |b| alert_receipt(&path, alert, b),
        )
        .await
    }

    /// #11: whether the alert answered with `message_id` became a ticket (a GET: retried like
    /// every read).
    pub async fn alert_debug(
        &self,
        token: &ApiToken,
        message_id: &str,
    ) -> Result<AlertDebug, GradientError> {
        let path = format!("/api/vendor-api/alerting/debug/{}", segment(message_id));
        let mut d: AlertDebug = self
            .call(token, Method::GET, &path, None, Retry::Transient, |b| {
                decode_enveloped(&path, b, None)
            })
            .await?;
        // Gradient's words in a 2xx answer go on into the audit trail: scrubbed like an error's.
        let scrubber = self.scrubber(token, []);
        d.errors = d.errors.iter().map(|e| scrubber.scrub(e, false)).collect();
        Ok(d)
    }
}

/// The receipt of an alert from its 2xx body (see [`GradientClient::alert`]).
fn alert_receipt(path: &str, alert: &NewAlert, body: &[u8]) -> Result<AlertReceipt, GradientError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AlertReceipt {
            alert_id: alert.alert_id.clone(),
            ..AlertReceipt::default()
        });
    }
    decode_enveloped(path, body, Some("messageId"))
}
