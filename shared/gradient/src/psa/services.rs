//! Publishing the catalogue as Gradient services.
//!
//! Services are vendor-wide and shared by every MSP, so their creation is serialised by a
//! vendor-wide lock and matched by the stable catalogue key kept in the [`ServiceRegistry`]. A
//! service that exists in Gradient under its catalogue name but is missing from the registry (a
//! crash between creating and recording) is adopted rather than created twice.

use crate::client::GradientClient;
use crate::types::{NewService, Vendor};
use psa_domain::ApiToken;
use psa_domain::catalogue::{Catalogue, Service};
use psa_domain::ports::{PsaError, PublishedServices, ServiceRegistry};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long the vendor-wide service lock is held at most, and how long a waiter waits for it.
const SERVICE_LOCK_TTL: Duration = Duration::from_secs(30);
const SERVICE_LOCK_WAIT: Duration = Duration::from_secs(20);

/// The service as the MSP sees it in Synthesize.
pub(crate) fn new_service(service: &Service) -> NewService {
    NewService {
        name: service.gradient_name(),
        description: service.gradient_description(),
        category: service.category.clone(),
        subcategory: service.subcategory.clone(),
    }
}

/// (name, id) of each Gradient service.
fn named(v: Vendor) -> Vec<(String, String)> {
    v.skus.into_iter().map(|s| (s.name, s.id)).collect()
}

/// Makes sure every catalogue service exists in Gradient; `owner` names the lock holder.
pub(crate) async fn publish(
    client: &GradientClient,
    registry: &dyn ServiceRegistry,
    token: &ApiToken,
    catalogue: &Catalogue,
    owner: &str,
) -> Result<PublishedServices, PsaError> {
    let known = registry.known().await?;
    if catalogue.iter().all(|s| known.contains_key(&s.key)) {
        return Ok(PublishedServices {
            ids: known,
            created: 0,
        });
    }
    let started = Instant::now();
    loop {
        if registry.try_lock(owner, SERVICE_LOCK_TTL).await? {
            break;
        }
        if started.elapsed() > SERVICE_LOCK_WAIT {
            return Err(PsaError::Unavailable {
                what: "another process held the service-creation lock for too long".into(),
                retry_after: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let result = create_missing(client, registry, token, catalogue).await;
    if let Err(e) = registry.unlock(owner).await {
        tracing::warn!(error = %e, "could not release the service lock; it expires by itself");
    }
    result
}

async fn create_missing(
    client: &GradientClient,
    registry: &dyn ServiceRegistry,
    token: &ApiToken,
    catalogue: &Catalogue,
) -> Result<PublishedServices, PsaError> {
    let mut known = registry.known().await?;
    let missing: Vec<_> = catalogue
        .iter()
        .filter(|s| !known.contains_key(&s.key))
        .collect();
    if missing.is_empty() {
        return Ok(PublishedServices {
            ids: known,
            created: 0,
        });
    }
    let mut in_gradient: HashMap<String, String> =
        named(client.vendor(token).await?).into_iter().collect();
    let mut created = 0;
    for service in missing {
        let name = service.gradient_name();
        let id = match in_gradient.get(&name) {
            Some(id) if !known.values().any(|k| k == id) => id.clone(),
            _ => {
                let after = named(client.create_service(token, &new_service(service)).await?);
                created += 1;
                let taken: BTreeSet<&String> = known.values().collect();
                let id = after
                    .iter()
                    .filter(|(n, id)| *n == name && !taken.contains(id))
                    .map(|(_, id)| id.clone())
                    .next_back()
                    .ok_or_else(|| {
                        PsaError::Unexpected(format!(
                            "Gradient did not list the service `{}` it just created",
                            service.key
                        ))
                    })?;
                in_gradient = after.into_iter().collect();
                id
            }
        };
        registry.record(&service.key, &id).await?;
        known.insert(service.key.clone(), id);
    }
    // Another writer may have recorded first: the registry is the truth.
    let ids: BTreeMap<String, String> = registry.known().await?;
    Ok(PublishedServices { ids, created })
}
