//! The `tessera` commands (CONTRACT.md, "Command line"). `main.rs` only parses arguments
//! and calls in here.

pub mod admin_key;
pub mod check;
/// Needs the vendor imitations (`tessera-sandbox`), compiled in by the default `sandbox`
/// feature; a production build (`--no-default-features`) has neither command.
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod map;
pub mod rotate;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod serve;
#[cfg(feature = "sandbox")]
pub mod simulate;
