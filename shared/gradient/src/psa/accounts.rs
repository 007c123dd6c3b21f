//! Creating accounts in bulk: Gradient refuses a whole batch for one bad account (400) and
//! answers 409 when another run created some of them first.

use crate::client::GradientClient;
use crate::error::GradientError;
use crate::types::NewAccount;
use psa_domain::ApiToken;
use psa_domain::ports::{AccountsCreated, PsaAccount, PsaError};
use std::collections::BTreeSet;

fn new_accounts(accounts: &[PsaAccount]) -> Vec<NewAccount> {
    accounts
        .iter()
        .map(|a| NewAccount {
            id: a.id.clone(),
            name: a.name.clone(),
            description: a.description.clone(),
        })
        .collect()
}

/// Whether the answer is a refusal of this request (a 400, or an answer that makes no sense):
/// the account is refused, the run goes on.
pub(crate) fn is_refusal(e: &GradientError) -> bool {
    matches!(
        e,
        GradientError::BadRequest { .. }
            | GradientError::Malformed { .. }
            | GradientError::Config { .. }
    )
}

/// Creates `batch`; a 400 splits it in halves until each refused account stands alone (a few
/// extra calls per refused account, none when nothing is refused). A 409 (a concurrent run created
/// some) re-reads the accounts and creates only what is still missing.
pub(crate) async fn create_isolating(
    client: &GradientClient,
    token: &ApiToken,
    batch: &[PsaAccount],
) -> Result<AccountsCreated, PsaError> {
    let mut out = AccountsCreated::default();
    let mut todo: Vec<&[PsaAccount]> = vec![batch];
    while let Some(part) = todo.pop() {
        match client.create_accounts(token, &new_accounts(part)).await {
            Ok(_) => out.created += part.len() as u64,
            Err(e) if is_refusal(&e) && part.len() == 1 => {
                let why = e.to_string();
                tracing::warn!(account_id = %part[0].id, %why, "Gradient refused an account");
                out.refused.insert(part[0].id.clone(), why);
            }
            Err(e) if is_refusal(&e) => {
                let (a, b) = part.split_at(part.len() / 2);
                todo.push(b);
                todo.push(a);
            }
            Err(GradientError::Conflict { .. }) => {
                let now: BTreeSet<String> = client
                    .list_accounts(token)
                    .await?
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                let rest: Vec<PsaAccount> = part
                    .iter()
                    .filter(|a| !now.contains(&a.id))
                    .cloned()
                    .collect();
                if !rest.is_empty() {
                    client.create_accounts(token, &new_accounts(&rest)).await?;
                    out.created += rest.len() as u64;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
