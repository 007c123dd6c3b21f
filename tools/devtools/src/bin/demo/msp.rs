//! The sample MSP on the Coro side: channel "Acme MSP", subchannel "Acme West" and 50 child
//! workspaces with mixed subscriptions and statuses; what Coro should report for them.

use harness::workspace;
use psa_domain::Catalogue;
use psa_domain::catalogue::Unit;
use psa_store::WorkspaceItem;
use std::collections::BTreeMap;

pub const CHANNEL: &str = "acme_msp";
pub const SUBCHANNEL: &str = "acme_west";
pub const CHILDREN: usize = 50;

/// Service bundles the sample customers buy (catalogue keys); each child gets one, plus extras.
const BUNDLES: &[&[&str]] = &[
    &["EMAIL_SECURITY", "CLOUD_SECURITY", "INBOUND_GATEWAY"],
    &["ENDPOINT_SECURITY", "EDR", "NETWORK"],
    &[
        "EMAIL_SECURITY",
        "ENDPOINT_SECURITY",
        "SECURITY_AWARENESS_TRAINING",
        "EMAIL_ENCRYPTION",
    ],
    &[
        "CLOUD_SECURITY",
        "USER_DATA_GOVERNANCE",
        "MOBILE_DEVICE_MANAGEMENT",
        "ZTNA",
    ],
    &[
        "EDR",
        "ENDPOINT_DATA_GOVERNANCE",
        "WIFI_PHISHING",
        "SECURE_WEB_GATEWAY",
        "NETWORK",
    ],
];

/// Short column labels for the compact tables.
pub const SHORT: &[(&str, &str)] = &[
    ("CLOUD_SECURITY", "Cloud"),
    ("EMAIL_SECURITY", "Email"),
    ("USER_DATA_GOVERNANCE", "UDG"),
    ("SECURITY_AWARENESS_TRAINING", "SAT"),
    ("ENDPOINT_SECURITY", "Endpoint"),
    ("EDR", "EDR"),
    ("ENDPOINT_DATA_GOVERNANCE", "EDG"),
    ("MOBILE_DEVICE_MANAGEMENT", "MDM"),
    ("NETWORK", "Network"),
    ("INBOUND_GATEWAY", "Inbound"),
    ("EMAIL_ENCRYPTION", "Encrypt"),
    ("WIFI_PHISHING", "WiFi"),
    ("SECURE_WEB_GATEWAY", "SWG"),
    ("ZTNA", "ZTNA"),
];

const TOWNS: &[&str] = &[
    "Alpine",
    "Bayside",
    "Cedar",
    "Delta",
    "Evergreen",
    "Granite",
    "Harbor",
    "Maple",
    "Redwood",
    "Summit",
];
const TRADES: &[&str] = &["Dental", "Law Group", "Bakery", "Logistics", "Clinic"];

/// Children whose every pair the MSP has not mapped yet in Synthesize.
pub const UNMAPPED_CHILDREN: &[usize] = &[12, 27];
/// A service the MSP has not mapped for anyone yet.
pub const UNMAPPED_SERVICE: &str = "ZTNA";

/// A managed workspace of the demo MSP.
#[derive(Clone, Debug)]
pub struct Child {
    pub id: String,
    pub parent: &'static str,
    pub name: String,
    pub status: &'static str,
    pub services: Vec<&'static str>,
    pub users: u64,
    pub devices: u64,
}

impl Child {
    pub fn reported(&self) -> bool {
        matches!(self.status, "trial" | "subscription")
    }
}

pub fn fixture() -> Vec<Child> {
    (0..CHILDREN)
        .map(|i| {
            let mut services: Vec<&'static str> = BUNDLES[i % BUNDLES.len()].to_vec();
            for (every, extra) in [(7, "SECURITY_AWARENESS_TRAINING"), (6, "EDR")] {
                if i % every == 0 && !services.contains(&extra) {
                    services.push(extra);
                }
            }
            Child {
                id: format!("{CHANNEL}_c{i:02}"),
                parent: if i < 35 { CHANNEL } else { SUBCHANNEL },
                name: format!("{} {}", TOWNS[i % TOWNS.len()], TRADES[i / TOWNS.len()]),
                status: match i {
                    7 | 23 | 38 => "inactive",
                    15 | 44 => "archived",
                    _ if i % 9 == 4 => "trial",
                    _ => "subscription",
                },
                services,
                users: 5 + (i as u64 * 37) % 140,
                devices: 3 + (i as u64 * 53) % 120,
            }
        })
        .collect()
}

pub fn items(children: &[Child]) -> Vec<WorkspaceItem> {
    let mut items = vec![
        workspace(
            CHANNEL,
            None,
            "channel",
            "Acme MSP",
            "subscription",
            &[],
            0,
            0,
        ),
        workspace(
            SUBCHANNEL,
            Some(CHANNEL),
            "channel",
            "Acme West",
            "subscription",
            &[],
            0,
            0,
        ),
    ];
    items.extend(children.iter().map(|c| {
        workspace(
            &c.id,
            Some(c.parent),
            "child",
            &c.name,
            c.status,
            &c.services,
            c.users,
            c.devices,
        )
    }));
    items
}

/// What Coro should report: (account, service key) → count, for trial/subscription children.
pub fn expected(catalogue: &Catalogue, children: &[Child]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for c in children.iter().filter(|c| c.reported()) {
        for s in &c.services {
            let n = match catalogue.get(s).map(|s| s.unit) {
                Some(Unit::ProtectedUsers) => c.users,
                _ => c.devices,
            };
            out.insert((c.id.clone(), s.to_string()), n);
        }
    }
    out
}

pub fn short(key: &str) -> &str {
    SHORT
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, s)| s)
}

/// The admin who connects (the `email` claim): the default recipient of the sync emails.
pub const ADMIN_EMAIL: &str = "it-admin@acme-msp.example";
