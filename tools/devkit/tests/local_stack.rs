//! Runs under `scripts/stack.sh` (e.g. `make test`): DynamoDB Local and moto are real servers.

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ProjectionType};
use devkit::{KeyRole, LocalAws, template_path, template_tables};

#[test]
fn template_yields_psa_and_workspaces_tables() {
    let tables = template_tables(&template_path()).expect("template.yaml parses");
    let psa = tables
        .iter()
        .find(|t| t.logical_id == "PsaTable")
        .expect("PsaTable");
    assert_eq!(psa.hash_key(), "pk");
    assert_eq!(psa.range_key(), Some("sk"));
    let by_status = psa.gsi("byStatus").expect("byStatus GSI");
    assert_eq!(by_status.hash_key(), "gsi1pk");
    assert_eq!(by_status.range_key(), Some("gsi1sk"));
    assert_eq!(by_status.projection_type, "ALL");
    assert_eq!(psa.ttl_attribute.as_deref(), Some("expiresAt"));
    assert!(
        psa.attribute_definitions
            .iter()
            .all(|a| a.attribute_type == "S")
    );

    let ws = tables
        .iter()
        .find(|t| t.logical_id == "WorkspacesTable")
        .expect("WorkspacesTable");
    assert_eq!(ws.key_schema.len(), 1);
    assert_eq!(ws.key_schema[0].attribute_name, "workspaceId");
    assert_eq!(ws.key_schema[0].role, KeyRole::Hash);
    let by_parent = ws.gsi("byParent").expect("byParent GSI");
    assert_eq!(by_parent.hash_key(), "parentWorkspaceId");
    assert_eq!(by_parent.range_key(), None);
    assert_eq!(by_parent.projection_type, "ALL");
}

#[tokio::test]
async fn created_tables_have_the_template_indexes() {
    let aws = LocalAws::from_env().await;
    let prefix = LocalAws::unique_prefix("devkit-describe");
    let tables = aws.create_tables(&prefix).await;
    assert_eq!(tables.psa, format!("{prefix}-psa"));
    assert_eq!(tables.workspaces, format!("{prefix}-workspaces"));
    let ddb = aws.dynamodb();

    let psa = ddb
        .describe_table()
        .table_name(&tables.psa)
        .send()
        .await
        .expect("describe psa")
        .table
        .expect("table");
    let gsi = psa
        .global_secondary_indexes()
        .iter()
        .find(|g| g.index_name() == Some("byStatus"))
        .expect("byStatus exists");
    let keys: Vec<_> = gsi
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(
        keys,
        [("gsi1pk", KeyType::Hash), ("gsi1sk", KeyType::Range)]
    );
    assert_eq!(
        gsi.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );

    let ws = ddb
        .describe_table()
        .table_name(&tables.workspaces)
        .send()
        .await
        .expect("describe workspaces")
        .table
        .expect("table");
    assert!(
        ws.global_secondary_indexes()
            .iter()
            .any(|g| g.index_name() == Some("byParent"))
    );

    let ttl = ddb
        .describe_time_to_live()
        .table_name(&tables.psa)
        .send()
        .await
        .expect("describe TTL")
        .time_to_live_description
        .expect("TTL description");
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));

    // Creating again is a no-op, not an error (the demo may re-run on a reused stack).
    aws.create_tables(&prefix).await;
}

#[tokio::test]
async fn by_parent_query_finds_children() {
    let aws = LocalAws::from_env().await;
    let tables = aws
        .create_tables(&LocalAws::unique_prefix("devkit-byparent"))
        .await;
    let ddb = aws.dynamodb();
    let s = |v: &str| AttributeValue::S(v.to_string());
    for (id, parent, ty) in [
        ("ch-1", None, "channel"),
        ("c-1", Some("ch-1"), "child"),
        ("c-2", Some("ch-1"), "child"),
        ("c-3", Some("ch-2"), "child"),
    ] {
        let mut put = ddb
            .put_item()
            .table_name(&tables.workspaces)
            .item("workspaceId", s(id))
            .item("type", s(ty))
            .item("name", s(&format!("Workspace {id}")))
            .item("status", s("subscription"))
            .item("protectedUsers", AttributeValue::N("3".into()));
        if let Some(p) = parent {
            put = put.item("parentWorkspaceId", s(p));
        }
        put.send().await.expect("put workspace");
    }
    let out = ddb
        .query()
        .table_name(&tables.workspaces)
        .index_name("byParent")
        .key_condition_expression("parentWorkspaceId = :p")
        .expression_attribute_values(":p", s("ch-1"))
        .send()
        .await
        .expect("query byParent");
    let mut ids: Vec<_> = out
        .items()
        .iter()
        .map(|i| i["workspaceId"].as_s().unwrap().clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["c-1", "c-2"]);
    // Projection ALL: the whole item comes back from the index.
    assert!(out.items().iter().all(|i| i.contains_key("protectedUsers")));
}

#[tokio::test]
async fn queue_and_secret_in_moto() {
    let aws = LocalAws::from_env().await;
    let prefix = LocalAws::unique_prefix("devkit-moto");
    let url = aws.create_queue(&format!("{prefix}-sync")).await;
    assert!(url.contains(&prefix), "{url}");
    aws.sqs()
        .send_message()
        .queue_url(&url)
        .message_body("{}")
        .send()
        .await
        .expect("send");
    let arn = aws
        .create_secret(&format!("{prefix}/vendor-key"), "vk-123")
        .await;
    let got = aws
        .secrets()
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .expect("get secret");
    assert_eq!(got.secret_string(), Some("vk-123"));
}
