//! Local-stack helpers shared by the tests and the demo.
//!
//! * [`template_tables`] reads the DynamoDB tables from `template.yaml` — the one source of truth:
//!   local tables are created from the deployed definitions, never from a second copy.
//! * [`LocalAws`] is an SDK config pointed at DynamoDB Local and moto by the standard
//!   `AWS_ENDPOINT_URL_*` variables that `scripts/stack.sh` exports. Without them it panics
//!   loudly instead of skipping: tests run under `make test` / `scripts/test.sh`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use serde_norway::Value;

/// Errors of template parsing.
#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_norway::Error,
    },
    #[error("{path}: {message}")]
    Template { path: PathBuf, message: String },
    #[error("{path} has no AWS::DynamoDB::Table resource named {logical_id}")]
    TableNotFound { path: PathBuf, logical_id: String },
}

/// The repository root (the Cargo workspace), found from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("tools/devkit lives two levels below the repo root")
        .to_path_buf()
}

/// `template.yaml` at the repo root.
pub fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}

/// HASH or RANGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Hash,
    Range,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Hash => "HASH",
            KeyRole::Range => "RANGE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub attribute_name: String,
    pub role: KeyRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpec {
    pub name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub key_schema: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

impl IndexSpec {
    pub fn hash_key(&self) -> &str {
        key_of(&self.key_schema, KeyRole::Hash).expect("validated at parse time")
    }
    pub fn range_key(&self) -> Option<&str> {
        key_of(&self.key_schema, KeyRole::Range)
    }
}

/// One `AWS::DynamoDB::Table` of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    pub key_schema: Vec<KeyElement>,
    pub attribute_definitions: Vec<AttributeSpec>,
    pub global_secondary_indexes: Vec<IndexSpec>,
    pub local_secondary_indexes: Vec<IndexSpec>,
    /// `TimeToLiveSpecification.AttributeName` when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

impl TableSpec {
    pub fn hash_key(&self) -> &str {
        key_of(&self.key_schema, KeyRole::Hash).expect("validated at parse time")
    }
    pub fn range_key(&self) -> Option<&str> {
        key_of(&self.key_schema, KeyRole::Range)
    }
    pub fn gsi(&self, name: &str) -> Option<&IndexSpec> {
        self.global_secondary_indexes
            .iter()
            .find(|g| g.name == name)
    }
}

fn key_of(keys: &[KeyElement], role: KeyRole) -> Option<&str> {
    keys.iter()
        .find(|k| k.role == role)
        .map(|k| k.attribute_name.as_str())
}

/// Every `AWS::DynamoDB::Table` resource of a CloudFormation/SAM template, in file order.
/// Short tags (`!Ref`, `!Sub`, `!If`, `!GetAtt`, ...) parse as tagged values and are ignored
/// where they do not matter (table names, conditions); key and index definitions must be
/// literal, as they are in any deployable template.
pub fn template_tables(template: &Path) -> Result<Vec<TableSpec>, DevkitError> {
    let text = std::fs::read_to_string(template).map_err(|source| DevkitError::Io {
        path: template.to_path_buf(),
        source,
    })?;
    let doc: Value = serde_norway::from_str(&text).map_err(|source| DevkitError::Yaml {
        path: template.to_path_buf(),
        source,
    })?;
    let bad = |message: String| DevkitError::Template {
        path: template.to_path_buf(),
        message,
    };
    let resources = field(&doc, "Resources")
        .and_then(|r| untag(r).as_mapping())
        .ok_or_else(|| bad("no Resources mapping".into()))?;
    let mut tables = Vec::new();
    for (id, resource) in resources {
        let id = untag(id)
            .as_str()
            .ok_or_else(|| bad("a resource's logical id is not a string".into()))?;
        if field(resource, "Type").and_then(as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let ctx = |what: &str| format!("resource {id}: {what}");
        let props = field(resource, "Properties").ok_or_else(|| bad(ctx("no Properties")))?;

        let key_schema = keys(field(props, "KeySchema")).map_err(|m| bad(ctx(&m)))?;
        let attribute_definitions = seq(field(props, "AttributeDefinitions"))
            .ok_or_else(|| bad(ctx("AttributeDefinitions must be a list")))?
            .iter()
            .map(|a| {
                let name = field(a, "AttributeName").and_then(as_str);
                let ty = field(a, "AttributeType").and_then(as_str);
                match (name, ty) {
                    (Some(n), Some(t @ ("S" | "N" | "B"))) => Ok(AttributeSpec {
                        name: n.to_string(),
                        attribute_type: t.to_string(),
                    }),
                    _ => Err(bad(ctx(
                        "each AttributeDefinition needs a literal AttributeName and AttributeType S|N|B",
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let indexes = |name: &str| -> Result<Vec<IndexSpec>, DevkitError> {
            let Some(list) = field(props, name) else {
                return Ok(Vec::new());
            };
            let list =
                seq(Some(list)).ok_or_else(|| bad(ctx(&format!("{name} must be a list"))))?;
            list.iter()
                .map(|ix| {
                    let index_name = field(ix, "IndexName")
                        .and_then(as_str)
                        .ok_or_else(|| bad(ctx(&format!("{name}: IndexName must be literal"))))?;
                    let key_schema = keys(field(ix, "KeySchema"))
                        .map_err(|m| bad(ctx(&format!("index {index_name}: {m}"))))?;
                    let projection = field(ix, "Projection");
                    let projection_type = projection
                        .and_then(|p| field(p, "ProjectionType"))
                        .and_then(as_str)
                        .unwrap_or("ALL")
                        .to_string();
                    let non_key_attributes = projection
                        .and_then(|p| seq(field(p, "NonKeyAttributes")))
                        .map(|l| l.iter().filter_map(as_str).map(String::from).collect())
                        .unwrap_or_default();
                    Ok(IndexSpec {
                        name: index_name.to_string(),
                        key_schema,
                        projection_type,
                        non_key_attributes,
                    })
                })
                .collect()
        };
        let global_secondary_indexes = indexes("GlobalSecondaryIndexes")?;
        let local_secondary_indexes = indexes("LocalSecondaryIndexes")?;
        let ttl_attribute = field(props, "TimeToLiveSpecification").and_then(|t| {
            let enabled = field(t, "Enabled").map(untag);
            let on = matches!(enabled, Some(Value::Bool(true)))
                || enabled.and_then(Value::as_str) == Some("true");
            on.then(|| field(t, "AttributeName").and_then(as_str).map(String::from))
                .flatten()
        });

        // Every key must be defined, and every definition used (DynamoDB rejects both).
        let all_keys = key_schema
            .iter()
            .chain(global_secondary_indexes.iter().flat_map(|g| &g.key_schema))
            .chain(local_secondary_indexes.iter().flat_map(|g| &g.key_schema))
            .map(|k| k.attribute_name.as_str())
            .collect::<Vec<_>>();
        for k in &all_keys {
            if !attribute_definitions.iter().any(|a| a.name == *k) {
                return Err(bad(ctx(&format!(
                    "key attribute {k} has no AttributeDefinition"
                ))));
            }
        }
        for a in &attribute_definitions {
            if !all_keys.contains(&a.name.as_str()) {
                return Err(bad(ctx(&format!(
                    "AttributeDefinition {} is not used by any key",
                    a.name
                ))));
            }
        }

        tables.push(TableSpec {
            logical_id: id.to_string(),
            key_schema,
            attribute_definitions,
            global_secondary_indexes,
            local_secondary_indexes,
            ttl_attribute,
        });
    }
    Ok(tables)
}

/// The table `logical_id` of the template.
pub fn template_table(template: &Path, logical_id: &str) -> Result<TableSpec, DevkitError> {
    template_tables(template)?
        .into_iter()
        .find(|t| t.logical_id == logical_id)
        .ok_or_else(|| DevkitError::TableNotFound {
            path: template.to_path_buf(),
            logical_id: logical_id.to_string(),
        })
}

fn untag(v: &Value) -> &Value {
    let mut cur = v;
    while let Value::Tagged(t) = cur {
        cur = &t.value;
    }
    cur
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    untag(v).as_mapping()?.get(name)
}

fn as_str(v: &Value) -> Option<&str> {
    match v {
        // A tagged value (`!Ref X`) is not a literal.
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn seq(v: Option<&Value>) -> Option<&Vec<Value>> {
    untag(v?).as_sequence()
}

fn keys(v: Option<&Value>) -> Result<Vec<KeyElement>, String> {
    let list = seq(v).ok_or("KeySchema must be a list")?;
    let keys = list
        .iter()
        .map(|k| {
            let name = field(k, "AttributeName").and_then(as_str);
            let role = match field(k, "KeyType").and_then(as_str) {
                Some("HASH") => KeyRole::Hash,
                Some("RANGE") => KeyRole::Range,
                _ => return Err("KeyType must be HASH or RANGE".to_string()),
            };
            Ok(KeyElement {
                attribute_name: name.ok_or("AttributeName must be literal")?.to_string(),
                role,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let hashes = keys.iter().filter(|k| k.role == KeyRole::Hash).count();
    let ranges = keys.iter().filter(|k| k.role == KeyRole::Range).count();
    if hashes != 1 || ranges > 1 {
        return Err("KeySchema needs exactly one HASH and at most one RANGE key".into());
    }
    Ok(keys)
}

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

    #[test]
    fn short_tags_do_not_break_parsing() {
        let dir = std::env::temp_dir().join(format!("devkit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.yaml");
        std::fs::write(
            &path,
            r#"
Conditions:
  C: !Equals [!Ref P, ""]
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: !Ref V}
  T:
    Type: AWS::DynamoDB::Table
    Condition: C
    Properties:
      TableName: !Sub "${AWS::StackName}-t"
      BillingMode: !If [C, PAY_PER_REQUEST, PROVISIONED]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}, {AttributeName: n, AttributeType: N}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      LocalSecondaryIndexes:
        - IndexName: byN
          KeySchema: [{AttributeName: id, KeyType: HASH}, {AttributeName: n, KeyType: RANGE}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [a, b]}
      TimeToLiveSpecification: {AttributeName: exp, Enabled: true}
"#,
        )
        .unwrap();
        let tables = template_tables(&path).unwrap();
        assert_eq!(tables.len(), 1);
        let t = &tables[0];
        assert_eq!(t.logical_id, "T");
        assert_eq!(t.hash_key(), "id");
        assert_eq!(t.ttl_attribute.as_deref(), Some("exp"));
        assert_eq!(t.local_secondary_indexes[0].range_key(), Some("n"));
        assert_eq!(t.local_secondary_indexes[0].non_key_attributes, ["a", "b"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_undefined_key_attribute_is_an_error() {
        let dir = std::env::temp_dir().join(format!("devkit-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.yaml");
        std::fs::write(
            &path,
            "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n",
        )
        .unwrap();
        let err = template_tables(&path).unwrap_err().to_string();
        assert!(err.contains("pk"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
