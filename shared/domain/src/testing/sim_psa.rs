//! A PSA with the state the simulation checks against: organizations reached by tokens (a
//! regenerated token is rejected), their accounts, the count each holds per (account, service),
//! pairs the MSP has not mapped (404: `Unmapped`), and a real one's faults drawn from
//! [`Faults`]: 429 (retried after a backoff, or given up), 5xx (for a count, sometimes after it
//! landed), 403, 401 for every MSP while the vendor key is broken, slow answers. A call past the
//! job's time bound is given up at once, as the adapter does. Every count is logged.

use super::faults::{Faults, PsaFault, actor};
use crate::catalogue::Catalogue;
use crate::ids::WorkspaceId;
use crate::ports::*;
use crate::secret::ApiToken;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One MSP's organization in the PSA.
#[derive(Debug, Clone, Default)]
pub struct Org {
    pub accounts: BTreeMap<String, PsaAccount>,
    /// The count the PSA holds per (account id, catalogue key).
    pub values: BTreeMap<(String, String), u64>,
    /// Pairs the MSP has not mapped: counts for them are answered 404.
    pub unmapped: BTreeSet<(String, String)>,
    pub live: bool,
}

/// A count the PSA was sent.
#[derive(Debug, Clone)]
pub struct Post {
    pub actor: Option<u32>,
    pub org: String,
    pub account: String,
    pub service: String,
    pub value: u64,
    /// The PSA holds the value now (accepted, or landed before its answer was lost).
    pub landed: bool,
}

#[derive(Default)]
pub struct PsaState {
    pub services: BTreeMap<String, String>,
    /// Token → (organization, still accepted).
    pub tokens: BTreeMap<String, (String, bool)>,
    pub orgs: BTreeMap<String, Org>,
    pub vendor_key_broken: bool,
    /// Accounts the PSA refuses to create or update (a 400).
    pub refuse: BTreeSet<String>,
    /// Counts since the simulation last looked, in the order they landed.
    pub posts: Vec<Post>,
    /// Counts in flight per actor now, and the most at once since the simulation last looked.
    pub in_flight: BTreeMap<u32, usize>,
    pub most_in_flight: BTreeMap<u32, usize>,
    /// Every call by actor and method, since the simulation last looked.
    pub calls: Vec<(Option<u32>, &'static str)>,
    /// Planted fault: every this many landed counts (0: none) one is answered accepted and kept
    /// nowhere.
    pub drop_every: u32,
    landed_count: u32,
}

pub struct SimPsa {
    pub state: Mutex<PsaState>,
    faults: Arc<Faults>,
}

/// Counts one in flight for an actor until dropped (also when the call is cancelled).
struct InFlight<'a>(&'a SimPsa, Option<u32>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(a) = self.1 {
            let mut st = self.0.state.lock().unwrap();
            *st.in_flight.entry(a).or_default() -= 1;
        }
    }
}

fn unavailable(what: &str) -> PsaError {
    PsaError::Unavailable {
        what: what.into(),
        retry_after: None,
    }
}

