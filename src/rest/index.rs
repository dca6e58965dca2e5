//! What the REST layer needs to know about the GraphQL schema: every type, field, argument and
//! enum value with its description. Read once at start-up from the schema's own SDL, so it can
//! never disagree with what `/graphql` serves, and needs no running server or database.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, InputValueDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::Positioned;

pub use async_graphql::parser::types::Type;

/// An argument or an input-object field.
#[derive(Clone, Debug)]
pub struct InputDef {
    pub name: String,
    pub ty: Type,
    pub description: Option<String>,
    pub has_default: bool,
}

impl InputDef {
    /// Must the client give it?
    pub fn required(&self) -> bool {
        !self.ty.nullable && !self.has_default
    }
}

/// A field of an object type.
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub ty: Type,
    pub description: Option<String>,
    pub args: Vec<InputDef>,
}

/// The kinds of type the REST layer distinguishes.
#[derive(Clone, Debug)]
pub enum Kind {
    Scalar,
    /// GraphQL spellings, in declaration order, with their descriptions.
    Enum(Vec<(String, Option<String>)>),
    Object(Vec<(String, FieldDef)>),
    Input(Vec<InputDef>),
    /// Interfaces and unions: not used by REST rows.
    Other,
}

#[derive(Clone, Debug)]
pub struct TypeDef {
    pub description: Option<String>,
    pub kind: Kind,
}

/// Every named type of a schema.
#[derive(Clone, Debug)]
pub struct SchemaIndex {
    pub types: HashMap<String, TypeDef>,
    pub query: String,
    pub mutation: Option<String>,
}

fn input_def(def: &Positioned<InputValueDefinition>) -> InputDef {
    let def = &def.node;
    InputDef {
        name: def.name.node.to_string(),
        ty: def.ty.node.clone(),
        description: def.description.as_ref().map(|d| d.node.clone()),
        has_default: def.default_value.is_some(),
    }
}

impl SchemaIndex {
    /// Indexes a schema from its SDL.
    ///
    /// # Errors
    /// When the SDL does not parse.
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let doc = async_graphql::parser::parse_schema(sdl)
            .map_err(|e| format!("the schema's SDL does not parse: {e}"))?;
        let mut index = Self {
            types: HashMap::new(),
            query: "Query".into(),
            mutation: None,
        };
        for scalar in ["String", "Int", "Float", "Boolean", "ID"] {
            index.types.insert(
                scalar.into(),
                TypeDef {
                    description: None,
                    kind: Kind::Scalar,
                },
            );
        }
        for definition in doc.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        index.query = query.node.to_string();
                    }
                    index.mutation = schema.node.mutation.as_ref().map(|m| m.node.to_string());
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let kind = match ty.kind {
                        TypeKind::Scalar => Kind::Scalar,
                        TypeKind::Enum(e) => Kind::Enum(
                            e.values
                                .iter()
                                .map(|v| {
                                    (
                                        v.node.value.node.to_string(),
                                        v.node.description.as_ref().map(|d| d.node.clone()),
                                    )
                                })
                                .collect(),
                        ),
                        TypeKind::Object(o) => Kind::Object(
                            o.fields
                                .iter()
                                .map(|f| {
                                    let f = &f.node;
                                    (
                                        f.name.node.to_string(),
                                        FieldDef {
                                            ty: f.ty.node.clone(),
                                            description: f
                                                .description
                                                .as_ref()
                                                .map(|d| d.node.clone()),
                                            args: f.arguments.iter().map(input_def).collect(),
                                        },
                                    )
                                })
                                .collect(),
                        ),
                        TypeKind::InputObject(i) => {
                            Kind::Input(i.fields.iter().map(input_def).collect())
                        }
                        TypeKind::Interface(_) | TypeKind::Union(_) => Kind::Other,
                    };
                    index.types.insert(
                        ty.name.node.to_string(),
                        TypeDef {
                            description: ty.description.map(|d| d.node),
                            kind,
                        },
                    );
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        index.respell_descriptions();
        Ok(index)
    }

    /// Doc comments name enum values as GraphQL spells them (`` `WRITE` ``); REST readers see
    /// the REST spelling (`` `write` ``).
    fn respell_descriptions(&mut self) {
        let values: std::collections::HashSet<String> = self
            .types
            .values()
            .filter_map(|t| match &t.kind {
                Kind::Enum(values) => Some(values.iter().map(|(v, _)| v.clone())),
                _ => None,
            })
            .flatten()
            .collect();
        let respell = |text: &mut Option<String>| {
            if let Some(text) = text {
                let parts: Vec<String> = text
                    .split('`')
                    .enumerate()
                    .map(|(i, part)| {
                        if i % 2 == 1 && values.contains(part) {
                            part.to_lowercase()
                        } else {
                            part.to_string()
                        }
                    })
                    .collect();
                *text = parts.join("`");
            }
        };
        for def in self.types.values_mut() {
            respell(&mut def.description);
            match &mut def.kind {
                Kind::Object(fields) => {
                    for (_, field) in fields {
                        respell(&mut field.description);
                        for arg in &mut field.args {
                            respell(&mut arg.description);
                        }
                    }
                }
                Kind::Input(fields) => {
                    for field in fields {
                        respell(&mut field.description);
                    }
                }
                Kind::Enum(values) => {
                    for (_, d) in values {
                        respell(d);
                    }
                }
                Kind::Scalar | Kind::Other => {}
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The field `name` of object type `ty`.
    pub fn field(&self, ty: &str, name: &str) -> Option<&FieldDef> {
        match &self.get(ty)?.kind {
            Kind::Object(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, f)| f),
            _ => None,
        }
    }
}

/// The named type under any list and non-null wrappers.
pub fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// The item type when `ty` is a list.
pub fn list_item(ty: &Type) -> Option<&Type> {
    match &ty.base {
        BaseType::List(inner) => Some(inner),
        BaseType::Named(_) => None,
    }
}

/// Whether a variable of type `var` may be passed where `arg` is expected (GraphQL's "variable
/// in allowed position" rule; `has_default` loosens a nullable variable for a non-null place).
pub fn fits(var: &Type, arg: &Type, has_default: bool) -> bool {
    if !arg.nullable && var.nullable && !has_default {
        return false;
    }
    match (&var.base, &arg.base) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => fits(a, b, false),
        _ => false,
    }
}
