//! A pending PSA ticket's item (`TICKET#<type>#<inc>#<messageId>`): an accepted alert whose ticket
//! is still pending, asked about for at most 30 days.

use crate::attrs::DAY_S;
use crate::keys::{ticket_sk, workspace_pk};
use psa_domain::ConnectorRef;
use psa_domain::ports::{AlertRef, PendingTicket};
use serde::{Deserialize, Serialize};

/// A pending ticket is asked about for at most this long (then forgotten by its TTL).
pub(crate) const TICKET_RETENTION_S: i64 = 30 * DAY_S;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TicketItem {
    pk: String,
    sk: String,
    account_id: String,
    kind: String,
    alert: String,
    audit_key: String,
    expires_at: i64,
}

pub(crate) fn ticket_item(c: &ConnectorRef, ticket: &PendingTicket, expires_at: i64) -> TicketItem {
    TicketItem {
        pk: workspace_pk(&c.workspace),
        sk: ticket_sk(c, &ticket.alert.0),
        account_id: ticket.account_id.clone(),
        kind: ticket.kind.clone(),
        alert: ticket.alert.0.clone(),
        audit_key: ticket.audit_key.clone(),
        expires_at,
    }
}

impl From<TicketItem> for PendingTicket {
    fn from(i: TicketItem) -> Self {
        PendingTicket {
            account_id: i.account_id,
            kind: i.kind,
            alert: AlertRef(i.alert),
            audit_key: i.audit_key,
        }
    }
}
