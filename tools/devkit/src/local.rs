//! An SDK config pointed at the local stack (DynamoDB Local, moto), and the tables created on it.

use crate::template::{IndexSpec, KeyElement, TableSpec, template_tables};
use crate::template_path;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

use std::time::Duration;

/// Names of the tables created by [`LocalAws::create_tables`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// From the template's `PsaTable` (env `PSA_TABLE`).
    pub psa: String,
    /// From the template's `WorkspacesTable` (env `WORKSPACES_TABLE`).
    pub workspaces: String,
}

/// SDK configuration for the local stack (DynamoDB Local + moto).
#[derive(Debug, Clone)]
pub struct LocalAws {
    pub sdk: aws_config::SdkConfig,
}

const ENDPOINT_VARS: [(&str, &str); 5] = [
    ("AWS_ENDPOINT_URL_DYNAMODB", "DynamoDB Local"),
    ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "moto (Secrets Manager)"),
    ("AWS_ENDPOINT_URL_SQS", "moto (SQS)"),
    ("AWS_ENDPOINT_URL_EVENTBRIDGE", "moto (EventBridge)"),
    ("AWS_ENDPOINT_URL_SESV2", "moto (SES v2)"),
];

fn stack_hint() -> &'static str {
    "run the tests with `make test` (or `scripts/test.sh`, or any command under `scripts/stack.sh CMD...`), \
     which starts DynamoDB Local, moto and the Gradient simulator and exports the variables"
}

