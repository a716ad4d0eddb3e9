//! The one integration-test binary (each file directly under tests/ would link the crate
//! again, which costs minutes on a 2-core CI).
#![allow(clippy::unwrap_used)]

mod alerts;
mod architecture;
mod change_feed;
mod common;
mod config;
mod conformance;
mod credentials;
mod crm_attio;
mod crm_close;
mod crm_copper;
mod crm_hubspot;
mod crm_people;
mod crm_pipedrive;
mod crm_salesforce;
mod crm_zoho;
mod engine;
mod faults;
mod gateway;
mod hardening;
mod health;
mod isolation;
mod jsonata_suite;
mod lifecycle;
mod mapping;
mod oauth_apps;
mod overrides;
mod planned;
mod ratelimit;
mod replicas;
mod simulate;
mod store;
mod tenants;
mod upstreams;
mod webhooks;
