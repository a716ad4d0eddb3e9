//! The provider file as written: one JSON document per provider in `providers/`.
//! Field docs here become the descriptions editors show (through the generated JSON Schema).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// A provider: everything Tessera needs to talk to one vendor's API, as data.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawProvider {
    /// Editors use it to find `provider.schema.json`; Tessera ignores it.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// The provider's id, used in `connectAccount(provider:)`. Must equal the file name.
    pub name: String,
    pub display_name: String,
    /// The API base URL, e.g. `https://api.example.com`. A linked account's
    /// `settings.baseUrl` replaces it (checked against `allowedHosts`).
    pub base_url: String,
    /// Hosts a linked account's `settings.baseUrl` may point at. `*.example.com` matches any
    /// subdomain. The host of `baseUrl` is always allowed.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How the linked account's credentials are put on each request.
    pub auth: RawAuth,
    /// How list operations page through results.
    #[serde(default)]
    pub pagination: RawPagination,
    /// Which response headers carry the vendor's rate-limit figures.
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    /// How upstream error bodies are read.
    #[serde(default)]
    pub errors: RawErrors,
    /// Unified resources (keys are `@resource` names of the SDL, e.g. `contacts`).
    pub resources: IndexMap<String, RawResource>,
}

/// Where credentials go on the upstream request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum RawAuth {
    /// `Authorization: Bearer <accessToken or apiKey>`.
    Bearer,
    /// The API key (or access token) in a header, optionally after a prefix
    /// (`Authorization: <scheme> <token>` for vendors with a custom scheme).
    ApiKeyHeader {
        header: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// The API key in a query parameter (`?api_token=...`).
    ApiKeyQuery { param: String },
}

/// The pagination strategy of list operations.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum RawPagination {
    /// One request returns everything.
    #[default]
    None,
    /// An opaque cursor read from the response body (JSON pointer) and sent back as a query
    /// parameter; no cursor in the body means the last page.
    Cursor {
        /// JSON pointer to the next cursor in the response body, e.g. `/paging/next/after`.
        cursor_path: String,
        /// Query parameter that carries the cursor, e.g. `after`.
        cursor_param: String,
        /// Query parameter that carries the page size, e.g. `limit`.
        limit_param: String,
        /// The largest page the vendor serves. Larger `first` values are served by several
        /// upstream pages.
        max_page_size: u32,
    },
}

/// Response headers carrying the vendor's rate-limit figures. Each is optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRateLimit {
    /// Header with the request budget of the current window.
    #[serde(default)]
    pub limit_header: Option<String>,
    /// Header with the requests left in the current window.
    #[serde(default)]
    pub remaining_header: Option<String>,
    /// Header with the length of the window; used as the reset time when the vendor does
    /// not say when the window resets.
    #[serde(default)]
    pub window_header: Option<String>,
    /// Unit of `windowHeader`: `seconds` (default) or `milliseconds`.
    #[serde(default)]
    pub window_unit: RawTimeUnit,
    /// HTTP statuses that mean "throttled" (default `[429]`).
    #[serde(default)]
    pub throttle_statuses: Vec<u16>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawTimeUnit {
    #[default]
    Seconds,
    Milliseconds,
}

/// How to summarise an upstream error body (never echoed whole).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawErrors {
    /// JSON pointer to a human message in error bodies, e.g. `/message`.
    #[serde(default)]
    pub message_path: Option<String>,
    /// JSON pointer to a machine category in error bodies, e.g. `/category`.
    #[serde(default)]
    pub category_path: Option<String>,
}

/// One unified resource served by this provider.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawResource {
    /// JSON pointer to the vendor's record id inside one record (default `/id`).
    #[serde(default = "default_id_path")]
    pub id_path: String,
    /// Output field -> JSONata expression evaluated on one upstream record. Keys are SDL
    /// field names, `@link` id fields (`companyId`), `remoteCreatedAt`, `remoteUpdatedAt`,
    /// or `customFields.<name>`.
    pub fields: IndexMap<String, String>,
    pub operations: RawOperations,
}

fn default_id_path() -> String {
    "/id".to_string()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawOperations {
    #[serde(default)]
    pub list: Option<RawListOperation>,
    #[serde(default)]
    pub get: Option<RawGetOperation>,
}

/// Lists records, page by page, with the provider's pagination.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawListOperation {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path under the base URL, e.g. `/crm/v3/objects/contacts`.
    pub path: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// JSON pointer to the array of records in the response body, e.g. `/results`.
    pub records_path: String,
}

/// Fetches one record by its remote id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawGetOperation {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path with an `{id}` placeholder, e.g. `/crm/v3/objects/contacts/{id}`.
    pub path: String,
    #[serde(default)]
    pub query: IndexMap<String, String>,
    /// JSON pointer to the record in the response body (empty: the body is the record).
    #[serde(default)]
    pub record_path: String,
}

fn default_method() -> String {
    "GET".to_string()
}
