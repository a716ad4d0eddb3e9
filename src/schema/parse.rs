//! Reads `*.graphql` files and checks them into a [`UnifiedModel`], collecting every problem.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use async_graphql::Value as ConstValue;
use async_graphql::parser::types::{
    BaseType, ConstDirective, FieldDefinition, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::{Pos, Positioned};

use super::model::*;
use crate::problem::{Problem, Problems};

/// Type names the gateway itself defines around the unified model.
const GATEWAY_TYPES: &[&str] = &[
    "Query",
    "Mutation",
    "Subscription",
    "Node",
    "PageInfo",
    "LinkedAccount",
    "LinkedAccountStatus",
    "Provider",
    "Environment",
    "CreateEnvironmentPayload",
];
const BUILTIN_SCALARS: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];
/// Scalars every schema has, whether or not the SDL declares them.
pub(crate) const GATEWAY_SCALARS: &[&str] = &["JSON", "DateTime"];

/// Loads every `*.graphql` file of `dir` (except `*.snapshot.graphql`, which are printed
/// copies kept for review) in name order.
pub fn load_dir(dir: &Path) -> Result<UnifiedModel, Problems> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.ends_with(".graphql") && !name.ends_with(".snapshot.graphql")
            })
            .collect(),
        Err(err) => {
            return Err(Problems(vec![Problem::new(
                dir,
                "",
                format!("cannot read the schema directory: {err}"),
            )]));
        }
    };
    files.sort();
    if files.is_empty() {
        return Err(Problems(vec![Problem::new(
            dir,
            "",
            "no *.graphql file found",
        )]));
    }
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(err) => problems.push(Problem::new(&file, "", format!("cannot read: {err}"))),
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    parse_sources(&sources)
}

fn at(pos: Pos) -> String {
    format!("{}:{}", pos.line, pos.column)
}

struct Collector<'a> {
    file: &'a Path,
    problems: &'a mut Vec<Problem>,
}

impl Collector<'_> {
    fn push(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems
            .push(Problem::new(self.file, at(pos), message));
    }
}

/// Parses SDL texts (file name, text) into the model.
pub fn parse_sources(sources: &[(PathBuf, String)]) -> Result<UnifiedModel, Problems> {
    let mut problems = Vec::new();
    let mut model = UnifiedModel::default();
    // Positions are kept so cross-type checks can point at the right line.
    let mut field_positions: HashMap<(String, String), (PathBuf, Pos)> = HashMap::new();

    for (file, text) in sources {
        let doc = match async_graphql::parser::parse_schema(text) {
            Ok(doc) => doc,
            Err(err) => {
                let pos = err.positions().next().unwrap_or(Pos { line: 1, column: 1 });
                let message = err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                problems.push(Problem::new(file, at(pos), message));
                continue;
            }
        };
        let mut c = Collector {
            file,
            problems: &mut problems,
        };
        for def in doc.definitions {
            let ty = match def {
                TypeSystemDefinition::Type(ty) => ty,
                // Directive declarations document @resource/@link for editors; the schema
                // block is implied.
                TypeSystemDefinition::Directive(_) | TypeSystemDefinition::Schema(_) => continue,
            };
            let pos = ty.pos;
            let ty = ty.node;
            let name = ty.name.node.to_string();
            let description = ty.description.map(|d| d.node);
            if ty.extend {
                c.push(
                    pos,
                    format!("`extend type {name}` is not supported; edit the type itself"),
                );
                continue;
            }
            if GATEWAY_TYPES.contains(&name.as_str())
                || name.ends_with("Connection")
                || name.ends_with("Edge")
            {
                c.push(
                    pos,
                    format!("type name `{name}` is reserved for the gateway's own types"),
                );
                continue;
            }
            match ty.kind {
                TypeKind::Scalar => {
                    if !GATEWAY_SCALARS.contains(&name.as_str()) {
                        model.scalars.push(ScalarDef { name, description });
                    }
                }
                TypeKind::Enum(e) => model.enums.push(EnumDef {
                    name,
                    description,
                    values: e
                        .values
                        .iter()
                        .map(|v| v.node.value.node.to_string())
                        .collect(),
                }),
                TypeKind::Object(obj) => {
                    let resource = directive(&ty.directives, "resource");
                    let fields: Vec<FieldDef> = obj
                        .fields
                        .iter()
                        .filter_map(|f| {
                            field_positions.insert(
                                (name.clone(), f.node.name.node.to_string()),
                                (file.clone(), f.pos),
                            );
                            field_def(&mut c, f, resource.is_some())
                        })
                        .collect();
                    match resource {
                        Some(d) => match string_arg(d, "name") {
                            Some(resource) if is_lower_camel(&resource) => {
                                model.resources.push(ResourceDef {
                                    single_field: lower_first(&name),
                                    type_name: name,
                                    resource,
                                    description,
                                    fields,
                                })
                            }
                            Some(resource) => c.push(d.pos, format!("@resource(name: \"{resource}\") must be a lowerCamelCase plural such as \"contacts\"")),
                            None => c.push(d.pos, "@resource needs a string argument `name`"),
                        },
                        None => model.objects.push(ObjectDef { name, description, fields }),
                    }
                }
                TypeKind::InputObject(input) if name.ends_with("Filter") => {
                    let fields = input
                        .fields
                        .iter()
                        .map(|f| FieldDef {
                            name: f.node.name.node.to_string(),
                            description: f.node.description.as_ref().map(|d| d.node.clone()),
                            ty: type_ref(&f.node.ty.node),
                            link: None,
                        })
                        .collect();
                    model.filters.push(FilterDef {
                        type_name: name.trim_end_matches("Filter").to_string(),
                        description,
                        fields,
                    });
                }
                TypeKind::Interface(_) | TypeKind::Union(_) | TypeKind::InputObject(_) => {
                    c.push(pos, format!("`{name}`: interfaces, unions and input types (other than `<Type>Filter`) are not supported in the unified SDL yet"));
                }
            }
        }
    }

    check_references(&model, &field_positions, &mut problems);
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(Problems(problems))
    }
}

