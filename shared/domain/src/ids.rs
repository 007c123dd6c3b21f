//! Identifiers, parsed once at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let ok = !raw.is_empty()
                    && raw.len() <= $max
                    && raw
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | ':'));
                if ok {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(IdError { what: $what, value: raw.chars().take(64).collect() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A Coro workspace id, e.g. `acme_TX7T_u`; also the Gradient `accountId` of a managed workspace.
    WorkspaceId,
    "workspace id",
    128
);
/// The caller's user id (`sub` claim): opaque — any printable characters, no controls, at most
/// 256 bytes (identity providers issue `auth0|65f0c1e2d3a4b5`, `google-oauth2|1093…`, UUIDs,
/// emails). It is a value in records (`createdBy`, the audit's `actor`), never part of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.trim().is_empty()
            && raw.len() <= Self::MAX_LEN
            && !raw.chars().any(char::is_control);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError {
                what: "user id",
                value: raw.chars().filter(|c| !c.is_control()).take(64).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl WorkspaceId {
    /// Whether a Secrets Manager secret can be named after this workspace (its names allow only
    /// letters, digits and `/_+=.@-`): a workspace that cannot has no connector.
    pub fn names_a_secret(&self) -> bool {
        self.0
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    }
}
string_id!(
    /// A sync run id: sortable by time (see [`RunId::new`]).
    RunId,
    "run id",
    128
);

impl RunId {
    /// A run id that sorts by `at`: `YYYYMMDDTHHMMSS.mmmZ-<suffix>`.
    pub fn new(at: time::OffsetDateTime, suffix: &str) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        Self(format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond(),
            suffix
        ))
    }
}

/// The kind of PSA connector; also the `{connectorId}` of the routes (a workspace holds at most
/// one connector of each type). Adding a PSA adds a variant here and its adapter in the wiring;
/// no use case names a type.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    /// Gradient MSP (Synthesize). The default: the type of records written before the type was
    /// carried (queued jobs), which were all Gradient's.
    #[default]
    Gradient,
    /// A second PSA that exists only in the core's unit tests, to prove that the use cases serve
    /// two types side by side without naming either.
    #[cfg(test)]
    Second,
}

impl ConnectorType {
    /// Every type this build serves.
    pub const ALL: &'static [ConnectorType] = &[
        ConnectorType::Gradient,
        #[cfg(test)]
        ConnectorType::Second,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Gradient => "gradient",
            #[cfg(test)]
            ConnectorType::Second => "second",
        }
    }

    /// The PSA's name as an MSP knows it (in emails).
    pub fn display_name(self) -> &'static str {
        match self {
            ConnectorType::Gradient => "Gradient",
            #[cfg(test)]
            ConnectorType::Second => "Second",
        }
    }

    /// Parses a connector id or type from a path or body; `None` for anything we do not support.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == raw)
    }

    /// Whether this is the default type (records of it may omit the type).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_ids_are_checked() {
        assert!(WorkspaceId::parse("acme_TX7T_u").is_ok());
        assert!(WorkspaceId::parse("").is_err());
        assert!(WorkspaceId::parse("a/b").is_err());
        assert!(WorkspaceId::parse("a#b").is_err());
        assert!(WorkspaceId::parse(&"x".repeat(129)).is_err());
        assert!(WorkspaceId::parse("acme_TX7T_u").unwrap().names_a_secret());
        assert!(!WorkspaceId::parse("tenant:42").unwrap().names_a_secret());
    }

    #[test]
    fn user_ids_are_opaque_printable_and_bounded() {
        for ok in [
            "auth0|65f0c1e2d3a4b5",
            "google-oauth2|109348572093485720934",
            "a0b1c2d3-e4f5-6789-abcd-ef0123456789",
            "jane.doe+psa@example.com",
            "Zoë Ünicode/#?&=",
        ] {
            assert_eq!(UserId::parse(ok).unwrap().as_str(), ok);
        }
        assert!(UserId::parse(&"u".repeat(UserId::MAX_LEN)).is_ok());
        for bad in ["", "   ", "a\nb", "tab\there", "nul\0", "esc\u{1b}[31m"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserId::parse(&"u".repeat(UserId::MAX_LEN + 1)).is_err());
    }

    #[test]
    fn connector_types_round_trip() {
        for t in ConnectorType::ALL {
            assert_eq!(ConnectorType::parse(t.as_str()), Some(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(ConnectorType::parse("Gradient"), None);
        assert_eq!(ConnectorType::parse("connectwise"), None);
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = RunId::new(time::macros::datetime!(2026-11-24 05:00:00 UTC), "zzz");
        let b = RunId::new(time::macros::datetime!(2026-11-24 05:00:01 UTC), "aaa");
        assert!(a < b);
        assert_eq!(a.as_str(), "20261124T050000.000Z-zzz");
    }
}
