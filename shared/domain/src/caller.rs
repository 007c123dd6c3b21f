//! The caller, from the JWT claims API Gateway validated (contract).

use crate::ids::{UserId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceType {
    Channel,
    Child,
    Regular,
}

impl WorkspaceType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "channel" => Some(Self::Channel),
            "child" => Some(Self::Child),
            "regular" => Some(Self::Regular),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// Who is asking. The workspace always comes from here, never from a path or a body. Its
/// `Debug` (what `tracing::instrument` logs of it) leaves the email address out.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub workspace: WorkspaceId,
    pub workspace_type: WorkspaceType,
    pub role: Role,
    /// The optional `email` claim: a new connector's default notification address.
    pub email: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user", &self.user)
            .field("workspace", &self.workspace)
            .field("workspace_type", &self.workspace_type)
            .field("role", &self.role)
            .field("email", &self.email.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// What a caller may do, checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// PSA connectors live in channel workspaces only.
    #[error("the caller's workspace is not a channel workspace")]
    NotChannelWorkspace,
    /// Writes need the admin role.
    #[error("the caller is not an admin")]
    AdminRequired,
}

impl Caller {
    pub fn may_read(&self) -> Result<(), AccessError> {
        if self.workspace_type != WorkspaceType::Channel {
            return Err(AccessError::NotChannelWorkspace);
        }
        Ok(())
    }

    pub fn may_write(&self) -> Result<(), AccessError> {
        self.may_read()?;
        if self.role != Role::Admin {
            return Err(AccessError::AdminRequired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn the_debug_of_a_caller_names_no_email_address() {
        let c = Caller {
            user: UserId::parse("auth0|abc").unwrap(),
            workspace: WorkspaceId::parse("msp").unwrap(),
            workspace_type: WorkspaceType::Channel,
            role: Role::Admin,
            email: Some("jane@acme.example".into()),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("jane@acme.example"), "{shown}");
        assert!(shown.contains("<set>") && shown.contains("auth0|abc"));
    }
}
