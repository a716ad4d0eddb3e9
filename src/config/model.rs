//! The checked provider: what the engine executes. Built only by `validate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use reqwest::header::HeaderName;
use url::Url;

use crate::mapping::Expr;
use crate::upstreams::{AllowList, Refused};

#[derive(Debug)]
pub struct ProviderModel {
    pub name: String,
    pub display_name: String,
    pub file: PathBuf,
    /// Settings a linked account may give (`instanceUrl`), with their defaults.
    pub settings: Vec<SettingDef>,
    pub base_url: Template,
    pub allowed_hosts: Vec<HostPattern>,
    pub auth: Auth,
    pub oauth: Option<OAuthConfig>,
    pub pagination: Pagination,
    pub rate_limit: RateLimitRules,
    pub errors: ErrorRules,
    pub webhooks: Option<super::webhooks::WebhookConfig>,
    /// The resource whose one-record listing probes an account's health.
    pub probe_resource: Option<String>,
    pub resources: IndexMap<String, ResourceModel>,
    /// The file's JSON as written: overrides are merged into it and compiled again.
    pub source: std::sync::Arc<serde_json::Value>,
    /// Whether an environment's or an account's override takes part: expressions a tenant
    /// wrote, which the engine evaluates on its mapping pool, never on the async workers.
    pub tenant_mappings: bool,
}

#[derive(Debug, Clone)]
pub struct SettingDef {
    pub name: String,
    pub default: Option<String>,
}

impl ProviderModel {
    /// Whether `url`'s host may serve this provider's API: an allowed host pattern, or the
    /// host of a base URL that is not a template.
    pub fn allows_host(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let own = self.base_url.literal().and_then(|b| Url::parse(b).ok());
        own.as_ref().and_then(|u| u.host_str()) == Some(host)
            || self.allowed_hosts.iter().any(|p| p.matches(host))
    }

    /// An OAuth endpoint of the account: the setting `override_key` (`tokenUrl`), else the
    /// template rendered with the settings; checked like the base URL.
    pub fn resolve_oauth_url(
        &self,
        template: &Template,
        override_key: &str,
        settings: &serde_json::Value,
        upstreams: &AllowList,
    ) -> Result<Url, UrlError> {
        let text = match settings.get(override_key) {
            Some(v) => v
                .as_str()
                .ok_or(format!("settings.{override_key} must be a string"))?
                .to_string(),
            None => template
                .render(|name| self.setting(settings, name).map(str::to_string))
                .map_err(|missing| {
                    format!("settings.{missing} is required by provider `{}`", self.name)
                })?,
        };
        let url = Url::parse(&text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        upstreams.check_url(&url)?;
        if !upstreams.names(&url) && (url.scheme() != "https" || !self.allows_host(&url)) {
            let own = template.literal().and_then(|l| Url::parse(l).ok());
            let same_as_declared = own.as_ref().is_some_and(|o| o.host_str() == url.host_str())
                && url.scheme() == "https";
            if !same_as_declared {
                return Err(UrlError::Invalid(format!(
                    "`{text}` is not an allowed https host of provider `{}`",
                    self.name
                )));
            }
        }
        Ok(url)
    }

    /// A linked-account setting, or its declared default.
    pub fn setting<'a>(&'a self, settings: &'a serde_json::Value, name: &str) -> Option<&'a str> {
        settings.get(name).and_then(|v| v.as_str()).or_else(|| {
            self.settings
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.default.as_deref())
        })
    }

