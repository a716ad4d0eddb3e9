//! The unified model: `schema/*.graphql` parsed and checked into [`UnifiedModel`].
//!
//! The SDL is the source of truth frontends code against. This folder reads it and checks it
//! (types exist, `@resource` and `@link` are well formed); it knows nothing of providers,
//! HTTP or resolvers. `graphql` turns the model into the served async-graphql schema.

mod fit;
mod model;
mod parse;

pub use fit::{Misfit, fits, misfits};

pub use model::{
    EnumDef, FieldDef, FilterDef, LinkDef, ObjectDef, RESERVED_FIELDS, ResourceDef,
    STANDARD_MAPPED_FIELDS, ScalarDef, TypeRef, UnifiedModel,
};
pub use parse::load_dir;