fn field_def(
    c: &mut Collector<'_>,
    f: &Positioned<FieldDefinition>,
    on_resource: bool,
) -> Option<FieldDef> {
    let name = f.node.name.node.to_string();
    if on_resource && RESERVED_FIELDS.contains(&name.as_str()) {
        c.push(
            f.pos,
            format!("field `{name}` is added by Tessera to every resource; remove it from the SDL"),
        );
        return None;
    }
    if !f.node.arguments.is_empty() {
        c.push(
            f.pos,
            format!("field `{name}`: arguments are not supported on unified fields"),
        );
        return None;
    }
    let link = match directive(&f.node.directives, "link") {
        Some(d) => match (string_arg(d, "resource"), string_arg(d, "field")) {
            (Some(resource), Some(field)) => Some(LinkDef { resource, field }),
            _ => {
                c.push(
                    d.pos,
                    format!("field `{name}`: @link needs string arguments `resource` and `field`"),
                );
                return None;
            }
        },
        None => None,
    };
    Some(FieldDef {
        name,
        description: f.node.description.as_ref().map(|d| d.node.clone()),
        ty: type_ref(&f.node.ty.node),
        link,
    })
}

fn check_references(
    model: &UnifiedModel,
    positions: &HashMap<(String, String), (PathBuf, Pos)>,
    problems: &mut Vec<Problem>,
) {
    let mut known: HashSet<&str> = BUILTIN_SCALARS
        .iter()
        .chain(GATEWAY_SCALARS)
        .copied()
        .collect();
    let mut seen = HashSet::new();
    let mut names: Vec<&str> = Vec::new();
    names.extend(model.scalars.iter().map(|s| s.name.as_str()));
    names.extend(model.enums.iter().map(|s| s.name.as_str()));
    names.extend(model.objects.iter().map(|s| s.name.as_str()));
    names.extend(model.resources.iter().map(|s| s.type_name.as_str()));
    for n in &names {
        if !seen.insert(*n) {
            problems.push(Problem::new(
                "schema",
                "",
                format!("type `{n}` is defined twice"),
            ));
        }
        known.insert(n);
    }
    for f in &model.filters {
        if model.resource_by_type(&f.type_name).is_none() {
            problems.push(Problem::new(
                "schema",
                "",
                format!(
                    "`{}Filter` filters no resource type `{}`",
                    f.type_name, f.type_name
                ),
            ));
        }
        for field in &f.fields {
            let base = field.ty.base();
            let scalar = BUILTIN_SCALARS.contains(&base)
                || GATEWAY_SCALARS.contains(&base)
                || model.enums.iter().any(|e| e.name == base);
            if !scalar {
                problems.push(Problem::new(
                    "schema",
                    "",
                    format!(
                        "`{}Filter.{}` must be a scalar or an enum, not `{base}`",
                        f.type_name, field.name
                    ),
                ));
            }
        }
    }
    let mut resources = HashSet::new();
    for r in &model.resources {
        if !resources.insert(r.resource.as_str()) {
            problems.push(Problem::new(
                "schema",
                "",
                format!("resource `{}` is declared by two types", r.resource),
            ));
        }
    }
    let typed_fields = model
        .objects
        .iter()
        .map(|o| (&o.name, &o.fields))
        .chain(model.resources.iter().map(|r| (&r.type_name, &r.fields)));
    for (type_name, fields) in typed_fields {
        for f in fields {
            let (file, pos) = positions
                .get(&(type_name.clone(), f.name.clone()))
                .cloned()
                .unwrap_or((PathBuf::from("schema"), Pos { line: 0, column: 0 }));
            let base = f.ty.base();
            if !known.contains(base) {
                problems.push(Problem::new(
                    &file,
                    at(pos),
                    format!("`{type_name}.{}` has unknown type `{base}`", f.name),
                ));
            }
            if let Some(link) = &f.link {
                match model.resource(&link.resource) {
                    None => problems.push(Problem::new(
                        &file,
                        at(pos),
                        format!(
                            "`{type_name}.{}`: @link names unknown resource `{}`",
                            f.name, link.resource
                        ),
                    )),
                    // `Company` (one id) or `[Contact!]` (a list of ids), never non-null: the
                    // related record can always be gone.
                    Some(target)
                        if target.type_name != base
                            || !matches!(&f.ty, TypeRef::Named(_) | TypeRef::List(_))
                            || matches!(&f.ty, TypeRef::List(inner) if matches!(inner.as_ref(), TypeRef::List(_))) =>
                    {
                        problems.push(Problem::new(
                            &file,
                            at(pos),
                            format!(
                                "`{type_name}.{}`: a @link field must have the nullable type `{}` or a list of it",
                                f.name, target.type_name
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            } else if model.resource_by_type(base).is_some() {
                problems.push(Problem::new(&file, at(pos), format!("`{type_name}.{}` refers to resource type `{base}`: add @link(resource:, field:) to say where its id comes from", f.name)));
            }
        }
    }
}

fn directive<'a>(
    directives: &'a [Positioned<ConstDirective>],
    name: &str,
) -> Option<&'a Positioned<ConstDirective>> {
    directives
        .iter()
        .find(|d| d.node.name.node.as_str() == name)
}

fn string_arg(d: &Positioned<ConstDirective>, name: &str) -> Option<String> {
    d.node.arguments.iter().find_map(|(n, v)| match &v.node {
        ConstValue::String(s) if n.node.as_str() == name => Some(s.clone()),
        _ => None,
    })
}

fn type_ref(ty: &Type) -> TypeRef {
    let inner = match &ty.base {
        BaseType::Named(n) => TypeRef::Named(n.to_string()),
        BaseType::List(t) => TypeRef::List(Box::new(type_ref(t))),
    };
    if ty.nullable {
        inner
    } else {
        TypeRef::NonNull(Box::new(inner))
    }
}

fn is_lower_camel(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UnifiedModel, Problems> {
        parse_sources(&[(PathBuf::from("crm.graphql"), text.to_string())])
    }

    #[test]
    fn reads_resources_links_and_value_types() {
        let m = parse(
            r#"type Contact @resource(name: "contacts") { firstName: String emails: [Email!] company: Company @link(resource: "companies", field: "companyId") }
               type Company @resource(name: "companies") { name: String }
               type Email { address: String! }"#,
        )
        .unwrap();
        let c = m.resource("contacts").unwrap();
        assert_eq!(c.single_field, "contact");
        assert_eq!(c.mapping_keys()[..3], ["firstName", "emails", "companyId"]);
        assert_eq!(m.objects[0].name, "Email");
    }

    #[test]
    fn reports_unknown_types_and_reserved_fields_with_lines() {
        let err = parse("type Contact @resource(name: \"contacts\") {\n  id: ID\n  x: Nope\n}")
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("crm.graphql: 2:3: field `id` is added by Tessera"),
            "{text}"
        );
        assert!(
            text.contains("crm.graphql: 3:3: `Contact.x` has unknown type `Nope`"),
            "{text}"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("type Contact {\n  firstName String\n}").unwrap_err();
        assert!(err.to_string().starts_with("crm.graphql: 2:"), "{err}");
    }
}