    /// The API base URL of an account: `settings.baseUrl`, else the `baseUrl` template
    /// rendered with the account's settings. An IP-literal host outside the public
    /// Internet is refused unless `upstreams` names it; hosts outside `allowedHosts` (and
    /// plain http) are refused unless `upstreams` names them.
    pub fn resolve_base_url(
        &self,
        settings: &serde_json::Value,
        upstreams: &AllowList,
    ) -> Result<Url, UrlError> {
        let text = match settings.get("baseUrl") {
            Some(v) => v.as_str().ok_or("settings.baseUrl must be a string")?.to_string(),
            None => self.base_url.render(|name| self.setting(settings, name).map(str::to_string)).map_err(|missing| {
                format!("settings.{missing} is required by provider `{}` (it fills `{{{missing}}}` in its base URL)", self.name)
            })?,
        };
        let url =
            Url::parse(&text).map_err(|e| format!("the base URL `{text}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(UrlError::Invalid(format!(
                "the base URL `{text}` must be an absolute http(s) URL"
            )));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(UrlError::Invalid(
                "the base URL must not carry credentials, a query or a fragment".into(),
            ));
        }
        upstreams.check_url(&url)?;
        if !upstreams.names(&url) {
            if !self.allows_host(&url) {
                return Err(UrlError::Invalid(format!(
                    "host `{}` is not among the allowed hosts of provider `{}` (the server's --allow-upstream must name other hosts)",
                    url.host_str().unwrap_or_default(),
                    self.name
                )));
            }
            if url.scheme() != "https" {
                return Err(UrlError::Invalid("the base URL must use https".into()));
            }
        }
        Ok(url)
    }
}

/// Why an account's base or OAuth URL cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UrlError {
    /// Not a usable URL, or not one of the provider's hosts: the account's settings are
    /// wrong.
    #[error("{0}")]
    Invalid(String),
    /// The host is (or names) an address outside the public Internet that the server's
    /// allow list does not name.
    #[error(transparent)]
    Refused(#[from] Refused),
}

impl From<String> for UrlError {
    fn from(message: String) -> UrlError {
        UrlError::Invalid(message)
    }
}

impl From<&str> for UrlError {
    fn from(message: &str) -> UrlError {
        UrlError::Invalid(message.to_string())
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
        header: HeaderName,
        prefix: Option<String>,
    },
    ApiKeyQuery {
        param: String,
    },
    Basic,
    /// Header values are templates over `token` and the account's settings.
    Headers(Vec<(HeaderName, Template)>),
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub authorize_url: Template,
    pub token_url: Template,
    pub basic_client_auth: bool,
    pub pkce: bool,
    pub scopes: Vec<String>,
    pub authorize_params: Vec<(String, String)>,
    pub default_lifetime: Option<Duration>,
    pub refresh_buffer: Duration,
    pub token_settings: Vec<(String, String)>,
    pub invalid_grant: Expr,
    pub revoke: Option<Revocation>,
}

