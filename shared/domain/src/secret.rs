//! Secret values: the MSP's Gradient partner token and Coro's vendor key.
//!
//! Both wrap [`secrecy::SecretString`]: `Debug` prints `[REDACTED]`, there is no `Display`,
//! no `Serialize`, and the only way to the characters is an explicit `expose_secret()`.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// Longest token we accept. Gradient partner keys are far shorter; this bounds what we store.
pub const MAX_TOKEN_LEN: usize = 512;

/// Why a pasted token was refused before it ever reached Gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the API token is empty")]
    Empty,
    #[error("the API token is longer than {MAX_TOKEN_LEN} characters")]
    TooLong,
    #[error("the API token contains whitespace or control characters")]
    BadCharacters,
}

fn check(raw: &str) -> Result<(), TokenError> {
    if raw.is_empty() {
        return Err(TokenError::Empty);
    }
    if raw.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::BadCharacters);
    }
    Ok(())
}

/// The Gradient partner key an MSP admin pasted ("COPY API TOKEN" in Synthesize).
#[derive(Clone)]
pub struct ApiToken(SecretString);

impl ApiToken {
    /// Parses a pasted token: surrounding whitespace is trimmed (copy/paste adds it), the rest must
    /// be non-empty, at most [`MAX_TOKEN_LEN`] long and free of whitespace and control characters.
    pub fn parse(raw: &str) -> Result<Self, TokenError> {
        let trimmed = raw.trim();
        check(trimmed)?;
        Ok(Self(SecretString::from(trimmed.to_owned())))
    }

    /// The characters, for the one place that builds the `GRADIENT-TOKEN` header or stores the secret.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// What the console shows: `…` and the last four characters (never more than a quarter of a
    /// short token).
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.expose_secret().chars().collect();
        let shown = 4.min(chars.len() / 4);
        let tail: String = chars[chars.len() - shown..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([REDACTED])")
    }
}

/// Coro's vendor key, issued by Gradient; a platform secret shared by every MSP.
#[derive(Clone)]
pub struct VendorKey(SecretString);

impl VendorKey {
    pub fn parse(raw: &str) -> Result<Self, TokenError> {
        let trimmed = raw.trim();
        check(trimmed)?;
        Ok(Self(SecretString::from(trimmed.to_owned())))
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for VendorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VendorKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = ApiToken::parse("  s3cr3t-partner-key-XYZW \n").unwrap();
        let v = VendorKey::parse("vendor-key-1234").unwrap();
        let printed = format!("{t:?} {v:?} {:?}", Some(&t));
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(!printed.contains("vendor-key"), "{printed}");
        assert!(printed.contains("REDACTED"));
    }

    #[test]
    fn parse_trims_and_rejects_bad_tokens() {
        assert_eq!(ApiToken::parse("  abc  ").unwrap().expose_secret(), "abc");
        assert_eq!(ApiToken::parse("   ").unwrap_err(), TokenError::Empty);
        assert_eq!(
            ApiToken::parse("a b").unwrap_err(),
            TokenError::BadCharacters
        );
        assert_eq!(
            ApiToken::parse("a\u{0}b").unwrap_err(),
            TokenError::BadCharacters
        );
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(ApiToken::parse(&long).unwrap_err(), TokenError::TooLong);
    }

    #[test]
    fn hint_shows_at_most_four_and_at_most_a_quarter() {
        assert_eq!(ApiToken::parse("abcdefghijklmnop").unwrap().hint(), "…mnop");
        assert_eq!(ApiToken::parse("abcdefgh").unwrap().hint(), "…gh");
        assert_eq!(ApiToken::parse("abc").unwrap().hint(), "…");
    }
}
