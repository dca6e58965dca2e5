//! The selection side of a row: what the operation selects, walked against the schema into
//! the REST shape of the answer (names, types, enums, descriptions) and checked on the way.

use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::parser::Positioned;
use async_graphql_value::Value;

use super::convert::snake_case;
use super::index::{list_item, named, FieldDef, Kind, SchemaIndex, Type};

/// The REST shape of a value the operation selects.
#[derive(Clone, Debug)]
pub struct Shape {
    pub nullable: bool,
    /// The field's description, else its type's.
    pub description: Option<String>,
    pub type_description: Option<String>,
    pub kind: ShapeKind,
}

#[derive(Clone, Debug)]
pub enum ShapeKind {
    /// A GraphQL scalar, by name (`String`, `UUID`, `DateTime`, ...).
    Scalar(String),
    /// An enum: its GraphQL name and its values as REST spells them.
    Enum(String, Vec<String>),
    /// Selected fields by response key (the alias, else the field name).
    Object(Vec<(String, Shape)>),
    List(Box<Shape>),
}

impl Shape {
    /// The field under response key `key` of an object shape.
    pub fn get(&self, key: &str) -> Option<&Shape> {
        match &self.kind {
            ShapeKind::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, s)| s),
            _ => None,
        }
    }
}

/// Where a connection keeps what the list envelope needs (response keys).
#[derive(Clone, Debug)]
pub struct PageKeys {
    pub total: String,
    pub page: String,
    pub page_size: String,
    pub total_pages: String,
    pub edges: String,
    pub node: String,
}

fn is_snake(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) struct Walker<'a> {
    pub(super) index: &'a SchemaIndex,
    /// Variable name → the description of the argument it feeds, and its expected type.
    pub(super) used: Vec<(String, Type, Option<String>)>,
}

