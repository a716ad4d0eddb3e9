//! `"changes": {"type": "sync_token", ...}`: vendors whose full listing ends with a token
//! that, given back, lists only the records changed since (deleted ones as tombstones), and
//! ends with the next token.
//!
//! Such vendors bind a token, and every page token of its walk, to the parameters of the
//! call that asked for it: the feed sends its own `query` on every call, full listing and
//! changes alike, and the engine keeps the page size fixed for the whole walk. Tokens
//! expire; the `expired` test recognises the vendor's refusal, after which the feed starts
//! over with a full listing.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::config::model::Pagination;
use crate::config::validate::Checker;
use crate::mapping::{Expr, Vars};
use crate::problem::pointer_segment;

/// A token-based change feed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSyncToken {
    /// Query parameters sent on every call of the feed (the full listing and the
    /// listings of changes), on top of the `list` operation's own: what asks for a token,
    /// e.g. `{"requestSyncToken": "true"}`. A parameter named here replaces the `list`
    /// operation's parameter of the same name.
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// The parameter that carries the stored token on a listing of changes, e.g.
    /// `syncToken`.
    pub token_param: String,
    /// JSON pointer to the token on the last page of a listing, e.g. `/nextSyncToken`. A
    /// last page without one is a changed API (`SCHEMA_DRIFT`), and the stored token is kept.
    pub next_token_path: String,
    /// JSONata over `{status, body, headers}` (header names lower-case) of a refused call:
    /// true when the vendor no longer knows the token (it expired), so every record is
    /// listed again and a new token taken. E.g. `'EXPIRED_SYNC_TOKEN' in
    /// body.error.details.reason`.
    pub expired: String,
    /// JSONata over one raw record of a listing of changes: true when the record is a
    /// deletion (a tombstone that may carry little more than its id), e.g.
    /// `metadata.deleted = true`. Write `false` for a vendor that never reports deletions.
    pub deleted: String,
}

/// The checked feed.
#[derive(Debug, Clone)]
pub struct SyncTokenFeed {
    pub query: Vec<(String, String)>,
    pub token_param: String,
    pub next_token_pointer: String,
    pub expired: Expr,
    pub deleted: Expr,
}

impl SyncTokenFeed {
    pub fn params(&self, token: Option<&str>) -> Vec<(String, String)> {
        let mut params = self.query.clone();
        if let Some(token) = token {
            params.push((self.token_param.clone(), token.to_owned()));
        }
        params
    }

