//! The one place that decides what of an error reaches a GraphQL caller: a message, and
//! `extensions.code` from CONTRACT.md (plus `rateLimit` and the network failure kind).

use std::fmt::Display;

use async_graphql::{Context, Error, ErrorExtensions};

use super::context::RequestState;
use crate::engine::EngineError;
use crate::error::{ErrorCode, HasCode};

pub fn coded(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

pub fn from_code<E: HasCode + Display>(err: &E) -> Error {
    coded(err.code(), err.to_string())
}

/// The error with the path of the field that raised it. async-graphql's dynamic schema
/// drops the path of resolver errors; the HTTP layer moves this extension back into
/// `path`, so a caller of a partly failed query sees which field failed.
pub fn at_path(ctx: &Context<'_>, error: Error) -> Error {
    let Some(node) = ctx.path_node else {
        return error;
    };
    let path: Vec<async_graphql::Value> = node
        .to_string_vec()
        .into_iter()
        .map(|s| match s.parse::<u64>() {
            Ok(i) => async_graphql::Value::from(i),
            Err(_) => async_graphql::Value::from(s),
        })
        .collect();
    error.extend_with(move |_, ext| {
        ext.set(PATH_EXTENSION, async_graphql::Value::List(path.clone()))
    })
}

/// The extension [`at_path`] uses; never sent to callers.
pub const PATH_EXTENSION: &str = "tesseraPath";

/// A coded error at the resolver's path.
pub fn from_code_at<E: HasCode + Display>(ctx: &Context<'_>, err: &E) -> Error {
    at_path(ctx, from_code(err))
}

/// Engine errors also report their rate-limit figures, to the error and to the HTTP layer
/// (which turns them into `ratelimit-*` headers).
pub fn from_engine(ctx: &Context<'_>, err: &EngineError) -> Error {
    let mut error = at_path(ctx, from_code(err));
    if let Some(rl) = err.rate_limit() {
        if let Ok(state) = ctx.data::<std::sync::Arc<RequestState>>() {
            state.spend.note(rl);
        }
        let rl = rl.clone();
        error = error.extend_with(move |_, ext| {
            let mut obj = async_graphql::indexmap::IndexMap::new();
            let num = |v: Option<u64>| {
                v.map(async_graphql::Value::from)
                    .unwrap_or(async_graphql::Value::Null)
            };
            obj.insert(async_graphql::Name::new("limit"), num(rl.limit));
            obj.insert(async_graphql::Name::new("remaining"), num(rl.remaining));
            obj.insert(async_graphql::Name::new("reset"), num(rl.reset));
            obj.insert(
                async_graphql::Name::new("policy"),
                rl.policy_header()
                    .map(async_graphql::Value::from)
                    .unwrap_or(async_graphql::Value::Null),
            );
            ext.set("rateLimit", async_graphql::Value::Object(obj));
        });
    }
    if let Some(kind) = err.network_failure() {
        error = error.extend_with(move |_, ext| ext.set("failure", kind.as_str()));
    }
    error
}
