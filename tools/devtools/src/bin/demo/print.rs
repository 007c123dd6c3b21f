//! Plain-text output: headings, tables, cells.

use crate::msp::{CHANNEL, Child, short};
use serde_json::Value;

pub fn heading(title: &str) {
    println!("\n== {title}");
}

/// A plain-text table: columns padded to their widest cell, a dashed rule under the header.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row);
    }
}

pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn usage_table(lines: &[Value]) {
    table(
        &[
            "account",
            "name",
            "service",
            "unit",
            "lastAccepted",
            "current",
            "state",
        ],
        lines.iter().map(|l| {
            vec![
                l["accountId"].as_str().unwrap_or("?").to_string(),
                l["accountName"].as_str().unwrap_or("?").to_string(),
                l["service"].as_str().unwrap_or("?").to_string(),
                l["unit"].as_str().unwrap_or("?").to_string(),
                cell(&l["lastAccepted"]["value"]),
                cell(&l["current"]),
                l["state"].as_str().unwrap_or("?").to_string(),
            ]
        }),
    );
}

pub fn workspaces_table(children: &[Child]) {
    table(
        &[
            "workspace",
            "name",
            "parent",
            "status",
            "users",
            "devices",
            "services",
        ],
        children.iter().map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                if c.parent == CHANNEL {
                    "Acme MSP"
                } else {
                    "Acme West"
                }
                .to_string(),
                c.status.to_string(),
                c.users.to_string(),
                c.devices.to_string(),
                c.services
                    .iter()
                    .map(|s| short(s))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        }),
    );
}
