//! A cut error body still yields Gradient's message; every error's message is scrubbed of the
//! call's secrets before it is cut; backoff stays under its cap.

use super::failure::error_message;
use super::partial_json::partial_message;
use super::*;
use crate::config::GradientConfig;
use crate::error::MAX_MESSAGE_CHARS;
use crate::vendor_key::header_text;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;

#[test]
fn partial_json_messages_are_read_as_far_as_they_go() {
    assert_eq!(
        partial_message(r#"{"message":"a\"b\n\u00e9"}"#).unwrap(),
        "a\"b\né"
    );
    assert_eq!(
        partial_message(r#"{"statusCode":400, "message" : "cut here"#).unwrap(),
        "cut here"
    );
    assert_eq!(partial_message(r#"{"message":"esc \u00"#).unwrap(), "esc ");
    assert_eq!(partial_message(r#"{"message":"esc \"#).unwrap(), "esc ");
    assert_eq!(partial_message(r#"{"statusCode":400"#), None);
    assert_eq!(partial_message("not json \"message\":\"x\""), None);
    // Surrogate pairs; one cut in two is dropped, a lone half is a replacement character.
    assert_eq!(
        partial_message(r#"{"message":"\ud83e\udd80!"#).unwrap(),
        "🦀!"
    );
    assert_eq!(partial_message(r#"{"message":"a\ud83e\udd"#).unwrap(), "a");
    assert_eq!(partial_message(r#"{"message":"a\ud83e"#).unwrap(), "a");
    assert_eq!(
        partial_message(r#"{"message":"a\ud83ex"#).unwrap(),
        "a\u{FFFD}x"
    );
    // Nothing is cut before scrubbing.
    let long = format!(r#"{{"message":"{}"#, "z".repeat(10_000));
    assert_eq!(partial_message(&long).unwrap().len(), 10_000);
    let s = StatusCode::BAD_REQUEST;
    let m = error_message(&Method::GET, "/p", s, br#"{"message":"half"#, true);
    assert_eq!(m, "GET /p: half");
    let m = error_message(&Method::GET, "/p", s, br#"{"message":{"k":1}}"#, false);
    assert_eq!(m, r#"GET /p: {"k":1}"#);
    assert_eq!(
        error_message(&Method::GET, "/p", s, b"", false),
        "GET /p: Bad Request"
    );
    let text = "y".repeat(5000);
    let m = error_message(&Method::GET, "/p", s, text.as_bytes(), false);
    assert_eq!(m.len(), "GET /p: ".len() + 5000);
    // A body cut inside a character loses that character, not more.
    let cut = &"abé".as_bytes()[..3];
    assert_eq!(
        error_message(&Method::GET, "/p", s, cut, true),
        "GET /p: ab"
    );
}

#[test]
fn every_message_of_every_error_is_scrubbed_then_capped() {
    let key = VendorKey::parse("coro-vendor-7f3a9c2e-41b8-4d6a-9e0f-5b2c8d1a7e36").unwrap();
    let token = ApiToken::parse("pk_3b9e1f7c0a2d4e6f8a1b3c5d7e9f0a2b").unwrap();
    let client =
        GradientClient::new(GradientConfig::new("http://127.0.0.1:1"), key.clone()).unwrap();
    let header = header_text(&key, &token);
    let scrubber = client.scrubber(&token, [&key]);
    // The header straddles the 200-character cut: scrubbed first, nothing of it shows.
    let text = format!(
        "{} cause: {} {} {} {}",
        "é".repeat(180),
        &header[..40],
        token.expose_secret(),
        STANDARD.encode(key.expose_secret()),
        "z".repeat(300)
    );
    for err in [
        GradientError::Forbidden {
            message: text.clone(),
        },
        GradientError::NotFound {
            message: text.clone(),
        },
        GradientError::Conflict {
            message: text.clone(),
        },
        GradientError::BadRequest {
            status: 400,
            message: text.clone(),
        },
        GradientError::Network {
            message: text.clone(),
        },
        GradientError::Malformed {
            message: text.clone(),
        },
        GradientError::Config {
            message: text.clone(),
        },
    ] {
        let mut err = err.scrubbed(&scrubber);
        let message = err.message_mut().unwrap();
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS, "{message}");
        assert!(message.ends_with("é cause: [REDACTED] …"), "{message}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&header[..12]), "{shown}");
        assert!(!shown.contains(&header[20..32]), "{shown}");
        assert!(!shown.contains(&token.expose_secret()[..12]), "{shown}");
        assert!(
            !shown.contains(&STANDARD.encode(key.expose_secret())[..12]),
            "{shown}"
        );
    }
    let ok = GradientError::Timeout.scrubbed(&scrubber);
    assert!(matches!(ok, GradientError::Timeout));
}

#[test]
fn backoff_is_capped_full_jitter() {
    let mut c = GradientConfig::new("http://127.0.0.1:1");
    c.backoff_base = Duration::from_millis(100);
    c.backoff_cap = Duration::from_millis(300);
    let client = GradientClient::new(c, VendorKey::parse("v").unwrap()).unwrap();
    for attempt in 1..30 {
        assert!(client.backoff(attempt) <= Duration::from_millis(300));
    }
    assert!(client.backoff(1) <= Duration::from_millis(100));
}
