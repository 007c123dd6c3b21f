//! Serde types of the Gradient vendor API (see `shared/docs/gradient-api.md`).

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// `null` (or absent, with `#[serde(default)]`) becomes the type's default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Ids are strings in the docs; accept a JSON number too, in case Gradient sends one.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
        Null(()),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
        Id::Null(()) => String::new(),
    })
}

/// The vendor record (`GET /api/vendor-api` → `data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vendor {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub skus: Vec<Sku>,
}

/// A vendor-wide service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub category: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub subcategory: String,
}

/// The MSP's integration (`GET /api/vendor-api/organization`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    #[serde(deserialize_with = "string_or_number")]
    pub organization_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub vendor_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub vendor_name: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub integration_id: String,
    /// Raw value (`inactive`, `pending`, ...); see [`IntegrationStatus::from_str`].
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(default)]
    pub last_synced_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// One account to create; `id` is the vendor's own stable id (the Coro workspace id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PATCH /organization/accounts/{id}`: only the fields that are `Some` are sent; Gradient keeps
/// an absent one. `description: Some("")` is sent as `"description": ""` and clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewService {
    pub name: String,
    pub description: String,
    pub category: String,
    pub subcategory: String,
}

/// Integration status values (sent lowercase; Gradient is case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationStatus {
    Inactive,
    Pending,
    Active,
    Disabled,
    Error,
}

impl IntegrationStatus {
    pub const ALL: [IntegrationStatus; 5] = [
        Self::Inactive,
        Self::Pending,
        Self::Active,
        Self::Disabled,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for IntegrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value was not one of the five statuses (exact, lowercase).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown integration status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for IntegrationStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip() {
        for s in IntegrationStatus::ALL {
            assert_eq!(s.as_str().parse::<IntegrationStatus>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("Active".parse::<IntegrationStatus>().is_err());
    }

    #[test]
    fn account_update_sends_only_some_and_an_explicit_empty_description() {
        let body = |u: &AccountUpdate| serde_json::to_string(u).unwrap();
        assert_eq!(body(&AccountUpdate::default()), "{}");
        assert_eq!(
            body(&AccountUpdate {
                name: Some("A".into()),
                description: None,
            }),
            r#"{"name":"A"}"#
        );
        assert_eq!(
            body(&AccountUpdate {
                name: Some("A".into()),
                description: Some(String::new()),
            }),
            r#"{"name":"A","description":""}"#
        );
    }

    #[test]
    fn tolerant_parsing() {
        let v: Vendor = serde_json::from_str(
            r#"{"id":7,"name":"Coro","skus":[{"id":"s1","name":"EDR","description":null,"category":"security"}],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(v.id, "7");
        assert_eq!(v.skus[0].description, "");
        assert_eq!(v.skus[0].subcategory, "");
        let o: Organization = serde_json::from_str(
            r#"{"organizationId":"o1","name":"MSP","vendorId":"v","vendorName":"Coro","integrationId":"i","status":"pending","lastSyncedAt":null}"#,
        )
        .unwrap();
        assert_eq!(o.status, "pending");
        assert_eq!(o.last_synced_at, None);
        let body = serde_json::to_string(&NewAccount {
            id: "a".into(),
            name: "A".into(),
            description: None,
        })
        .unwrap();
        assert_eq!(body, r#"{"id":"a","name":"A"}"#);
    }
}