impl Walker<'_> {
    pub(super) fn shape(
        &mut self,
        ty: &Type,
        description: Option<String>,
        set: &SelectionSet,
        at: &str,
    ) -> Result<Shape, String> {
        let kind = if let Some(item) = list_item(ty) {
            ShapeKind::List(Box::new(self.shape(item, None, set, at)?))
        } else {
            let name = named(ty);
            let def = self
                .index
                .get(name)
                .ok_or_else(|| format!("{at}: unknown type {name}"))?;
            match &def.kind {
                Kind::Scalar | Kind::Enum(_) if !set.items.is_empty() => {
                    return Err(format!("{at}: {name} has no fields to select"))
                }
                Kind::Scalar => ShapeKind::Scalar(name.to_string()),
                Kind::Enum(values) => ShapeKind::Enum(
                    name.to_string(),
                    values.iter().map(|(v, _)| v.to_lowercase()).collect(),
                ),
                Kind::Object(_) if set.items.is_empty() => {
                    return Err(format!("{at}: {name} needs a selection of fields"))
                }
                Kind::Object(_) => ShapeKind::Object(self.fields(name, set, at)?),
                Kind::Input(_) | Kind::Other => {
                    return Err(format!("{at}: {name} cannot be selected by a REST row"))
                }
            }
        };
        let type_description = self
            .index
            .get(named(ty))
            .and_then(|d| d.description.clone());
        Ok(Shape {
            nullable: ty.nullable,
            description: description.or_else(|| type_description.clone()),
            type_description,
            kind,
        })
    }

    fn fields(
        &mut self,
        parent: &str,
        set: &SelectionSet,
        at: &str,
    ) -> Result<Vec<(String, Shape)>, String> {
        let mut out: Vec<(String, Shape)> = Vec::new();
        for item in &set.items {
            let Selection::Field(field) = &item.node else {
                return Err(format!("{at}: fragments are not supported in REST rows"));
            };
            let field = &field.node;
            let name = field.name.node.as_str();
            let key = field.alias.as_ref().map_or(name, |a| a.node.as_str());
            let path = format!("{at}.{key}");
            if !is_snake(key) {
                return Err(format!(
                    "{path}: REST field names are snake_case; alias it (`{}: {name}`)",
                    snake_case(name)
                ));
            }
            if out.iter().any(|(k, _)| k == key) {
                return Err(format!("{path}: selected twice"));
            }
            let def = self
                .index
                .field(parent, name)
                .ok_or_else(|| format!("{path}: {parent} has no field {name}"))?
                .clone();
            self.arguments(&def, &field.arguments, &path)?;
            let shape = self.shape(
                &def.ty,
                def.description.clone(),
                &field.selection_set.node,
                &path,
            )?;
            out.push((key.to_string(), shape));
        }
        Ok(out)
    }

    /// Records the variables in an argument value, with the type expected where each sits
    /// (inside input-object and list literals too). Literals are left to GraphQL to check.
    fn collect(
        &mut self,
        value: &Value,
        ty: &Type,
        description: Option<&String>,
        at: &str,
    ) -> Result<(), String> {
        match value {
            Value::Variable(var) => {
                self.used
                    .push((var.to_string(), ty.clone(), description.cloned()));
            }
            Value::List(items) => {
                let item_ty = list_item(ty).unwrap_or(ty).clone();
                for item in items {
                    self.collect(item, &item_ty, description, at)?;
                }
            }
            Value::Object(fields) => {
                let input = self.index.get(named(ty)).map(|d| d.kind.clone());
                let Some(Kind::Input(defs)) = input else {
                    return Err(format!("{at}: {} is not an input object", named(ty)));
                };
                for (name, value) in fields {
                    let def = defs
                        .iter()
                        .find(|d| d.name == name.as_str())
                        .ok_or_else(|| format!("{at}: {} has no field {name}", named(ty)))?;
                    self.collect(value, &def.ty, def.description.as_ref(), at)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn arguments(
        &mut self,
        def: &FieldDef,
        args: &[(Positioned<async_graphql_value::Name>, Positioned<Value>)],
        at: &str,
    ) -> Result<(), String> {
        for (name, value) in args {
            let arg = def
                .args
                .iter()
                .find(|a| a.name == name.node.as_str())
                .ok_or_else(|| format!("{at}: no argument {}", name.node))?;
            self.collect(&value.node, &arg.ty, arg.description.as_ref(), at)?;
        }
        for arg in def.args.iter().filter(|a| a.required()) {
            if !args.iter().any(|(n, _)| n.node.as_str() == arg.name) {
                return Err(format!("{at}: required argument {} is missing", arg.name));
            }
        }
        Ok(())
    }
}

pub(super) fn page_keys(shape: &Shape, at: &str) -> Result<(PageKeys, Shape), String> {
    let ShapeKind::Object(fields) = &shape.kind else {
        return Err(format!("{at}: a paged row must select a connection"));
    };
    // Response keys are snake_case of the field names (checked above), so look them up so.
    let key = |field: &str| -> Result<String, String> {
        let want = snake_case(field);
        fields
            .iter()
            .find(|(k, _)| *k == want)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| format!("{at}: a paged row must select `{want}: {field}`"))
    };
    let edges = key("edges")?;
    let node = shape
        .get(&edges)
        .and_then(|e| match &e.kind {
            ShapeKind::List(item) => item.get("node").map(|n| ("node".to_string(), n.clone())),
            _ => None,
        })
        .map(|(key, mut node)| {
            // "The item at the end of the edge" says nothing in REST: use the type's words.
            node.description = node.type_description.clone();
            (key, node)
        })
        .ok_or_else(|| format!("{at}: a paged row must select `edges {{ node {{ ... }} }}`"))?;
    Ok((
        PageKeys {
            total: key("totalCount")?,
            page: key("page")?,
            page_size: key("pageSize")?,
            total_pages: key("totalPages")?,
            edges,
            node: node.0,
        },
        node.1,
    ))
}