impl SimPsa {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self {
            state: Mutex::default(),
            faults,
        }
    }

    /// A new token reaching `org` (created with the organization when needed).
    pub fn issue(&self, org: &str, raw: &str) -> ApiToken {
        let mut st = self.state.lock().unwrap();
        st.orgs.entry(org.to_owned()).or_default();
        st.tokens.insert(raw.to_owned(), (org.to_owned(), true));
        ApiToken::parse(raw).unwrap()
    }

    /// The MSP regenerates its token: every earlier one of `org` is rejected from now on.
    pub fn revoke_all(&self, org: &str) {
        let mut st = self.state.lock().unwrap();
        for (o, ok) in st.tokens.values_mut() {
            if o == org {
                *ok = false;
            }
        }
    }

    pub fn accepts(&self, raw: &str) -> bool {
        let st = self.state.lock().unwrap();
        !st.vendor_key_broken && st.tokens.get(raw).is_some_and(|(_, ok)| *ok)
    }

    /// The sync part of every call: logged, the time bound, the token, the fault.
    fn admit(
        &self,
        op: &'static str,
        token: &ApiToken,
    ) -> Result<(String, Duration, Option<PsaFault>), PsaError> {
        crate::calls::sent();
        let mut st = self.state.lock().unwrap();
        st.calls.push((actor(), op));
        if crate::deadline::remaining() == Some(Duration::ZERO) {
            return Err(unavailable("the job's time bound"));
        }
        let org = match st.tokens.get(token.expose_secret()) {
            Some((org, true)) if !st.vendor_key_broken => org.clone(),
            _ => {
                crate::calls::answered(401);
                return Err(PsaError::TokenRejected);
            }
        };
        drop(st);
        let (delay, fault) = self.faults.psa_call(op == "report_count");
        match fault {
            Some(PsaFault::Retried) => {
                crate::calls::answered(429);
                crate::calls::sent();
            }
            Some(PsaFault::Throttled) => crate::calls::answered(429),
            _ => {}
        }
        Ok((org, delay, fault))
    }

    /// The asynchronous rest: the answer's delay, then the fault (`LostAnswer` after the effect).
    async fn answer(delay: Duration, fault: Option<PsaFault>) -> Result<(), PsaError> {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fault {
            None | Some(PsaFault::Retried) => Ok(()),
            Some(PsaFault::Throttled) => Err(PsaError::Unavailable {
                what: "429 after the adapter's retries".into(),
                retry_after: Some(Duration::from_secs(2)),
            }),
            Some(PsaFault::ServerError | PsaFault::LostAnswer) => Err(unavailable("503")),
            Some(PsaFault::Forbidden) => Err(PsaError::Forbidden("anomaly detected".into())),
        }
    }

    /// A call that changes nothing in the PSA until it answered well.
    async fn call(&self, op: &'static str, token: &ApiToken) -> Result<String, PsaError> {
        let (org, delay, fault) = self.admit(op, token)?;
        let fault = fault.map(|f| match f {
            PsaFault::LostAnswer => PsaFault::ServerError,
            f => f,
        });
        Self::answer(delay, fault).await?;
        Ok(org)
    }

    fn with_org<T>(&self, org: &str, f: impl FnOnce(&mut Org, &BTreeSet<String>) -> T) -> T {
        let mut st = self.state.lock().unwrap();
        let refuse = st.refuse.clone();
        f(st.orgs.entry(org.to_owned()).or_default(), &refuse)
    }
}

