//! A connector's settings, changed by an admin (rate-limited, every change audited).

use super::*;
use crate::audit::AuditAction;
use crate::caller::Caller;
use crate::connector::{Connector, SettingsPatch};
use crate::ids::ConnectorType;
use crate::usecase::sync::SyncPolicy;
use crate::usecase::{Core, audit, now, update_connector};

/// Changes the connector's settings (only those `patch` names); every change is audited. A
/// workspace has `settings_changes` per `settings_window` (each one is an audit entry kept 401
/// days).
#[tracing::instrument(skip(core, policy), fields(workspace_id = %caller.workspace, connector_id = kind.as_str()))]
pub async fn update_settings(
    core: &Core,
    policy: &SyncPolicy,
    caller: &Caller,
    kind: ConnectorType,
    patch: SettingsPatch,
) -> Result<Connector, ConnectorError> {
    let current = get(core, caller, kind).await?;
    let mut probe = current.settings.clone();
    if probe.apply(&patch).is_empty() {
        return Ok(current); // nothing to change: nothing counted, nothing written
    }
    let (n, left) = core
        .attempts
        .attempt(&caller.workspace, "settings", policy.settings_window)
        .await?;
    if n > policy.settings_changes {
        return Err(ConnectorError::TooManyChanges(left));
    }
    let mut changed = Vec::new();
    let updated = update_connector(core, &caller.workspace, kind, |c| {
        if c.is_deleting() {
            return false;
        }
        changed = c.settings.apply(&patch);
        if !changed.is_empty() {
            c.updated_at = now();
        }
        !changed.is_empty()
    })
    .await?;
    let connector = match updated {
        Some(c) => c,
        None => get(core, caller, kind).await?, // nothing to change (or gone: then 404)
    };
    if !changed.is_empty() {
        let mut event = by(caller, AuditAction::SettingsChanged, kind);
        for (setting, value) in changed {
            event = event.with(setting, value);
        }
        audit(core, &caller.workspace, event).await;
    }
    Ok(connector)
}