    /// An empty or non-text token is no token: the vendor would refuse it.
    pub fn next_token(&self, body: &Value) -> Option<String> {
        match body.pointer(&self.next_token_pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// Anything but `true` (an error, a string, nothing) is not a deletion: a record is
    /// only dropped when the vendor says so plainly.
    pub fn is_deletion(&self, raw: &Value) -> bool {
        matches!(
            self.deleted.evaluate(Some(raw), &Vars::none()),
            Ok(Some(Value::Bool(true)))
        )
    }
}

impl Checker<'_> {
    pub(super) fn sync_token(
        &mut self,
        at: &str,
        raw: RawSyncToken,
        list_pagination: Option<&Pagination>,
    ) -> Option<SyncTokenFeed> {
        let before = self.problems.len();
        if raw.token_param.trim().is_empty() {
            self.problem(format!("{at}/tokenParam"), "must not be empty");
        }
        let paging: Vec<&str> = list_pagination
            .map(Pagination::param_names)
            .unwrap_or_default();
        if paging.contains(&raw.token_param.as_str()) {
            self.problem(
                format!("{at}/tokenParam"),
                format!(
                    "`{}` is also a paging parameter of the `list` operation: the token needs its own",
                    raw.token_param
                ),
            );
        }
        for name in raw.query.keys() {
            let here = format!("{at}/query/{}", pointer_segment(name));
            if name.trim().is_empty() {
                self.problem(here, "a parameter name must not be empty");
            } else if *name == raw.token_param {
                self.problem(
                    here,
                    format!("`{name}` is the token parameter (`tokenParam`); it is sent only with a token"),
                );
            } else if paging.contains(&name.as_str()) {
                self.problem(
                    here,
                    format!("`{name}` is a paging parameter of the `list` operation; the pagination sends it"),
                );
            }
        }
        let next_token_pointer =
            self.pointer(&format!("{at}/nextTokenPath"), Some(raw.next_token_path));
        if next_token_pointer.as_deref() == Some("") {
            self.problem(
                format!("{at}/nextTokenPath"),
                "the token is a value inside the body, not the whole body",
            );
        }
        let expired = self.expr(&format!("{at}/expired"), &raw.expired);
        let deleted = self.expr(&format!("{at}/deleted"), &raw.deleted);
        if self.problems.len() > before {
            return None;
        }
        Some(SyncTokenFeed {
            query: raw.query.into_iter().collect(),
            token_param: raw.token_param,
            next_token_pointer: next_token_pointer?,
            expired: expired?,
            deleted: deleted?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feed() -> SyncTokenFeed {
        let engine = crate::mapping::default_engine();
        SyncTokenFeed {
            query: vec![("requestSyncToken".into(), "true".into())],
            token_param: "syncToken".into(),
            next_token_pointer: "/nextSyncToken".into(),
            expired: engine
                .compile("'EXPIRED_SYNC_TOKEN' in body.error.details.reason")
                .unwrap(),
            deleted: engine.compile("metadata.deleted = true").unwrap(),
        }
    }

    #[test]
    fn every_call_sends_the_feed_parameters_and_changes_add_the_token() {
        let f = feed();
        assert_eq!(
            f.params(None),
            vec![("requestSyncToken".to_string(), "true".to_string())]
        );
        assert_eq!(
            f.params(Some("tok")),
            vec![
                ("requestSyncToken".to_string(), "true".to_string()),
                ("syncToken".to_string(), "tok".to_string())
            ]
        );
    }

    #[test]
    fn the_token_is_text_on_the_page_or_nothing() {
        let f = feed();
        assert_eq!(
            f.next_token(&json!({"nextSyncToken": "abc"})),
            Some("abc".into())
        );
        for body in [
            json!({}),
            json!({"nextSyncToken": ""}),
            json!({"nextSyncToken": null}),
            json!({"nextSyncToken": 12}),
            json!([1, 2]),
        ] {
            assert_eq!(f.next_token(&body), None, "{body}");
        }
    }

    #[test]
    fn only_a_plain_true_is_a_deletion() {
        let f = feed();
        assert!(f.is_deletion(&json!({"metadata": {"deleted": true}})));
        for raw in [
            json!({"metadata": {"deleted": false}}),
            json!({"metadata": {"deleted": "true"}}),
            json!({"metadata": {}}),
            json!({"names": []}),
            json!("people/c1"),
        ] {
            assert!(!f.is_deletion(&raw), "{raw}");
        }
    }

    #[test]
    fn the_expiry_test_reads_the_refusal() {
        let f = feed();
        let refusal = |details: Value| json!({"status": 400, "headers": {}, "body": {"error": {"code": 400, "status": "FAILED_PRECONDITION", "details": details}}});
        let expired = |input: &Value| {
            matches!(
                f.expired.evaluate(Some(input), &Vars::none()),
                Ok(Some(Value::Bool(true)))
            )
        };
        assert!(expired(&refusal(json!([{"reason": "EXPIRED_SYNC_TOKEN"}]))));
        assert!(expired(&refusal(
            json!([{"reason": "OTHER"}, {"reason": "EXPIRED_SYNC_TOKEN"}])
        )));
        assert!(!expired(&refusal(json!([{"reason": "OTHER"}]))));
        assert!(!expired(
            &json!({"status": 400, "headers": {}, "body": null})
        ));
    }
}
