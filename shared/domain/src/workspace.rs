//! Workspaces as the Coro platform's read model holds them, and which of them a connector reports.

use crate::caller::WorkspaceType;
use crate::catalogue::{Catalogue, Service, Unit};
use crate::ids::WorkspaceId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceStatus {
    Trial,
    Subscription,
    Inactive,
    Archived,
}

impl WorkspaceStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "trial" => Some(Self::Trial),
            "subscription" => Some(Self::Subscription),
            "inactive" => Some(Self::Inactive),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }

    /// Trial and subscription workspaces are billed; inactive and archived have nothing enabled.
    pub fn is_reported(self) -> bool {
        matches!(self, Self::Trial | Self::Subscription)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub parent: Option<WorkspaceId>,
    pub kind: WorkspaceType,
    pub name: String,
    pub domain: Option<String>,
    pub status: WorkspaceStatus,
    /// Catalogue keys of enabled modules and add-ons (bundles already expanded).
    pub services: BTreeSet<String>,
    pub protected_users: u64,
    pub protected_devices: u64,
}

impl Workspace {
    /// The services this workspace is billed for, in catalogue order. Keys the catalogue does not
    /// know are ignored (a newer platform may list services this build cannot price).
    pub fn enabled_services<'c>(&self, catalogue: &'c Catalogue) -> Vec<&'c Service> {
        if !self.status.is_reported() {
            return Vec::new();
        }
        catalogue
            .iter()
            .filter(|s| self.services.contains(&s.key))
            .collect()
    }

    pub fn count_for(&self, unit: Unit) -> u64 {
        match unit {
            Unit::ProtectedUsers => self.protected_users,
            Unit::ProtectedDevices => self.protected_devices,
        }
    }
}

/// Which children of a node of the workspace tree are accounts, and which subtrees to descend.
///
/// The one rule (a guess, kept in one place): child workspaces are accounts; a subchannel is
/// descended unless it has its own PSA connector (then its subtree is that connector's);
/// regular workspaces are never managed.
#[derive(Debug, PartialEq, Eq)]
pub enum TreeStep {
    Account,
    Descend,
    Skip,
}

pub fn tree_step(child: &Workspace, has_own_connector: bool) -> TreeStep {
    match child.kind {
        WorkspaceType::Child => TreeStep::Account,
        WorkspaceType::Channel if has_own_connector => TreeStep::Skip,
        WorkspaceType::Channel => TreeStep::Descend,
        WorkspaceType::Regular => TreeStep::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(status: WorkspaceStatus, services: &[&str]) -> Workspace {
        Workspace {
            id: WorkspaceId::parse("w1").unwrap(),
            parent: None,
            kind: WorkspaceType::Child,
            name: "W1".into(),
            domain: None,
            status,
            services: services.iter().map(|s| s.to_string()).collect(),
            protected_users: 7,
            protected_devices: 3,
        }
    }

    #[test]
    fn inactive_and_archived_have_nothing_enabled() {
        let c = Catalogue::builtin();
        assert_eq!(
            ws(WorkspaceStatus::Subscription, &["EDR", "NOPE"])
                .enabled_services(&c)
                .len(),
            1
        );
        assert_eq!(
            ws(WorkspaceStatus::Trial, &["EDR"])
                .enabled_services(&c)
                .len(),
            1
        );
        assert!(
            ws(WorkspaceStatus::Inactive, &["EDR"])
                .enabled_services(&c)
                .is_empty()
        );
        assert!(
            ws(WorkspaceStatus::Archived, &["EDR"])
                .enabled_services(&c)
                .is_empty()
        );
    }

    #[test]
    fn subchannels_with_their_own_connector_are_skipped() {
        let mut w = ws(WorkspaceStatus::Subscription, &[]);
        assert_eq!(tree_step(&w, false), TreeStep::Account);
        w.kind = WorkspaceType::Channel;
        assert_eq!(tree_step(&w, false), TreeStep::Descend);
        assert_eq!(tree_step(&w, true), TreeStep::Skip);
        w.kind = WorkspaceType::Regular;
        assert_eq!(tree_step(&w, false), TreeStep::Skip);
    }
}
