//! The sync emails of a test, read back from moto's SES: the sender identity verified as in AWS,
//! the notifier wired to the local stack, and what SES accepted for one recipient.
//!
//! moto keeps, for a `Simple` message, the subject and the HTML part (not the text part, which
//! the domain's unit tests pin); tests tell their messages apart by recipient addresses of their
//! own.

use crate::TestEnv;
use psa_domain::usecase::notice::Notifier;
use serde_json::Value;

/// The sender every test environment is configured with (`NOTIFY_FROM`).
pub const NOTIFY_FROM: &str = "Coro PSA <psa-notify@coro.example>";
/// The console link of every test environment (`CONSOLE_URL`).
pub const CONSOLE_URL: &str = "https://console.coro.example/settings/connectors/psa?psa=gradient";

/// One email as SES accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The HTML part.
    pub html: String,
}

impl TestEnv {
    /// Verifies `NOTIFY_FROM` in SES (as a deployer does once) and answers the notifier wired to
    /// the local stack with this environment's settings.
    pub async fn notifier(&self) -> Notifier {
        verify_sender(self, "psa-notify@coro.example").await;
        psa_runtime::notifier(&self.platform.settings, &self.local.sdk).expect("notifier wires")
    }

    /// Every email SES accepted with `recipient` among its `To` addresses, oldest first.
    pub async fn emails_to(&self, recipient: &str) -> Vec<SentEmail> {
        sent_emails()
            .await
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == recipient))
            .collect()
    }
}

/// Verifies `address` as an SES identity (an identity that exists already is fine).
pub async fn verify_sender(env: &TestEnv, address: &str) {
    let ses = aws_sdk_sesv2::Client::new(&env.local.sdk);
    if let Err(e) = ses
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
    {
        let already = e
            .as_service_error()
            .is_some_and(|s| s.is_already_exists_exception());
        assert!(already, "verify {address}: {e:?}");
    }
}

/// Every email moto's SES accepted (all tests of the process), from its model dump.
pub async fn sent_emails() -> Vec<SentEmail> {
    let data = moto_data().await;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    data["ses"]["Message"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| SentEmail {
                    source: m["source"].as_str().unwrap_or_default().to_owned(),
                    to: strs(&m["destinations"]["ToAddresses"]),
                    subject: m["subject"].as_str().unwrap_or_default().to_owned(),
                    html: m["body"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// moto's model dump. It walks every backend while other tests of the process write to moto, and
/// then now and then answers an error page instead of JSON (a dictionary changed during the
/// walk): asked again, a few times, until it is JSON.
async fn moto_data() -> Value {
    let base = std::env::var("AWS_ENDPOINT_URL_SESV2").expect("AWS_ENDPOINT_URL_SESV2 (the stack)");
    let mut last = String::new();
    for _ in 0..10 {
        let body = reqwest::get(format!("{base}/moto-api/data.json"))
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("moto's data");
        match serde_json::from_str(&body) {
            Ok(data) => return data,
            Err(_) => last = body,
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!(
        "moto's data is not JSON: {}",
        last.chars().take(500).collect::<String>()
    )
}
