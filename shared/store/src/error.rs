use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use psa_domain::ports::StoreError;

/// Flattens an SDK error into the opaque store error, keeping the whole cause chain for the log.
pub fn store_error<E, R>(what: &str, err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError(format!("{what}: {}", DisplayErrorContext(&err)))
}

pub(crate) fn serde_error(what: &str, err: serde_dynamo::Error) -> StoreError {
    StoreError(format!("{what}: {err}"))
}

/// True when a write failed only because its condition did not hold (any DynamoDB operation).
pub(crate) fn is_condition_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    err: &SdkError<E, R>,
) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The answer of a conditional write whose condition failing means there was nothing to do
/// (a release of something no longer held, a record already there): `Ok` either way, the store's
/// error otherwise.
pub(crate) fn done_unless_failed<T, E, R>(
    res: Result<T, SdkError<E, R>>,
    what: &str,
) -> Result<(), StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match res {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(store_error(what, e)),
    }
}
