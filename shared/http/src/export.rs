//! CSV exports (contract *Exports*): `GET …/usage?format=csv` and
//! `GET …/syncs/{runId}/readings?format=csv`. RFC 4180 (the `csv` crate: CRLF, quotes only where
//! needed), one header row, every line of the list with its filter. A cell a spreadsheet would
//! run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
//! leading `'`, so an account name from the read model cannot become a formula in the MSP's
//! spreadsheet.

use crate::error::ApiError;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use psa_domain::RunReading;
use psa_domain::usecase::views::UsageLine;

pub const USAGE_COLUMNS: [&str; 8] = [
    "accountId",
    "accountName",
    "service",
    "unit",
    "current",
    "lastAcceptedValue",
    "lastAcceptedAt",
    "state",
];

pub const READINGS_COLUMNS: [&str; 8] = [
    "accountId",
    "accountName",
    "service",
    "unit",
    "value",
    "previous",
    "outcome",
    "reason",
];

/// `cell` as a spreadsheet may open it: a leading `'` before a formula's first character.
pub fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

fn unit(u: psa_domain::Unit) -> String {
    serde_json::to_value(u)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn usage_row(l: &UsageLine) -> Vec<String> {
    vec![
        l.account_id.clone(),
        l.account_name.clone(),
        l.service.clone(),
        unit(l.unit),
        l.current.map(|v| v.to_string()).unwrap_or_default(),
        l.last_accepted
            .as_ref()
            .map(|a| a.value.to_string())
            .unwrap_or_default(),
        l.last_accepted
            .as_ref()
            .map(|a| rfc3339(a.at))
            .unwrap_or_default(),
        l.state.as_str().to_owned(),
    ]
}

pub fn reading_row(r: &RunReading) -> Vec<String> {
    vec![
        r.account_id.clone(),
        r.account_name.clone(),
        r.service.clone(),
        unit(r.unit),
        r.value.to_string(),
        r.previous.map(|v| v.to_string()).unwrap_or_default(),
        r.outcome.as_str().to_owned(),
        r.reason.clone().unwrap_or_default(),
    ]
}

/// The CSV text: the header, then one record per row (every cell defused).
pub fn to_csv(columns: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; a record of the wrong length is a bug the tests catch.
    w.write_record(columns).expect("header");
    for row in rows {
        w.write_record(row.iter().map(|c| defuse(c)))
            .expect("a record of the header's length");
    }
    String::from_utf8(w.into_inner().expect("flush to a Vec")).expect("UTF-8 cells")
}

/// 200 `text/csv; charset=utf-8` as an attachment named `filename`.
pub fn response(filename: &str, csv: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .body(Body::Text(csv))
        .expect("static response parts")
}

/// Whether the query asks for CSV (`format=csv`; `json` or none: JSON). An export is every line:
/// `limit` or `cursor` with it is 400 `invalid_query`.
pub fn wants_csv(
    params: &lambda_http::aws_lambda_events::query_map::QueryMap,
) -> Result<bool, ApiError> {
    match params.first("format") {
        None | Some("json") => Ok(false),
        Some("csv") => {
            if params.first("limit").is_some() || params.first("cursor").is_some() {
                return Err(ApiError::InvalidQuery(
                    "format=csv exports every line: drop limit and cursor".into(),
                ));
            }
            Ok(true)
        }
        Some(_) => Err(ApiError::InvalidQuery("format must be json or csv".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quoting_is_rfc_4180() {
        for (raw, want) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("Bakery", "Bakery"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(defuse(raw), want);
        }
        let text = to_csv(
            &["a", "b"],
            [
                vec!["Dentist, \"Smile\" & Co".into(), "=1+1".into()],
                vec!["two\nlines".into(), String::new()],
            ],
        );
        assert_eq!(
            text,
            "a,b\r\n\"Dentist, \"\"Smile\"\" & Co\",'=1+1\r\n\"two\nlines\",\r\n"
        );
    }
}
