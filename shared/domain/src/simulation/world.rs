//! The simulated platform: MSPs (channel workspaces, some with a subchannel) and their managed
//! workspaces, kept in `Memory`'s read model; every change is versioned, so the checks can ask
//! what a pair's count was while a run was going, and the oracle what Coro reports now —
//! computed here, independently of the engine.

use crate::caller::WorkspaceType;
use crate::catalogue::Catalogue;
use crate::ids::WorkspaceId;
use crate::testing::Memory;
use crate::workspace::{Workspace, WorkspaceStatus};
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;

/// One MSP: its channel workspace, its organization in the PSA and the token it would paste now.
#[derive(Debug, Clone)]
pub struct Msp {
    pub id: WorkspaceId,
    pub org: String,
    pub token: String,
    pub tokens_issued: u32,
    /// Managed-workspace ids made so far (their numbering).
    pub made: u32,
}

/// (account id, catalogue key).
pub type Pair = (String, String);

pub struct Tree {
    pub msps: Vec<Msp>,
    pub catalogue: Catalogue,
    pub version: u64,
    /// Per pair, from which version on it counted what (`None`: not reported).
    pub history: BTreeMap<Pair, Vec<(u64, Option<u64>)>>,
    /// The MSP (index) of every workspace ever made.
    pub owner: BTreeMap<String, usize>,
}

fn id(raw: &str) -> WorkspaceId {
    WorkspaceId::parse(raw).unwrap()
}

impl Tree {
    pub fn new(rng: &mut StdRng, store: &Memory) -> Self {
        let mut tree = Self {
            msps: Vec::new(),
            catalogue: Catalogue::builtin(),
            version: 0,
            history: BTreeMap::new(),
            owner: BTreeMap::new(),
        };
        for m in 0..rng.random_range(1..=3) {
            let msp = Msp {
                id: id(&format!("m{m}")),
                org: format!("org-m{m}"),
                token: String::new(),
                tokens_issued: 0,
                made: 0,
            };
            tree.msps.push(msp);
            for _ in 0..rng.random_range(1..=4) {
                tree.add(rng, store, m, None);
            }
            if rng.random_bool(0.3) {
                let sub = id(&format!("m{m}-s"));
                let channel = Workspace {
                    id: sub.clone(),
                    parent: Some(tree.msps[m].id.clone()),
                    kind: WorkspaceType::Channel,
                    name: format!("m{m} sub"),
                    domain: None,
                    status: WorkspaceStatus::Subscription,
                    services: Default::default(),
                    protected_users: 0,
                    protected_devices: 0,
                };
                let parent = tree.msps[m].id.clone();
                store
                    .children
                    .lock()
                    .unwrap()
                    .entry(parent)
                    .or_default()
                    .push(channel);
                for _ in 0..rng.random_range(1..=2) {
                    tree.add(rng, store, m, Some(sub.clone()));
                }
            }
        }
        tree
    }

    fn keys(&self) -> Vec<String> {
        self.catalogue.iter().map(|s| s.key.clone()).collect()
    }

    /// A new managed workspace of MSP `m` (under `parent`, else its channel).
    pub fn add(&mut self, rng: &mut StdRng, store: &Memory, m: usize, parent: Option<WorkspaceId>) {
        let msp = &mut self.msps[m];
        msp.made += 1;
        let raw = format!("{}-w{}", msp.id, msp.made);
        let parent = parent.unwrap_or_else(|| msp.id.clone());
        let keys = self.keys();
        let services = (0..rng.random_range(0..=3))
            .map(|_| keys[rng.random_range(0..keys.len())].clone())
            .collect();
        let status = match rng.random_range(0..20) {
            0 => WorkspaceStatus::Inactive,
            1 | 2 => WorkspaceStatus::Trial,
            _ => WorkspaceStatus::Subscription,
        };
        let ws = Workspace {
            id: id(&raw),
            parent: Some(parent.clone()),
            kind: WorkspaceType::Child,
            name: format!("Acme {raw}"),
            domain: None,
            status,
            services,
            protected_users: rng.random_range(0..=30),
            protected_devices: rng.random_range(0..=30),
        };
        self.owner.insert(raw, m);
        store
            .children
            .lock()
            .unwrap()
            .entry(parent)
            .or_default()
            .push(ws.clone());
        self.version += 1;
        self.record(&ws, false);
    }

