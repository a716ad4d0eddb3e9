//! Provider files: raw JSON -> checked model.
//!
//! `raw` mirrors the JSON a provider author writes (serde + JSON Schema); `validate` turns it
//! into `model`, where templates are parsed, URLs and hosts checked and every JSONata
//! expression compiled, so the engine never asks "is this set?" at request time. This folder
//! does no network I/O and knows nothing of GraphQL.

pub mod changes;
pub mod model;
pub mod raw;
mod samples;
mod validate;
pub mod webhooks;

pub use changes::ChangeFeed;
pub use model::*;
pub use samples::{SAMPLES_DIR, Samples};
pub use validate::{load_dir, load_file_text};

/// The JSON Schema of provider files, generated from the raw types (committed as
/// `providers/provider.schema.json` so editors validate and complete provider files).
pub fn provider_json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawProvider);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
