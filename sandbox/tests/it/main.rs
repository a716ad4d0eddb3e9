//! The sandbox's one integration-test binary: the vendors over real HTTP, their OAuth
//! endpoints, and the sample records the product's provider files own.
#![allow(clippy::unwrap_used)]

mod oauth;
mod samples;
mod vendors;
