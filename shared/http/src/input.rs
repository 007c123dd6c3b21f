//! What the routes read from a request beyond the route itself: the bodies, the settings patch,
//! paging and filters, and the answers they share.

use crate::body::{json, json_body, with_location};
use crate::error::ApiError;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use psa_domain::{ApiToken, ConnectorType, SettingsPatch};
use serde::Deserialize;

/// Sync-history page size: default and cap.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub api_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct TokenBody {
    pub api_token: String,
}

/// Where a connector of type `kind` lives (its id is its type).
pub(crate) fn connector_location(kind: ConnectorType) -> String {
    format!("/v1/psa/connectors/{}", kind.as_str())
}

/// The body of `PATCH /v1/psa/connectors/{id}`: `{"settings": {"guardDropPercent"?: 1–100 or
/// null, "psaAlerts"?: bool, "notify"?: {"emails", "on"}}}`. Anything else — another value, type or key — is 400
/// `invalid_settings` (malformed JSON stays `invalid_body`).
pub(crate) fn settings_patch(req: &Request) -> Result<SettingsPatch, ApiError> {
    let body: serde_json::Value = json_body(req)?;
    let bad = ApiError::InvalidSettings;
    let top = body
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad("the body must be {\"settings\": {...}}"))?;
    let settings = top
        .get("settings")
        .and_then(|s| s.as_object())
        .ok_or_else(|| bad("settings must be an object"))?;
    let mut patch = SettingsPatch::default();
    for (key, value) in settings {
        match key.as_str() {
            "guardDropPercent" => {
                patch.guard_drop_percent = Some(match value {
                    serde_json::Value::Null => None,
                    v => Some(
                        v.as_u64()
                            .filter(|n| (1..=100).contains(n))
                            .map(|n| n as u8)
                            .ok_or_else(|| {
                                bad("guardDropPercent must be a whole number from 1 to 100, or null")
                            })?,
                    ),
                });
            }
            "psaAlerts" => {
                patch.psa_alerts = Some(
                    value
                        .as_bool()
                        .ok_or_else(|| bad("psaAlerts must be true or false"))?,
                );
            }
            "notify" => patch.notify = Some(notify(value)?),
            _ => {
                return Err(bad(
                    "settings may hold only guardDropPercent, psaAlerts and notify",
                ));
            }
        }
    }
    Ok(patch)
}

/// `settings.notify` as a whole: `{"emails": [≤ 10 plain addresses], "on": "always" |
/// "problems" | "never"}`, both keys, nothing else.
pub(crate) fn notify(
    value: &serde_json::Value,
) -> Result<psa_domain::connector::NotifySettings, ApiError> {
    use psa_domain::connector::{NotifyError, NotifyOn, NotifySettings};
    let bad = ApiError::InvalidSettings;
    let shape =
        "notify must be {\"emails\": [addresses], \"on\": \"always\" | \"problems\" | \"never\"}";
    let o = value
        .as_object()
        .filter(|o| o.len() == 2 && o.contains_key("emails") && o.contains_key("on"))
        .ok_or_else(|| bad(shape))?;
    let on = o["on"]
        .as_str()
        .and_then(NotifyOn::parse)
        .ok_or_else(|| bad("notify.on must be always, problems or never"))?;
    let emails = o["emails"]
        .as_array()
        .ok_or_else(|| bad("notify.emails must be an array of addresses"))?
        .iter()
        .map(|e| e.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("notify.emails must be an array of addresses"))?;
    NotifySettings::new(emails, on).map_err(|e| {
        bad(match e {
            NotifyError::TooMany => "notify.emails may hold at most 10 addresses",
            NotifyError::BadAddress => {
                "notify.emails holds something that is not a plain email address"
            }
        })
    })
}

/// `{"items": [...], "nextCursor"?}` (no `nextCursor` on the last page).
pub(crate) fn paged<T: serde::Serialize>(items: Vec<T>, next: Option<String>) -> serde_json::Value {
    let mut body = serde_json::json!({ "items": items });
    if let Some(next) = next {
        body["nextCursor"] = next.into();
    }
    body
}

/// `limit` (1–100, default 20) and `cursor` of every paged route, and its one filter.
pub(crate) struct PageQuery {
    pub limit: u32,
    pub cursor: Option<String>,
    pub params: lambda_http::aws_lambda_events::query_map::QueryMap,
}

impl PageQuery {
    pub fn from(req: &Request) -> Result<Self, ApiError> {
        let params = req.query_string_parameters();
        let limit = match params.first("limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidQuery(format!(
                        "limit must be a whole number from 1 to {MAX_PAGE}"
                    ))
                })?,
        };
        let cursor = params.first("cursor").map(str::to_owned);
        if cursor.as_deref() == Some("") {
            return Err(ApiError::InvalidCursor);
        }
        Ok(Self {
            limit,
            cursor,
            params,
        })
    }

    /// An optional filter that must be one of `allowed`.
    pub fn choice<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Result<Option<T>, ApiError> {
        match self.params.first(name) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                ApiError::InvalidQuery(format!("{name} must be one of {}", allowed.join(", ")))
            }),
        }
    }
}

/// A connector's id is its type (`gradient`); anything else is not found (never "forbidden").
pub(crate) fn own_connector(id: &str) -> Result<ConnectorType, ApiError> {
    ConnectorType::parse(id).ok_or(ApiError::ConnectorNotFound)
}

/// 202 `{"runId", "status": "queued"}` with the run's `Location`.
pub(crate) fn queued(run: &psa_domain::SyncRun) -> Response<Body> {
    let body = serde_json::json!({"runId": run.run_id, "status": "queued"});
    with_location(
        json(StatusCode::ACCEPTED, &body),
        &format!(
            "{}/syncs/{}",
            connector_location(run.connector_id),
            run.run_id
        ),
    )
}

pub(crate) fn parse_token(raw: &str) -> Result<ApiToken, ApiError> {
    Ok(ApiToken::parse(raw)?)
}
