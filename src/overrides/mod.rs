//! The override hierarchy: per-customer mappings without a deploy.
//!
//! Three levels patch a provider file's resource, in order: platform (admin, for everyone),
//! environment (one customer), linked account. An override adds or replaces single output
//! fields (each its own JSONata), removes fields, replaces the whole response mapping,
//! patches the request side (merged into `operations`), and declares custom field types.
//! Overrides are versioned in the store; the registry keeps the current ones in memory on
//! every replica and compiles each account's merged provider once.
//!
//! Arrows: `graphql` -> `overrides` -> (`config`, `store`, `mapping`, `schema`).

mod error;
mod layer;
mod registry;
mod spec;

pub use error::OverrideError;
pub use layer::{FieldSource, Layer, Merged, merge};
pub use registry::{Current, Explanation, OverrideRegistry};
pub use spec::{Level, OverrideSpec, Scope, merge_patch};
