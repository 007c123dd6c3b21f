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
string_id!(
    /// The caller's user id (`sub` claim).
    UserId,
    "user id",
    256
);
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
