//! The stub's edge with real API Gateway v2 payloads (tests/events/http-api-v2.json, edited).
//! No local stack: the handler answers these cases before any AWS call.

use lambda_http::{Body, Request};
use serde_json::Value;

const HTTP_EVENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/events/http-api-v2.json"
));
const SYNC: &str = "/v1/psa/connectors/gradient/sync";

/// The fixture with `method` and `path`; `claims` = (workspace_type, role), `None` drops the
/// authorizer context.
fn event(method: &str, path: &str, claims: Option<(&str, &str)>) -> Request {
    let mut v: Value = serde_json::from_str(HTTP_EVENT).expect("event fixture");
    v["rawPath"] = path.into();
    v["requestContext"]["http"]["method"] = method.into();
    v["requestContext"]["http"]["path"] = path.into();
    match claims {
        Some((kind, role)) => {
            let c = &mut v["requestContext"]["authorizer"]["jwt"]["claims"];
            c["workspace_type"] = kind.into();
            c["role"] = role.into();
        }
        None => {
            v["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
    }
    lambda_http::request::from_str(&v.to_string()).expect("lambda_http parses the fixture")
}

async fn call(req: Request) -> (u16, Value) {
    let resp = sync_on_demand::handle(req).await;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = match resp.into_body() {
        Body::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    };
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    (status, body)
}

#[tokio::test]
async fn without_claims_it_is_401() {
    let (status, p) = call(event("POST", SYNC, None)).await;
    assert_eq!((status, p["code"].as_str()), (401, Some("unauthenticated")));
}

#[tokio::test]
async fn a_viewer_may_not_sync() {
    let (status, p) = call(event("POST", SYNC, Some(("channel", "viewer")))).await;
    assert_eq!((status, p["code"].as_str()), (403, Some("admin_required")));
}

#[tokio::test]
async fn a_child_workspace_admin_may_not_sync() {
    let (status, p) = call(event("POST", SYNC, Some(("child", "admin")))).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("not_channel_workspace"))
    );
}

#[tokio::test]
async fn an_admin_gets_501_until_the_usage_sync_lands() {
    let (status, p) = call(event("POST", SYNC, Some(("channel", "admin")))).await;
    assert_eq!((status, p["code"].as_str()), (501, Some("not_implemented")));
    assert_eq!(p["status"], 501);
}

#[tokio::test]
async fn other_routes_and_ids_are_not_found_and_get_is_405() {
    let admin = Some(("channel", "admin"));
    let (status, p) = call(event("POST", "/v1/psa/connectors/autotask/sync", admin)).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (404, Some("connector_not_found"))
    );
    let (status, _) = call(event("GET", "/v1/psa/connectors", admin)).await;
    assert_eq!(status, 404);
    let (status, _) = call(event("GET", SYNC, admin)).await;
    assert_eq!(status, 405);
}