    /// Notes what `ws` counts now (`gone`: removed from the tree).
    fn record(&mut self, ws: &Workspace, gone: bool) {
        for s in self.catalogue.iter() {
            let now = (!gone && ws.status.is_reported() && ws.services.contains(&s.key))
                .then(|| ws.count_for(s.unit));
            let h = self
                .history
                .entry((ws.id.as_str().to_owned(), s.key.clone()))
                .or_default();
            if h.last().map(|(_, v)| *v) != Some(now) && (now.is_some() || !h.is_empty()) {
                h.push((self.version, now));
            }
        }
    }

    /// Every managed workspace (not channels), in a stable order.
    pub fn workspaces(store: &Memory) -> Vec<Workspace> {
        let all = store.children.lock().unwrap();
        all.values()
            .flatten()
            .filter(|w| w.kind == WorkspaceType::Child)
            .cloned()
            .collect()
    }

    /// Changes managed workspace `ws` with `change` (or removes it), and versions the change.
    pub fn edit(&mut self, store: &Memory, ws: &WorkspaceId, change: impl FnOnce(&mut Workspace)) {
        let changed = {
            let mut all = store.children.lock().unwrap();
            let found = all.values_mut().flatten().find(|w| &w.id == ws);
            found.map(|w| {
                change(w);
                w.clone()
            })
        };
        if let Some(w) = changed {
            self.version += 1;
            self.record(&w, false);
        }
    }

    pub fn remove(&mut self, store: &Memory, ws: &WorkspaceId) {
        let removed = {
            let mut all = store.children.lock().unwrap();
            let mut out = None;
            for list in all.values_mut() {
                if let Some(i) = list.iter().position(|w| &w.id == ws) {
                    out = Some(list.remove(i));
                }
            }
            out
        };
        if let Some(w) = removed {
            self.version += 1;
            self.record(&w, true);
        }
    }

    /// Whether `account`'s `key` counted `value` at some version from `since` on.
    pub fn counted(&self, pair: &Pair, value: u64, since: u64) -> bool {
        let Some(h) = self.history.get(pair) else {
            return false;
        };
        h.iter().enumerate().any(|(i, (_, v))| {
            let until = h.get(i + 1).map_or(u64::MAX, |(next, _)| *next);
            *v == Some(value) && until > since
        })
    }

    /// What Coro reports for MSP `m` now, by its own reading of the rules: every trial or
    /// subscription workspace under the channel (and under a subchannel without a connector of
    /// its own — none has one here), each enabled catalogue service counted in its unit.
    pub fn oracle(&self, store: &Memory, m: usize) -> BTreeMap<Pair, u64> {
        let all = store.children.lock().unwrap();
        let channel = &self.msps[m].id;
        let mut accounts = Vec::new();
        for w in all.get(channel).into_iter().flatten() {
            match w.kind {
                WorkspaceType::Child => accounts.push(w.clone()),
                WorkspaceType::Channel => {
                    accounts.extend(all.get(&w.id).into_iter().flatten().cloned())
                }
                WorkspaceType::Regular => {}
            }
        }
        let mut out = BTreeMap::new();
        for w in accounts.iter().filter(|w| w.status.is_reported()) {
            for s in self
                .catalogue
                .iter()
                .filter(|s| w.services.contains(&s.key))
            {
                let pair = (w.id.as_str().to_owned(), s.key.clone());
                out.insert(pair, w.count_for(s.unit));
            }
        }
        out
    }
}
