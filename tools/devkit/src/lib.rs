//! Local-stack helpers shared by the tests and the demo.
//!
//! * [`template_tables`] reads the DynamoDB tables from `template.yaml` — the one source of truth:
//!   local tables are created from the deployed definitions, never from a second copy.
//! * [`LocalAws`] is an SDK config pointed at DynamoDB Local and moto by the standard
//!   `AWS_ENDPOINT_URL_*` variables that `scripts/stack.sh` exports. Without them it panics
//!   loudly instead of skipping: tests run under `make test` / `scripts/test.sh`.

mod local;
mod template;

pub use local::{LocalAws, Tables};
pub use template::{
    AttributeSpec, IndexSpec, KeyElement, KeyRole, TableSpec, template_table, template_tables,
};

use std::path::{Path, PathBuf};

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
