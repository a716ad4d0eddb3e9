//! The checked provider: what the engine executes. Built only by `validate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use url::Url;

use crate::mapping::Expr;

#[derive(Debug)]
pub struct ProviderModel {
    pub name: String,
    pub display_name: String,
    pub file: PathBuf,
    pub base_url: Url,
    pub allowed_hosts: Vec<HostPattern>,
    pub auth: Auth,
    pub pagination: Pagination,
    pub rate_limit: RateLimitRules,
    pub errors: ErrorRules,
    pub resources: IndexMap<String, ResourceModel>,
}

impl ProviderModel {
    /// Whether `url` may be used as this provider's API base (its own host, or an allowed
    /// host pattern).
    pub fn allows_host(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        self.base_url.host_str() == Some(host) || self.allowed_hosts.iter().any(|p| p.matches(host))
    }
}

/// `api.example.com` or `*.example.com`.
#[derive(Debug, Clone)]
pub struct HostPattern(pub String);

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self.0.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Auth {
    Bearer,
    ApiKeyHeader {
        header: reqwest::header::HeaderName,
        prefix: Option<String>,
    },
    ApiKeyQuery {
        param: String,
    },
}

#[derive(Debug, Clone)]
pub enum Pagination {
    None,
    Cursor(CursorPagination),
}

#[derive(Debug, Clone)]
pub struct CursorPagination {
    pub cursor_pointer: String,
    pub cursor_param: String,
    pub limit_param: String,
    pub max_page_size: usize,
}

impl Pagination {
    /// The largest page one upstream request may ask for.
    pub fn max_page_size(&self) -> usize {
        match self {
            Pagination::None => usize::MAX,
            Pagination::Cursor(c) => c.max_page_size,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RateLimitRules {
    pub limit_header: Option<reqwest::header::HeaderName>,
    pub remaining_header: Option<reqwest::header::HeaderName>,
    pub window_header: Option<reqwest::header::HeaderName>,
    pub window_unit: Duration,
    pub throttle_statuses: Vec<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct ErrorRules {
    pub message_pointer: Option<String>,
    pub category_pointer: Option<String>,
}

#[derive(Debug)]
pub struct ResourceModel {
    pub name: String,
    pub id_pointer: String,
    pub mapping: ResponseMapping,
    pub list: Option<ListOperation>,
    pub get: Option<GetOperation>,
}

/// The response mapping of a resource: one expression per output field (kept for
/// explanation and per-field overrides), and the same fields composed into one object
/// constructor, so a record is mapped by a single evaluation.
#[derive(Debug, Clone)]
pub struct ResponseMapping {
    pub fields: Vec<MappedField>,
    pub composed: Expr,
}

#[derive(Debug, Clone)]
pub struct MappedField {
    /// Dotted output path (`firstName`, `customFields.tier`).
    pub path: String,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub struct ListOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
    pub records_pointer: String,
}

#[derive(Debug, Clone)]
pub struct GetOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
    pub record_pointer: String,
}

/// A URL path with `{name}` placeholders, parsed once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pub segments: Vec<PathSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Literal(String),
    Var(String),
}

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        if !text.starts_with('/') {
            return Err(format!("path `{text}` must start with `/`"));
        }
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| c + open)
                .ok_or_else(|| format!("path `{text}` has an unclosed `{{`"))?;
            if open > 0 {
                segments.push(PathSegment::Literal(rest[..open].to_string()));
            }
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "path `{text}` has an invalid placeholder `{{{name}}}`"
                ));
            }
            segments.push(PathSegment::Var(name.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(PathSegment::Literal(rest.to_string()));
        }
        Ok(PathTemplate { segments })
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            PathSegment::Var(v) => Some(v.as_str()),
            PathSegment::Literal(_) => None,
        })
    }
}

/// Every loaded provider, by name.
#[derive(Debug, Default, Clone)]
pub struct Providers {
    by_name: IndexMap<String, Arc<ProviderModel>>,
}

impl Providers {
    pub fn new(list: Vec<ProviderModel>) -> Providers {
        Providers {
            by_name: list
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ProviderModel>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderModel>> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
