//! A resource's change feed (`changes` in its provider file), one page at a time, through
//! the resource's `list` operation and its pagination: the full listing that yields the
//! first token, and the listings of what changed since a token. The caller walks the
//! pages and keeps the token of the last one; what the strategy sends and reads is in
//! `config/changes/`.

use serde_json::{Value, json};

use super::{AccountHandle, Engine, EngineError, FilteredList, Record, call, pagination, upstream};
use crate::config::{ChangeFeed, ListOperation, Pagination};

/// The page size of a feed's walk when the pagination allows any: the vendors seen bind
/// their page tokens to the first call's parameters, page size included, so it is fixed.
const FEED_PAGE_SIZE: usize = 1000;

/// One record of a change feed.
#[derive(Debug)]
pub struct Change {
    pub record: Record,
    /// The vendor reports the record deleted (a tombstone: little but its id).
    pub deleted: bool,
}

/// One page of a change feed.
#[derive(Debug)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Where the next page is (for [`Engine::change_page`]); `None` on the last page.
    pub next_page: Option<String>,
    /// On the last page: the token that lists what changes from here on.
    pub token: Option<String>,
}

/// A resource's feed and the listing it is read through.
struct Feed<'a> {
    feed: &'a ChangeFeed,
    op: &'a ListOperation,
    pagination: &'a Pagination,
    page_size: usize,
}

impl Engine {
    fn feed<'a>(account: &'a AccountHandle, resource: &str) -> Result<Feed<'a>, EngineError> {
        let res = Self::resource(account, resource, "changes")?;
        let (Some(feed), Some(op)) = (&res.changes, &res.list) else {
            return Err(super::unsupported(account, resource, "changes"));
        };
        let pagination = op
            .pagination
            .as_ref()
            .unwrap_or(&account.provider.pagination);
        Ok(Feed {
            feed,
            op,
            pagination,
            page_size: FEED_PAGE_SIZE
                .min(pagination.max_page_size())
                .max(pagination.min_page_size()),
        })
    }

    fn feed_target(
        &self,
        account: &AccountHandle,
        f: &Feed<'_>,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<upstream::Target, EngineError> {
        self.page_target(
            account,
            FilteredList {
                op: f.op,
                filter_query: &f.feed.params(since),
                filter_body: None,
            },
            pagination::paginator(f.pagination),
            page,
            f.page_size,
        )
    }

    /// A digest of the request a full listing of the feed starts with: what a token it
    /// yields is bound to. It changes with the provider file, the account's overrides and
    /// its base URL; a token taken with another request is refused by the vendors seen.
    pub fn change_request(
        &self,
        account: &AccountHandle,
        resource: &str,
    ) -> Result<String, EngineError> {
        let f = Self::feed(account, resource)?;
        let target = self.feed_target(account, &f, None, None)?;
        Ok(super::digest(&json!({
            "method": target.method.as_str(),
            "url": target.url.as_str(),
            "body": target.body,
        })))
    }

    /// A page of `resource`'s change feed: the full listing without `since`, the changes
    /// since that token with it; `page` is the previous page's `next_page`. A token the
    /// vendor no longer knows is [`EngineError::FeedExpired`].
    pub async fn change_page(
        &self,
        account: &AccountHandle,
        resource: &str,
        since: Option<&str>,
        page: Option<&str>,
    ) -> Result<ChangePage, EngineError> {
        let f = Self::feed(account, resource)?;
        let (feed, op, page_size) = (f.feed, f.op, f.page_size);
        let strategy = pagination::paginator(f.pagination);
        let target = self.feed_target(account, &f, since, page)?;
        let mut reply = self
            .call_expecting(account, target, call::CallKind::Read, Some(feed.expired()))
            .await?;
        let count = match reply.body.pointer(&op.records_pointer) {
            Some(Value::Array(items)) => items.len(),
            // No records at all: how vendors that omit empty fields say "nothing changed".
            None | Some(Value::Null) => 0,
            _ => {
                return Err(EngineError::Drift {
                    what: format!(
                        "no array of records at `{}` in the change feed's response",
                        op.records_pointer
                    ),
                });
            }
        };
        let next_page = strategy.next_state(&pagination::PageView {
            body: &reply.body,
            headers: &reply.headers,
            state: page,
            page_size,
            records: count,
        });
        if next_page.is_some() && next_page.as_deref() == page {
            return Err(EngineError::PaginationLoop);
        }
        let token = match next_page {
            Some(_) => None,
            None => Some(
                feed.next_token(&reply.body)
                    .ok_or_else(|| EngineError::Drift {
                        what: format!(
                            "the last page of the change feed has no token at `{}`",
                            feed.token_source()
                        ),
                    })?,
            ),
        };
        let records = match reply.body.pointer_mut(&op.records_pointer) {
            Some(Value::Array(items)) => std::mem::take(items),
            _ => Vec::new(),
        };
        // Read before mapping takes the records: a tombstone is told by its raw form.
        let deleted: Vec<bool> = records.iter().map(|r| feed.is_deletion(r)).collect();
        let mapped = self
            .mapper
            .map(account, resource, records.into_iter().enumerate().collect())
            .await?;
        Ok(ChangePage {
            changes: mapped
                .into_iter()
                .zip(deleted)
                .map(|(record, deleted)| Change { record, deleted })
                .collect(),
            next_page,
            token,
        })
    }
}
