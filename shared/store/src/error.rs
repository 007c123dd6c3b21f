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
