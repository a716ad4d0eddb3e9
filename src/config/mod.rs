//! Provider files: raw JSON -> checked model.
//!
//! `raw` mirrors the JSON a provider author writes (serde + JSON Schema); `validate` turns it
//! into `model`, where templates are parsed, URLs and hosts checked and every JSONata
//! expression compiled, so the engine never asks "is this set?" at request time. This folder
//! does no network I/O and knows nothing of GraphQL.

pub mod model;
pub mod raw;
mod validate;

pub use model::*;
pub use validate::{load_dir, load_file_text};
