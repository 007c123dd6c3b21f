//! The simulator's in-memory state and the operations on it (shared by routes and the handle).

use crate::model::{
    AlertRecord, CountEntry, CountRecord, CreatedOrg, Faults, OrgState, Pair, RefusedAccount,
    RequestRecord, RequestsReport, Service, SimAccount, SimState, VendorState, stats,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Integration status values Gradient accepts (case-sensitive).
pub const STATUSES: [&str; 5] = ["inactive", "pending", "active", "disabled", "error"];

/// Service categories Gradient accepts.
pub const CATEGORIES: [&str; 7] = [
    "security",
    "backup",
    "productivity",
    "infrastructure",
    "service delivery",
    "consulting",
    "other",
];

pub(crate) struct Org {
    pub id: String,
    pub name: String,
    pub integration_id: String,
    pub status: String,
    pub last_synced_at: Option<String>,
    pub partner_key: String,
    /// Further keys that reach the organization besides `partner_key` (until it is regenerated).
    pub extra_keys: Vec<String>,
    pub accounts: Vec<SimAccount>,
    pub mappings: BTreeSet<Pair>,
    pub counts: BTreeMap<Pair, CountRecord>,
    pub not_found_counts: Vec<Pair>,
    /// Refused account id → the 400 message.
    pub refused: BTreeMap<String, String>,
    pub alerts: Vec<AlertRecord>,
}

impl Org {
    pub fn has_account(&self, id: &str) -> bool {
        self.accounts.iter().any(|a| a.id == id)
    }

    pub fn to_state(&self) -> OrgState {
        OrgState {
            organization_id: self.id.clone(),
            name: self.name.clone(),
            integration_id: self.integration_id.clone(),
            status: self.status.clone(),
            last_synced_at: self.last_synced_at.clone(),
            partner_key: self.partner_key.clone(),
            accounts: self.accounts.clone(),
            mappings: self.mappings.iter().cloned().collect(),
            counts: self.counts.values().cloned().collect(),
            not_found_counts: self.not_found_counts.clone(),
            refused_accounts: self
                .refused
                .iter()
                .map(|(id, m)| RefusedAccount {
                    account_id: id.clone(),
                    message: m.clone(),
                })
                .collect(),
            alerts: self.alerts.clone(),
        }
    }

    /// The refusal message when `id` is refused.
    pub fn refusal(&self, id: &str) -> Option<&str> {
        self.refused.get(id).map(String::as_str)
    }
}

pub(crate) struct Inner {
    pub vendor_id: String,
    pub vendor_name: String,
    pub vendor_key: String,
    pub services: Vec<Service>,
    pub orgs: Vec<Org>,
    pub max_rps: u32,
    pub faults: Faults,
    pub rng: StdRng,
    /// Arrival instants of accepted vendor requests within the last second (rate limiter).
    pub window: VecDeque<Instant>,
    pub log: Vec<RequestRecord>,
    next_service: u64,
    next_org: u64,
}

pub(crate) struct Shared {
    pub started: Instant,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(vendor_key: String, max_rps: u32, seed: u64) -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner {
                vendor_id: "vendor_coro".to_owned(),
                vendor_name: "Coro".to_owned(),
                vendor_key,
                services: Vec::new(),
                orgs: Vec::new(),
                max_rps,
                faults: Faults::default(),
                rng: StdRng::seed_from_u64(seed),
                window: VecDeque::new(),
                log: Vec::new(),
                next_service: 1,
                next_org: 1,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Inner {
    fn random_key(&mut self) -> String {
        format!("pk_{:032x}", self.rng.random::<u128>())
    }

    pub fn org(&self, id: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| o.id == id)
    }

    pub fn org_mut(&mut self, id: &str) -> Option<&mut Org> {
        self.orgs.iter_mut().find(|o| o.id == id)
    }

    pub fn org_by_key(&self, partner_key: &str) -> Option<&Org> {
        self.orgs
            .iter()
            .find(|o| o.partner_key == partner_key || o.extra_keys.iter().any(|k| k == partner_key))
    }

    pub fn create_org(&mut self, name: &str) -> CreatedOrg {
        let n = self.next_org;
        self.next_org += 1;
        let partner_key = self.random_key();
        self.orgs.push(Org {
            id: format!("org_{n}"),
            name: name.to_owned(),
            integration_id: format!("int_{n}"),
            status: "inactive".to_owned(),
            last_synced_at: None,
            partner_key: partner_key.clone(),
            extra_keys: Vec::new(),
            accounts: Vec::new(),
            mappings: BTreeSet::new(),
            counts: BTreeMap::new(),
            not_found_counts: Vec::new(),
            refused: BTreeMap::new(),
            alerts: Vec::new(),
        });
        CreatedOrg {
            organization_id: format!("org_{n}"),
            partner_key,
        }
    }

    pub fn regenerate_key(&mut self, org_id: &str) -> Option<String> {
        let key = self.random_key();
        let org = self.org_mut(org_id)?;
        org.partner_key = key.clone();
        org.extra_keys.clear();
        Some(key)
    }

    /// A further key that reaches the organization; the current one keeps working.
    pub fn add_key(&mut self, org_id: &str) -> Option<String> {
        let key = self.random_key();
        self.org_mut(org_id)?.extra_keys.push(key.clone());
        Some(key)
    }

    /// Refuses (`refused = true`) or accepts again an account id; false for an unknown org.
    pub fn refuse_account(
        &mut self,
        org_id: &str,
        account_id: &str,
        message: &str,
        refused: bool,
    ) -> bool {
        let Some(org) = self.org_mut(org_id) else {
            return false;
        };
        if refused {
            org.refused
                .insert(account_id.to_owned(), message.to_owned());
        } else {
            org.refused.remove(account_id);
        }
        true
    }

    /// Random 128-bit id in the 8-4-4-4-12 hex form.
    pub fn random_uuid(&mut self) -> String {
        let h = format!("{:032x}", self.rng.random::<u128>());
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    pub fn wipe_accounts(&mut self, org_id: &str) -> bool {
        let Some(org) = self.org_mut(org_id) else {
            return false;
        };
        org.accounts.clear();
        org.mappings.clear();
        true
    }

    pub fn set_mappings(&mut self, org_id: &str, pairs: &[Pair], mapped: bool) -> bool {
        let Some(org) = self.org_mut(org_id) else {
            return false;
        };
        for p in pairs {
            if mapped {
                org.mappings.insert(p.clone());
            } else {
                org.mappings.remove(p);
            }
        }
        true
    }

    pub fn map_all(&mut self, org_id: &str, except: &[Pair]) -> bool {
        let services: Vec<String> = self.services.iter().map(|s| s.id.clone()).collect();
        let Some(org) = self.org_mut(org_id) else {
            return false;
        };
        let except: BTreeSet<&Pair> = except.iter().collect();
        let accounts: Vec<String> = org.accounts.iter().map(|a| a.id.clone()).collect();
        for a in &accounts {
            for s in &services {
                let p = Pair::new(a.clone(), s.clone());
                if !except.contains(&p) {
                    org.mappings.insert(p);
                }
            }
        }
        true
    }

    pub fn create_service(&mut self, mut service: Service) -> Service {
        service.id = format!("svc_{}", self.next_service);
        self.next_service += 1;
        self.services.push(service.clone());
        service
    }

    pub fn snapshot(&self) -> SimState {
        SimState {
            vendor: VendorState {
                id: self.vendor_id.clone(),
                name: self.vendor_name.clone(),
                services: self.services.clone(),
            },
            organizations: self.orgs.iter().map(Org::to_state).collect(),
            max_rps: self.max_rps,
            faults: self.faults.clone(),
        }
    }

    pub fn requests(&self) -> RequestsReport {
        RequestsReport {
            requests: self.log.clone(),
            stats: stats(&self.log),
        }
    }

    /// Rolling-window limiter: true when the request is admitted (and then counted).
    pub fn admit(&mut self, now: Instant) -> bool {
        while let Some(front) = self.window.front() {
            if now.duration_since(*front) >= Duration::from_secs(1) {
                self.window.pop_front();
            } else {
                break;
            }
        }
        if self.window.len() >= self.max_rps as usize {
            return false;
        }
        self.window.push_back(now);
        true
    }

    /// Stores a count; `Err(())` when the service, the account or the mapping is missing.
    pub fn record_count(
        &mut self,
        org_id: &str,
        pair: Pair,
        unit_count: u64,
        no_build: bool,
    ) -> Result<(), ()> {
        let service_exists = self.services.iter().any(|s| s.id == pair.service_id);
        let Some(org) = self.org_mut(org_id) else {
            return Err(());
        };
        if !service_exists || !org.has_account(&pair.account_id) || !org.mappings.contains(&pair) {
            org.not_found_counts.push(pair);
            return Err(());
        }
        let at = now_rfc3339();
        let rec = org
            .counts
            .entry(pair.clone())
            .or_insert_with(|| CountRecord {
                account_id: pair.account_id.clone(),
                service_id: pair.service_id.clone(),
                unit_count,
                history: Vec::new(),
            });
        rec.unit_count = unit_count;
        rec.history.push(CountEntry {
            unit_count,
            no_build,
            at: at.clone(),
        });
        org.last_synced_at = Some(at);
        if org.status == "pending" {
            org.status = "active".to_owned();
        }
        Ok(())
    }
}