impl LocalAws {
    /// Reads the local endpoints from the environment and checks that each server answers.
    ///
    /// # Panics
    /// When `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SECRETS_MANAGER` or
    /// `AWS_ENDPOINT_URL_SQS` is missing, or a server does not accept connections. Tests that
    /// need the local stack fail loudly; they never skip.
    pub async fn from_env() -> LocalAws {
        for (var, server) in ENDPOINT_VARS {
            let url = match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => v,
                _ => panic!(
                    "\n\n*** devkit: {var} is not set — the local stack ({server}) is not running.\n*** {}\n",
                    stack_hint()
                ),
            };
            let addr = host_port(&url).unwrap_or_else(|| {
                panic!("\n\n*** devkit: {var}={url} is not an http(s)://host:port URL\n")
            });
            let connect = tokio::net::TcpStream::connect(addr.clone());
            match tokio::time::timeout(Duration::from_secs(3), connect).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!(
                    "\n\n*** devkit: {server} at {url} ({var}) is unreachable: {e}\n*** {}\n",
                    stack_hint()
                ),
                Err(_) => panic!(
                    "\n\n*** devkit: {server} at {url} ({var}) did not accept a connection within 3 s\n*** {}\n",
                    stack_hint()
                ),
            }
        }
        let env = |k: &str, default: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        // Explicit region and credentials: never fall through to instance metadata.
        let credentials = aws_sdk_dynamodb::config::Credentials::new(
            env("AWS_ACCESS_KEY_ID", "test"),
            env("AWS_SECRET_ACCESS_KEY", "test"),
            None,
            None,
            "devkit-local",
        );
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(env("AWS_REGION", "us-east-1")))
            .credentials_provider(credentials)
            .load()
            .await;
        LocalAws { sdk }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// Creates `table_name` from `spec` (PAY_PER_REQUEST, GSIs, LSIs, then TTL) and waits until
    /// it is ACTIVE. An existing table of that name is left as it is.
    ///
    /// # Panics
    /// When DynamoDB Local rejects the table.
    pub async fn create_table(&self, spec: &TableSpec, table_name: &str) {
        let ddb = self.dynamodb();
        let key_schema = |keys: &[KeyElement]| -> Vec<KeySchemaElement> {
            keys.iter()
                .map(|k| {
                    KeySchemaElement::builder()
                        .attribute_name(&k.attribute_name)
                        .key_type(KeyType::from(k.role.as_str()))
                        .build()
                        .expect("key schema element is complete")
                })
                .collect()
        };
        let projection = |ix: &IndexSpec| {
            Projection::builder()
                .projection_type(ProjectionType::from(ix.projection_type.as_str()))
                .set_non_key_attributes(
                    (!ix.non_key_attributes.is_empty()).then(|| ix.non_key_attributes.clone()),
                )
                .build()
        };
        let mut req = ddb
            .create_table()
            .table_name(table_name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(&spec.key_schema)));
        for a in &spec.attribute_definitions {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&a.name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .expect("attribute definition is complete"),
            );
        }
        for g in &spec.global_secondary_indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(key_schema(&g.key_schema)))
                    .projection(projection(g))
                    .build()
                    .expect("GSI is complete"),
            );
        }
        for l in &spec.local_secondary_indexes {
            req = req.local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name(&l.name)
                    .set_key_schema(Some(key_schema(&l.key_schema)))
                    .projection(projection(l))
                    .build()
                    .expect("LSI is complete"),
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                return;
            }
            Err(e) => panic!(
                "devkit: CreateTable {table_name} (from {}) failed: {}",
                spec.logical_id,
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ),
        }

        // DynamoDB Local makes tables ACTIVE at once; poll anyway, bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = ddb
                .describe_table()
                .table_name(table_name)
                .send()
                .await
                .ok()
                .and_then(|d| d.table)
                .and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("devkit: table {table_name} not ACTIVE after 30 s (status {status:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        if let Some(attr) = &spec.ttl_attribute {
            let ttl = TimeToLiveSpecification::builder()
                .attribute_name(attr)
                .enabled(true)
                .build()
                .expect("TTL spec is complete");
            if let Err(e) = ddb
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(ttl)
                .send()
                .await
            {
                // Not every DynamoDB Local build supports TTL; nothing relies on expiry locally.
                eprintln!(
                    "devkit: TTL on {table_name}.{attr} not set: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                );
            }
        }
    }

    /// Creates `{prefix}-psa` and `{prefix}-workspaces` from the template's `PsaTable` and
    /// `WorkspacesTable`.
    ///
    /// # Panics
    /// When the template cannot be read or a table cannot be created.
    pub async fn create_tables(&self, prefix: &str) -> Tables {
        let template = template_path();
        let specs = template_tables(&template).unwrap_or_else(|e| panic!("devkit: {e}"));
        let spec = |id: &str| {
            specs
                .iter()
                .find(|t| t.logical_id == id)
                .unwrap_or_else(|| panic!("devkit: {} has no table {id}", template.display()))
        };
        let tables = Tables {
            psa: format!("{prefix}-psa"),
            workspaces: format!("{prefix}-workspaces"),
        };
        tokio::join!(
            self.create_table(spec("PsaTable"), &tables.psa),
            self.create_table(spec("WorkspacesTable"), &tables.workspaces),
        );
        tables
    }

    /// Creates an SQS queue in moto and returns its URL.
    pub async fn create_queue(&self, name: &str) -> String {
        let out = self
            .sqs()
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "devkit: CreateQueue {name} failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            });
        out.queue_url
            .unwrap_or_else(|| panic!("devkit: CreateQueue {name} returned no URL"))
    }

    /// Creates a secret in moto whose SecretString is `value` and returns its ARN (e.g. the
    /// Gradient vendor key for `GRADIENT_VENDOR_KEY_SECRET_ID`).
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        let out = self
            .secrets()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "devkit: CreateSecret {name} failed: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            });
        out.arn
            .unwrap_or_else(|| panic!("devkit: CreateSecret {name} returned no ARN"))
    }

    /// A fresh name prefix for per-test isolation: `t-{label}-{8 hex}`, valid for DynamoDB
    /// table, SQS queue and secret names.
    pub fn unique_prefix(label: &str) -> String {
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("t-{clean}-{}", &id[..8])
    }
}

/// `http://127.0.0.1:8000/` → `127.0.0.1:8000`.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        return Some(authority.to_string());
    }
    match scheme {
        "http" => Some(format!("{authority}:80")),
        "https" => Some(format!("{authority}:443")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parses_endpoint_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:8000").as_deref(),
            Some("127.0.0.1:8000")
        );
        assert_eq!(
            host_port("http://localhost:5/x").as_deref(),
            Some("localhost:5")
        );
        assert_eq!(
            host_port("https://example.com").as_deref(),
            Some("example.com:443")
        );
        assert_eq!(host_port("nonsense"), None);
    }

    #[test]
    fn unique_prefix_is_a_valid_name_and_unique() {
        let a = LocalAws::unique_prefix("My Test_1");
        let b = LocalAws::unique_prefix("My Test_1");
        assert_ne!(a, b);
        assert!(a.starts_with("t-my-test-1-"), "{a}");
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
    }
}