#[async_trait]
impl Psa for SimPsa {
    fn name(&self) -> &'static str {
        "Sim PSA"
    }
    async fn verify(&self, token: &ApiToken) -> Result<PsaIntegration, PsaError> {
        let org = self.call("verify", token).await?;
        let live = self.with_org(&org, |o, _| o.live);
        Ok(PsaIntegration {
            id: org.clone(),
            name: org,
            live,
        })
    }
    async fn begin_setup(&self, token: &ApiToken, _: &PsaIntegration) -> Result<(), PsaError> {
        let org = self.call("begin_setup", token).await?;
        self.with_org(&org, |o, _| o.live = true);
        Ok(())
    }
    async fn disconnect(&self, token: &ApiToken) -> Result<(), PsaError> {
        let org = self.call("disconnect", token).await?;
        self.with_org(&org, |o, _| o.live = false);
        Ok(())
    }
    async fn report_health(&self, token: &ApiToken, _: Health) -> Result<(), PsaError> {
        self.call("report_health", token).await.map(|_| ())
    }
    fn health_name(&self, health: Health) -> &'static str {
        match health {
            Health::Healthy => "active",
            Health::Failing => "error",
        }
    }
    async fn publish_services(
        &self,
        token: &ApiToken,
        catalogue: &Catalogue,
        _: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        self.call("publish_services", token).await?;
        let mut st = self.state.lock().unwrap();
        let mut created = 0;
        for s in catalogue.iter() {
            if !st.services.contains_key(&s.key) {
                st.services.insert(s.key.clone(), format!("svc-{}", s.key));
                created += 1;
            }
        }
        Ok(PublishedServices {
            ids: st.services.clone(),
            created,
        })
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        Ok(self.state.lock().unwrap().services.clone())
    }
    async fn accounts(&self, token: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        let org = self.call("accounts", token).await?;
        Ok(self.with_org(&org, |o, _| o.accounts.values().cloned().collect()))
    }
    async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        let org = self.call("create_accounts", token).await?;
        Ok(self.with_org(&org, |o, refuse| {
            let mut out = AccountsCreated::default();
            for a in accounts {
                if refuse.contains(&a.id) {
                    out.refused.insert(a.id.clone(), "bad name".into());
                } else {
                    o.accounts.insert(a.id.clone(), a.clone());
                    out.created += 1;
                }
            }
            out
        }))
    }
    async fn update_account(
        &self,
        token: &ApiToken,
        a: &PsaAccount,
    ) -> Result<AccountWrite, PsaError> {
        let org = self.call("update_account", token).await?;
        Ok(self.with_org(&org, |o, refuse| {
            if refuse.contains(&a.id) {
                return AccountWrite::Refused("bad name".into());
            }
            o.accounts.insert(a.id.clone(), a.clone());
            AccountWrite::Written
        }))
    }
    async fn report_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account: &str,
        n: u64,
        _: Batch,
    ) -> Result<CountOutcome, PsaError> {
        let me = actor();
        if let Some(a) = me {
            let mut st = self.state.lock().unwrap();
            let now = st.in_flight.entry(a).or_default();
            *now += 1;
            let now = *now;
            let most = st.most_in_flight.entry(a).or_default();
            *most = (*most).max(now);
        }
        let _counted = InFlight(self, me);
        let (org, delay, fault) = self.admit("report_count", token)?;
        let key = service_id
            .strip_prefix("svc-")
            .unwrap_or(service_id)
            .to_owned();
        let pair = (account.to_owned(), key.clone());
        // The count reaches the PSA first; its answer may be slow, lost, or an error.
        let lands = matches!(fault, None | Some(PsaFault::Retried | PsaFault::LostAnswer));
        let outcome = {
            let mut st = self.state.lock().unwrap();
            let o = st.orgs.entry(org.clone()).or_default();
            let mapped = o.accounts.contains_key(account) && !o.unmapped.contains(&pair);
            let landed = lands && mapped;
            if landed {
                st.landed_count += 1;
            }
            let dropped = st.drop_every > 0 && st.landed_count.is_multiple_of(st.drop_every);
            let o = st.orgs.entry(org.clone()).or_default();
            if landed && !dropped {
                o.values.insert(pair, n);
            }
            if lands {
                st.posts.push(Post {
                    actor: me,
                    org,
                    account: account.to_owned(),
                    service: key,
                    value: n,
                    landed,
                });
            }
            if mapped {
                CountOutcome::Accepted
            } else {
                CountOutcome::Unmapped
            }
        };
        Self::answer(delay, fault).await?;
        Ok(outcome)
    }
    async fn raise_alert(&self, token: &ApiToken, _: &PsaAlert) -> Result<AlertRef, PsaError> {
        self.call("raise_alert", token).await?;
        Ok(AlertRef(format!("alert-{}", self.faults.upto(1_000_000))))
    }
    async fn ticket(&self, token: &ApiToken, _: &AlertRef) -> Result<Ticket, PsaError> {
        self.call("ticket", token).await?;
        Ok(match self.faults.upto(2) {
            0 => Ticket::Created { id: "t-1".into() },
            1 => Ticket::Pending,
            _ => Ticket::Failed {
                error: "no board".into(),
            },
        })
    }
}
