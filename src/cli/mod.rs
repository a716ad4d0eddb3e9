//! The `tessera` commands (CONTRACT.md, "Command line"). `main.rs` only parses arguments
//! and calls in here.

pub mod check;
pub mod demo;
pub mod map;
pub mod rotate;
pub mod serve;
