//! The DynamoDB tables of `template.yaml`, read as the one source of truth for the local stack.

use crate::DevkitError;
use serde_norway::Value;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
