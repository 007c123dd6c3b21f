//! A PSA that is not Gradient.

use crate::catalogue::Catalogue;
use crate::ids::WorkspaceId;
use crate::ports::*;
use crate::secret::ApiToken;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

/// How the fake PSA answers a call it is told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    Token,
    Unavailable,
    /// 403: "anomaly detected".
    Forbidden,
}

impl Fail {
    fn error(self) -> PsaError {
        match self {
            Self::Token => PsaError::TokenRejected,
            Self::Unavailable => PsaError::Unavailable {
                what: "down".into(),
                retry_after: None,
            },
            Self::Forbidden => PsaError::Forbidden("anomaly detected".into()),
        }
    }
}

/// What a test runs at every call of the fake PSA, with the method's name.
pub type Hook = Box<dyn Fn(&'static str) + Send + Sync>;

/// A PSA that is not Gradient: accounts, services, counts and alerts in memory; every call is
/// logged by name; failures and delays on demand.
#[derive(Default)]
pub struct FakePsa {
    pub live: Mutex<bool>,
    /// Calls by port method name, in order.
    pub calls: Mutex<Vec<&'static str>>,
    pub fail: Mutex<BTreeMap<&'static str, Fail>>,
    /// `verify` answers after this long.
    pub verify_delay: Mutex<Duration>,
    pub services: Mutex<BTreeMap<String, String>>,
    /// Catalogue keys `publish_services` leaves without an id.
    pub withheld: Mutex<BTreeSet<String>>,
    pub accounts: Mutex<BTreeMap<String, PsaAccount>>,
    /// Account ids the PSA refuses to create or update.
    pub refuse: Mutex<BTreeSet<String>>,
    /// Account ids whose counts are unmapped.
    pub unmapped: Mutex<BTreeSet<String>>,
    pub counts: Mutex<Vec<(String, String, u64, Batch)>>,
    pub alerts: Mutex<Vec<PsaAlert>>,
    /// A method that answers well this many times, then fails as said.
    pub fail_after: Mutex<BTreeMap<&'static str, (usize, Fail)>>,
    /// Runs at every call, with the method's name (e.g. to change the store while a job posts).
    pub on_call: Mutex<Option<Hook>>,
    /// The organization a token reaches (by the raw token; `org` when not listed).
    pub org_of: Mutex<BTreeMap<String, String>>,
    /// What `ticket` answers (`None`: created).
    pub ticket: Mutex<Option<Ticket>>,
}

impl FakePsa {
    fn call(&self, name: &'static str) -> Result<(), PsaError> {
        let before = {
            let mut calls = self.calls.lock().unwrap();
            let before = calls.iter().filter(|c| **c == name).count();
            calls.push(name);
            before
        };
        if let Some(hook) = &*self.on_call.lock().unwrap() {
            hook(name);
        }
        if let Some((ok, how)) = self.fail_after.lock().unwrap().get(name)
            && before >= *ok
        {
            return Err(how.error());
        }
        match self.fail.lock().unwrap().get(name) {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    pub fn fail(&self, call: &'static str, how: Fail) {
        self.fail.lock().unwrap().insert(call, how);
    }

    /// `call` answers well `ok` more times (counting those made so far), then fails as `how`.
    pub fn fail_after(&self, call: &'static str, ok: usize, how: Fail) {
        self.fail_after.lock().unwrap().insert(call, (ok, how));
    }

    /// The counts sent so far as (service id, account, value).
    pub fn sent(&self) -> Vec<(String, String, u64)> {
        let counts = self.counts.lock().unwrap();
        counts
            .iter()
            .map(|(s, a, n, _)| (s.clone(), a.clone(), *n))
            .collect()
    }

    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Psa for FakePsa {
    fn name(&self) -> &'static str {
        "Fake PSA"
    }
    async fn verify(&self, token: &ApiToken) -> Result<PsaIntegration, PsaError> {
        let delay = *self.verify_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.call("verify")?;
        let org = self
            .org_of
            .lock()
            .unwrap()
            .get(token.expose_secret())
            .cloned();
        Ok(PsaIntegration {
            id: org.unwrap_or_else(|| "org".into()),
            name: "Org".into(),
            live: *self.live.lock().unwrap(),
        })
    }
    async fn begin_setup(&self, _: &ApiToken, _: &PsaIntegration) -> Result<(), PsaError> {
        self.call("begin_setup")
    }
    async fn disconnect(&self, _: &ApiToken) -> Result<(), PsaError> {
        self.call("disconnect")
    }
    async fn report_health(&self, _: &ApiToken, health: Health) -> Result<(), PsaError> {
        self.call(match health {
            Health::Healthy => "report_health:healthy",
            Health::Failing => "report_health:failing",
        })
    }
    fn health_name(&self, health: Health) -> &'static str {
        match health {
            Health::Healthy => "healthy",
            Health::Failing => "failing",
        }
    }
    async fn publish_services(
        &self,
        _: &ApiToken,
        catalogue: &Catalogue,
        _: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        self.call("publish_services")?;
        let withheld = self.withheld.lock().unwrap().clone();
        let mut services = self.services.lock().unwrap();
        let mut created = 0;
        for s in catalogue.iter().filter(|s| !withheld.contains(&s.key)) {
            if !services.contains_key(&s.key) {
                services.insert(s.key.clone(), format!("svc-{}", s.key));
                created += 1;
            }
        }
        Ok(PublishedServices {
            ids: services.clone(),
            created,
        })
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        Ok(self.services.lock().unwrap().clone()) // the adapter's own records: no call logged
    }
    async fn accounts(&self, _: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        self.call("accounts")?;
        Ok(self.accounts.lock().unwrap().values().cloned().collect())
    }
    async fn create_accounts(
        &self,
        _: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        self.call("create_accounts")?;
        let refuse = self.refuse.lock().unwrap().clone();
        let mut out = AccountsCreated::default();
        for a in accounts {
            if refuse.contains(&a.id) {
                out.refused.insert(a.id.clone(), "bad name".into());
            } else {
                self.accounts
                    .lock()
                    .unwrap()
                    .insert(a.id.clone(), a.clone());
                out.created += 1;
            }
        }
        Ok(out)
    }
    async fn update_account(&self, _: &ApiToken, a: &PsaAccount) -> Result<AccountWrite, PsaError> {
        self.call("update_account")?;
        if self.refuse.lock().unwrap().contains(&a.id) {
            return Ok(AccountWrite::Refused("bad name".into()));
        }
        self.accounts
            .lock()
            .unwrap()
            .insert(a.id.clone(), a.clone());
        Ok(AccountWrite::Written)
    }
    async fn report_count(
        &self,
        _: &ApiToken,
        service: &str,
        account: &str,
        n: u64,
        batch: Batch,
    ) -> Result<CountOutcome, PsaError> {
        self.call("report_count")?;
        if self.unmapped.lock().unwrap().contains(account) {
            return Ok(CountOutcome::Unmapped);
        }
        self.counts
            .lock()
            .unwrap()
            .push((service.into(), account.into(), n, batch));
        Ok(CountOutcome::Accepted)
    }
    async fn raise_alert(&self, _: &ApiToken, alert: &PsaAlert) -> Result<AlertRef, PsaError> {
        self.call("raise_alert")?;
        let mut alerts = self.alerts.lock().unwrap();
        alerts.push(alert.clone());
        Ok(AlertRef(format!("msg-{}", alerts.len())))
    }
    async fn ticket(&self, _: &ApiToken, alert: &AlertRef) -> Result<Ticket, PsaError> {
        self.call("ticket")?;
        let told = self.ticket.lock().unwrap().clone();
        Ok(told.unwrap_or_else(|| Ticket::Created {
            id: format!("ticket-of-{}", alert.0),
        }))
    }
}
