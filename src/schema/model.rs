//! The checked shape of the SDL, in types the rest of Tessera reads without re-parsing.

/// Fields Tessera adds to every resource type; the SDL may not declare them.
pub const RESERVED_FIELDS: &[&str] = &[
    "id",
    "remoteId",
    "customFields",
    "remoteData",
    "remoteCreatedAt",
    "remoteUpdatedAt",
];

/// Added fields whose value comes from the provider's mapping (the others are derived).
pub const STANDARD_MAPPED_FIELDS: &[&str] = &["remoteCreatedAt", "remoteUpdatedAt", "customFields"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl TypeRef {
    /// The innermost named type (`[Email!]` -> `Email`).
    pub fn base(&self) -> &str {
        match self {
            TypeRef::Named(n) => n,
            TypeRef::List(t) | TypeRef::NonNull(t) => t.base(),
        }
    }
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeRef::Named(n) => f.write_str(n),
            TypeRef::List(t) => write!(f, "[{t}]"),
            TypeRef::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinkDef {
    /// The related resource (`companies`).
    pub resource: String,
    /// The mapped field holding the related record's remote id (`companyId`).
    pub field: String,
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub description: Option<String>,
    pub ty: TypeRef,
    pub link: Option<LinkDef>,
}

#[derive(Debug, Clone)]
pub struct ScalarDef {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EnumDef {
    pub name: String,
    pub description: Option<String>,
    pub values: Vec<String>,
}

/// A plain object type (an email address, a phone number): no identity of its own.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<FieldDef>,
}

/// A type marked `@resource(name: "...")`: a record a provider lists and fetches.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub type_name: String,
    /// The resource name, also the plural root field (`contacts`).
    pub resource: String,
    /// The single root field (`contact`).
    pub single_field: String,
    pub description: Option<String>,
    pub fields: Vec<FieldDef>,
}

impl ResourceDef {
    /// The output keys a provider mapping may produce for this resource: plain SDL fields,
    /// the id fields named by `@link`, and the standard mapped fields.
    pub fn mapping_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .fields
            .iter()
            .map(|f| match &f.link {
                Some(link) => link.field.clone(),
                None => f.name.clone(),
            })
            .collect();
        keys.extend(STANDARD_MAPPED_FIELDS.iter().map(|s| s.to_string()));
        keys
    }
}

/// `input ContactFilter { ... }`: the filters a resource's list accepts. Each provider
/// says which it can translate; the others are refused.
#[derive(Debug, Clone)]
pub struct FilterDef {
    /// The resource type it filters (`Contact` for `ContactFilter`).
    pub type_name: String,
    pub description: Option<String>,
    pub fields: Vec<FieldDef>,
}

#[derive(Debug, Clone, Default)]
pub struct UnifiedModel {
    pub filters: Vec<FilterDef>,
    pub scalars: Vec<ScalarDef>,
    pub enums: Vec<EnumDef>,
    pub objects: Vec<ObjectDef>,
    pub resources: Vec<ResourceDef>,
}

impl UnifiedModel {
    pub fn resource(&self, resource: &str) -> Option<&ResourceDef> {
        self.resources.iter().find(|r| r.resource == resource)
    }

    /// The filter input of a resource, when the SDL declares one.
    pub fn filter_of(&self, resource: &str) -> Option<&FilterDef> {
        let r = self.resource(resource)?;
        self.filters.iter().find(|f| f.type_name == r.type_name)
    }

    pub fn resource_by_type(&self, type_name: &str) -> Option<&ResourceDef> {
        self.resources.iter().find(|r| r.type_name == type_name)
    }
}
