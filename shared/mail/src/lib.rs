//! Amazon SES (v2 API) as the core's [`Mailer`]: one `SendEmail` per email, from `NOTIFY_FROM`
//! (an SES-verified identity) to the connector's addresses, with a text and an HTML part (SES
//! builds the MIME message and encodes the subject).

use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use psa_domain::notify::Email;
use psa_domain::ports::{MailError, Mailer};

/// SES error codes that retrying cannot fix until someone acts (the sender, an address, the
/// account).
const REFUSALS: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Refused(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &[String], email: &Email) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&email.text)?)
                    .html(utf8(&email.html)?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match out {
            Ok(sent) => {
                tracing::info!(
                    event = "email_sent",
                    message_id = sent.message_id().unwrap_or_default(),
                    recipients = to.len(),
                    "email sent"
                );
                Ok(())
            }
            Err(e) => {
                let refused = matches!(&e, SdkError::ServiceError(se)
                    if se.err().code().is_some_and(|c| REFUSALS.contains(&c)));
                let why = DisplayErrorContext(&e).to_string();
                Err(if refused {
                    MailError::Refused(why)
                } else {
                    MailError::Unavailable(why)
                })
            }
        }
    }
}
