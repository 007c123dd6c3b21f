//! The service catalogue: Coro's modules and add-ons, each counted in one unit.
//!
//! Data, not code: the catalogue is `catalogue.json` beside this crate's `Cargo.toml`, so a
//! deployment changes a service's unit by editing one line of data.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The catalogue this build ships with.
pub const BUILTIN_CATALOGUE_JSON: &str = include_str!("../catalogue.json");

/// What a service's count is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    ProtectedUsers,
    ProtectedDevices,
}

impl Unit {
    pub fn singular(self) -> &'static str {
        match self {
            Unit::ProtectedUsers => "protected user",
            Unit::ProtectedDevices => "protected device",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Module,
    Addon,
}

/// One module or add-on as Coro sells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Stable catalogue key, e.g. `EMAIL_SECURITY` (what workspaces list in `modules`/`addons`).
    pub key: String,
    pub name: String,
    pub kind: ServiceKind,
    pub unit: Unit,
    pub category: String,
    pub subcategory: String,
}

impl Service {
    /// The service name the MSP sees in Synthesize.
    pub fn gradient_name(&self) -> String {
        format!("Coro {}", self.name)
    }

    /// The service description in Synthesize: states the unit, as the product requires.
    pub fn gradient_description(&self) -> String {
        let kind = match self.kind {
            ServiceKind::Module => "module",
            ServiceKind::Addon => "add-on",
        };
        format!(
            "Coro {} {kind}. Billed per {}.",
            self.name,
            self.unit.singular()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the service catalogue is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the service catalogue lists `{0}` twice")]
    Duplicate(String),
    #[error("the service catalogue is empty")]
    Empty,
}

/// The catalogue, keyed by service key, in a stable (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    services: BTreeMap<String, Service>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    services: Vec<Service>,
}

impl Catalogue {
    pub fn from_json(json: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile = serde_json::from_str(json)?;
        if file.services.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut services = BTreeMap::new();
        for s in file.services {
            if let Some(dup) = services.insert(s.key.clone(), s) {
                return Err(CatalogueError::Duplicate(dup.key));
            }
        }
        Ok(Self { services })
    }

    /// The catalogue shipped in `catalogue.json`.
    pub fn builtin() -> Self {
        Self::from_json(BUILTIN_CATALOGUE_JSON).expect("catalogue.json is checked by a unit test")
    }

    pub fn get(&self, key: &str) -> Option<&Service> {
        self.services.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_with_fourteen_services_and_units() {
        let c = Catalogue::builtin();
        assert_eq!(c.len(), 14);
        assert_eq!(c.get("EMAIL_SECURITY").unwrap().unit, Unit::ProtectedUsers);
        assert_eq!(c.get("EDR").unwrap().unit, Unit::ProtectedDevices);
        assert_eq!(c.get("ZTNA").unwrap().kind, ServiceKind::Addon);
        assert!(c.iter().all(|s| s.category == "security"));
    }

    #[test]
    fn description_states_the_unit() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.get("EMAIL_ENCRYPTION").unwrap().gradient_description(),
            "Coro Email Encryption (Secure Messages) add-on. Billed per protected user."
        );
        assert_eq!(
            c.get("EDR").unwrap().gradient_name(),
            "Coro Endpoint Detection and Response (EDR)"
        );
    }

    #[test]
    fn duplicates_and_unknown_fields_are_rejected() {
        let dup = r#"{"services":[
          {"key":"A","name":"A","kind":"module","unit":"protected_users","category":"security","subcategory":"other"},
          {"key":"A","name":"B","kind":"module","unit":"protected_users","category":"security","subcategory":"other"}]}"#;
        assert!(matches!(Catalogue::from_json(dup), Err(CatalogueError::Duplicate(k)) if k == "A"));
        let unknown = r#"{"services":[{"key":"A","name":"A","kind":"module","unit":"seats","category":"security","subcategory":"other"}]}"#;
        assert!(Catalogue::from_json(unknown).is_err());
    }
}