/// The checked `oauth.revoke`: how a grant is revoked at the vendor.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub url: Template,
    pub method: reqwest::Method,
    pub token: RevokeToken,
    pub token_in: TokenIn,
    pub param: String,
    pub params: Vec<(String, String)>,
    pub client_auth: RevokeClientAuth,
    pub ok: Option<Expr>,
    pub already_revoked: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeToken {
    Refresh,
    Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIn {
    Form,
    Query,
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeClientAuth {
    None,
    Body,
    Basic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Query,
    JsonBody,
}

#[derive(Debug, Clone)]
pub enum Pagination {
    None,
    Cursor(CursorPagination),
    PageToken(CursorPagination),
    NextUrl(NextUrlPagination),
    Offset(OffsetPagination),
    PageNumber(PageNumberPagination),
    LinkHeader(LinkHeaderPagination),
}

#[derive(Debug, Clone)]
pub struct CursorPagination {
    pub cursor_pointer: String,
    pub cursor_param: String,
    pub limit_param: String,
    pub max_page_size: usize,
    pub placement: Placement,
}

#[derive(Debug, Clone)]
pub struct NextUrlPagination {
    pub next_url_pointer: String,
    pub limit_param: Option<String>,
    pub max_page_size: usize,
    pub min_page_size: usize,
}

#[derive(Debug, Clone)]
pub struct OffsetPagination {
    pub offset_param: String,
    pub limit_param: String,
    pub max_page_size: usize,
    pub has_more_pointer: Option<String>,
    pub placement: Placement,
}

#[derive(Debug, Clone)]
pub struct PageNumberPagination {
    pub page_param: String,
    pub size_param: String,
    pub max_page_size: usize,
    pub first_page: u32,
    pub more_pointer: Option<String>,
    pub next_token: Option<(String, String)>,
    pub placement: Placement,
}

#[derive(Debug, Clone)]
pub struct LinkHeaderPagination {
    pub limit_param: String,
    pub max_page_size: usize,
}

impl Pagination {
    /// The largest page one upstream request may ask for.
    pub fn max_page_size(&self) -> usize {
        match self {
            Pagination::None => usize::MAX,
            Pagination::Cursor(c) | Pagination::PageToken(c) => c.max_page_size,
            Pagination::NextUrl(n) => n.max_page_size,
            Pagination::Offset(o) => o.max_page_size,
            Pagination::PageNumber(p) => p.max_page_size,
            Pagination::LinkHeader(l) => l.max_page_size,
        }
    }

    /// The smallest page the vendor accepts.
    pub fn min_page_size(&self) -> usize {
        match self {
            Pagination::NextUrl(n) => n.min_page_size,
            _ => 1,
        }
    }

    /// The query parameters the strategy sends itself.
    pub fn param_names(&self) -> Vec<&str> {
        match self {
            Pagination::None => Vec::new(),
            Pagination::Cursor(c) | Pagination::PageToken(c) => {
                vec![c.cursor_param.as_str(), c.limit_param.as_str()]
            }
            Pagination::NextUrl(n) => n.limit_param.iter().map(String::as_str).collect(),
            Pagination::Offset(o) => vec![o.offset_param.as_str(), o.limit_param.as_str()],
            Pagination::PageNumber(p) => {
                let mut names = vec![p.page_param.as_str(), p.size_param.as_str()];
                names.extend(p.next_token.iter().map(|(_, param)| param.as_str()));
                names
            }
            Pagination::LinkHeader(l) => vec![l.limit_param.as_str()],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RateLimitRules {
    pub windows: Vec<RateWindow>,
    pub throttle_statuses: Vec<u16>,
}

/// One vendor window; each figure is JSONata over `{status, headers, body}`.
#[derive(Debug, Clone)]
pub struct RateWindow {
    pub name: String,
    /// Whether a figure reads the response body (decided once, at load).
    pub reads_body: bool,
    pub limit: Option<Expr>,
    pub remaining: Option<Expr>,
    pub reset: Option<Expr>,
    pub window: Option<Expr>,
}

#[derive(Debug, Clone, Default)]
pub struct ErrorRules {
    pub message_pointer: Option<String>,
    pub category_pointer: Option<String>,
    pub rules: Vec<ErrorRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    RateLimited,
    Unauthorized,
    Forbidden,
    NotFound,
    Unavailable,
    Error,
}

#[derive(Debug, Clone)]
pub struct ErrorRule {
    pub when: Expr,
    pub class: ErrorClass,
    pub on_success: bool,
}

/// Where a record's id is.
#[derive(Debug, Clone)]
pub enum IdSource {
    Pointer(String),
    Expr(Expr),
}

#[derive(Debug)]
pub struct ResourceModel {
    pub name: String,
    pub id: IdSource,
    pub mapping: ResponseMapping,
    pub list: Option<ListOperation>,
    /// The listing used when the caller sets filters, if the vendor searches elsewhere.
    pub search: Option<ListOperation>,
    pub get: Option<GetOperation>,
    pub batch_get: Option<BatchGetOperation>,
    pub create: Option<WriteOperation>,
    pub update: Option<WriteOperation>,
    pub delete: Option<DeleteOperation>,
    /// The vendor's own change feed, read through `list` (see `config/changes/`).
    pub changes: Option<super::ChangeFeed>,
}

/// The response mapping of a resource: one expression per output field (kept for
/// explanation and per-field overrides), and the same fields composed into one object
/// constructor, so a record is mapped by a single evaluation.
#[derive(Debug, Clone)]
pub struct ResponseMapping {
    pub fields: Vec<MappedField>,
    /// A whole-object expression the fields are merged over (`responseMapping`).
    pub whole: Option<Expr>,
    /// Keys dropped from the whole expression's result.
    pub omit: Vec<String>,
    pub composed: Expr,
    /// Declared custom field types, applied after mapping.
    pub custom_field_types: Vec<(String, crate::config::raw::RawCustomFieldType)>,
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
    /// Templates over `pageSize`.
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<serde_json::Value>,
    pub records_pointer: String,
    pub filters: Vec<String>,
    pub filter_query: Vec<(String, Expr)>,
    /// JSONata over `$filter`: an object merged over `body`.
    pub filter_body: Option<Expr>,
    /// This operation's own pagination; `None` uses the provider's.
    pub pagination: Option<Pagination>,
}

#[derive(Debug, Clone)]
pub struct GetOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
    pub record_pointer: String,
}

#[derive(Debug, Clone)]
pub struct BatchGetOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    /// Each value is JSONata over `$ids`.
    pub query: Vec<(String, Expr)>,
    pub body: Option<Expr>,
    pub records_pointer: String,
    pub item_pointer: String,
    pub max_ids: usize,
}

#[derive(Debug, Clone)]
pub struct WriteOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
    pub body: Expr,
    pub record_pointer: Option<String>,
    pub id_pointer: Option<String>,
    pub read_before: bool,
}

#[derive(Debug, Clone)]
pub struct DeleteOperation {
    pub method: reqwest::Method,
    pub path: PathTemplate,
    pub query: Vec<(String, String)>,
}

/// Text with `{name}` placeholders, parsed once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub segments: Vec<PathSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Literal(String),
    Var(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| c + open)
                .ok_or_else(|| format!("`{text}` has an unclosed `{{`"))?;
            if open > 0 {
                segments.push(PathSegment::Literal(rest[..open].to_string()));
            }
            let name = &rest[open + 1..close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`{text}` has an invalid placeholder `{{{name}}}`"));
            }
            segments.push(PathSegment::Var(name.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(PathSegment::Literal(rest.to_string()));
        }
        Ok(Template { segments })
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            PathSegment::Var(v) => Some(v.as_str()),
            PathSegment::Literal(_) => None,
        })
    }

    /// The text when the template has no placeholder.
    pub fn literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [PathSegment::Literal(l)] => Some(l),
            [] => Some(""),
            _ => None,
        }
    }

    /// Renders with `lookup`; the error is the first name without a value.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                PathSegment::Literal(l) => out.push_str(l),
                PathSegment::Var(v) => out.push_str(&lookup(v).ok_or_else(|| v.clone())?),
            }
        }
        Ok(out)
    }
}

/// A URL path template: starts with `/`; values are percent-encoded when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate(pub Template);

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        if !text.starts_with('/') {
            return Err(format!("path `{text}` must start with `/`"));
        }
        Template::parse(text).map(PathTemplate)
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.vars()
    }
}

/// Every loaded provider, by name.
#[derive(Debug, Default, Clone)]
pub struct Providers {
    by_name: IndexMap<String, Arc<ProviderModel>>,
    samples: Arc<super::Samples>,
}

impl Providers {
    pub fn new(list: Vec<ProviderModel>) -> Providers {
        Providers::with_samples(list, super::Samples::default())
    }

    pub fn with_samples(list: Vec<ProviderModel>, samples: super::Samples) -> Providers {
        Providers {
            by_name: list
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
            samples: Arc::new(samples),
        }
    }

    /// The provider's sample upstream records of one resource (`providers/samples/`).
    pub fn samples(&self, provider: &str, resource: &str) -> Option<&[serde_json::Value]> {
        self.samples.get(provider, resource)
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
