//! The generated models and their references that `ops/fetch-models.sh`
//! puts in `models/`, as the unit tests read them.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `models/NAME` and its `reference.json`.
pub fn with_reference(name: &str) -> (PathBuf, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name);
    let file = dir.join("reference.json");
    let bytes = std::fs::read(&file)
        .unwrap_or_else(|e| panic!("{}: {e}; run ops/fetch-models.sh", file.display()));
    (dir, serde_json::from_slice(&bytes).expect("reference JSON"))
}

/// A JSON array of strings.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}
