//! A resource's change feed (`changes` in its provider file): how reconciliation asks a
//! vendor that tracks changes itself what changed since its last pass. Without one, a
//! resource is reconciled through its listing's `updatedSince` filter, when it has one.
//!
//! One file per strategy holds its section of the provider file, its validation and what
//! it sends and reads (pure functions over parameters, bodies and records); the engine
//! (`engine/changes.rs`) makes the calls, page by page, through the resource's `list`
//! operation and its pagination.

mod sync_token;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::model::Pagination;
use super::validate::Checker;
use crate::mapping::Expr;

pub use sync_token::{RawSyncToken, SyncTokenFeed};

/// The change-feed strategy of a resource.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawChanges {
    /// A full listing ends with a token; given back, the listing holds only what changed
    /// since (deletions included), and ends with the next token. Tokens expire.
    SyncToken(RawSyncToken),
}

/// A checked change feed.
#[derive(Debug, Clone)]
pub enum ChangeFeed {
    SyncToken(SyncTokenFeed),
}

impl ChangeFeed {
    /// The query parameters of one call of the feed: a full listing without `token`, the
    /// changes since `token` with it. Every page of a walk sends the same ones.
    pub fn params(&self, token: Option<&str>) -> Vec<(String, String)> {
        match self {
            ChangeFeed::SyncToken(f) => f.params(token),
        }
    }

    /// The token the last page of a walk hands out, if the body carries one.
    pub fn next_token(&self, body: &Value) -> Option<String> {
        match self {
            ChangeFeed::SyncToken(f) => f.next_token(body),
        }
    }

    /// JSONata over `{status, body, headers}` of a refused call: whether the vendor no
    /// longer knows the token, so the feed starts over with a full listing.
    pub fn expired(&self) -> &Expr {
        match self {
            ChangeFeed::SyncToken(f) => &f.expired,
        }
    }

    /// Whether a raw record of the feed reports a deletion.
    pub fn is_deletion(&self, raw: &Value) -> bool {
        match self {
            ChangeFeed::SyncToken(f) => f.is_deletion(raw),
        }
    }

    /// Where the token is read, for error messages.
    pub fn token_source(&self) -> &str {
        match self {
            ChangeFeed::SyncToken(f) => &f.next_token_pointer,
        }
    }
}

impl Checker<'_> {
    /// `at` is the resource's pointer; `list_pagination` the pagination its `list`
    /// operation pages with (its own or the provider's), when both are valid.
    pub(super) fn changes(
        &mut self,
        at: &str,
        raw: RawChanges,
        has_list: bool,
        list_pagination: Option<&Pagination>,
    ) -> Option<ChangeFeed> {
        let at = format!("{at}/changes");
        if !has_list {
            self.problem(
                &at,
                "a change feed is read through the resource's `list` operation: declare one",
            );
            return None;
        }
        match raw {
            RawChanges::SyncToken(raw) => self
                .sync_token(&at, raw, list_pagination)
                .map(ChangeFeed::SyncToken),
        }
    }
}
