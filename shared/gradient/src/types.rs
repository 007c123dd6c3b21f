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

/// Priority of an alert (`priority`, 1–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertPriority {
    Low = 1,
    Medium = 2,
    High = 3,
    VeryHigh = 4,
}

impl AlertPriority {
    pub const ALL: [AlertPriority; 4] = [Self::Low, Self::Medium, Self::High, Self::VeryHigh];

    /// The integer Gradient expects.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl Serialize for AlertPriority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.as_u8())
    }
}

impl<'de> Deserialize<'de> for AlertPriority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        Self::ALL
            .into_iter()
            .find(|p| p.as_u8() == n)
            .ok_or_else(|| serde::de::Error::custom(format!("priority {n} is not within 1..=4")))
    }
}

/// `POST /api/vendor-api/alerting/{accountId}`: an alert that becomes a ticket in the MSP's PSA
/// on the company the account is mapped to. Gradient requires non-empty `title`, `description`
/// and `alert_id` (unique per alert), `status` 1–6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAlert {
    pub title: String,
    pub description: String,
    pub alert_id: String,
    pub priority: AlertPriority,
    /// Ticket status, 1–6; [`NewAlert::STATUS_NEW`] (1) is a new ticket.
    pub status: u8,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date_time: Option<String>,
    /// A vendor service id (Gradient answers 404 for an unknown one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
}

impl NewAlert {
    /// Ticket status "new".
    pub const STATUS_NEW: u8 = 1;
}

/// Gradient's answer to #11, whether an alert became a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDebug {
    #[serde(default, deserialize_with = "string_or_number")]
    pub ticket_id: String,
    #[serde(default)]
    pub created_at: Option<String>,
    /// `success`, `pending` or `failed`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Gradient's answer to an accepted alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertReceipt {
    #[serde(default, deserialize_with = "string_or_number")]
    pub message_id: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub alert_id: String,
    /// Spelled `correlationID` by Gradient.
    #[serde(
        rename = "correlationID",
        default,
        deserialize_with = "string_or_number"
    )]
    pub correlation_id: String,
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
    fn alert_shapes() {
        let alert = NewAlert {
            title: "t".into(),
            description: "d".into(),
            alert_id: "a-1".into(),
            priority: AlertPriority::VeryHigh,
            status: NewAlert::STATUS_NEW,
            due_date_time: None,
            service_id: None,
        };
        assert_eq!(
            serde_json::to_string(&alert).unwrap(),
            r#"{"title":"t","description":"d","alertId":"a-1","priority":4,"status":1}"#
        );
        let full = NewAlert {
            due_date_time: Some("2026-12-01T00:00:00Z".into()),
            service_id: Some("svc_1".into()),
            ..alert
        };
        let v = serde_json::to_value(&full).unwrap();
        assert_eq!(v["dueDateTime"], "2026-12-01T00:00:00Z");
        assert_eq!(v["serviceId"], "svc_1");
        assert_eq!(serde_json::from_value::<NewAlert>(v).unwrap(), full);
        for p in AlertPriority::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<AlertPriority>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<AlertPriority>("5").is_err());
        assert!(serde_json::from_str::<AlertPriority>("0").is_err());
        let r: AlertReceipt = serde_json::from_str(
            r#"{"messageId":"m","alertId":"a-1","correlationID":7,"other":1}"#,
        )
        .unwrap();
        assert_eq!(
            (
                r.message_id.as_str(),
                r.alert_id.as_str(),
                r.correlation_id.as_str()
            ),
            ("m", "a-1", "7")
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap()["correlationID"],
            serde_json::json!("7")
        );
        let r: AlertReceipt = serde_json::from_str("{}").unwrap();
        assert_eq!(r, AlertReceipt::default());
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
