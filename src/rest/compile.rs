//! Turns table rows into checked, parsed routes, once, at start-up. A row that names an unknown
//! field, leaves a variable unsourced, sources a variable the operation does not declare, or
//! breaks any other rule here fails start-up (and the unit tests), never a request.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection,
};

use super::convert::snake_case;
use super::index::{fits, list_item, named, Kind, SchemaIndex, Type};
use super::row::{Envelope, Method, Route, Source};
use super::select::{page_keys, Walker};
pub use super::select::{PageKeys, Shape, ShapeKind};

/// One connection of an [`Envelope::Pages`] row: its response key, page facts and node shape.
pub type PagedList = (String, PageKeys, Shape);

/// A variable of a compiled row.
#[derive(Clone, Debug)]
pub struct CompiledVar {
    /// GraphQL name.
    pub name: String,
    /// REST name (snake_case).
    pub rest: String,
    pub source: Source,
    pub ty: Type,
    pub has_default: bool,
    /// The description of the argument it feeds.
    pub description: Option<String>,
}

impl CompiledVar {
    pub fn required(&self) -> bool {
        !self.ty.nullable && !self.has_default
    }
}

/// A row, checked against the schema and parsed.
#[derive(Clone, Debug)]
pub struct CompiledRoute {
    pub row: Route,
    pub operation_name: String,
    pub document: ExecutableDocument,
    pub root_key: String,
    pub root_description: Option<String>,
    /// The root field's value.
    pub shape: Shape,
    /// For [`Envelope::Page`]: the node's shape and where the page facts are.
    pub page: Option<(PageKeys, Shape)>,
    /// For [`Envelope::Pages`]: each connection's response key, page facts and node shape,
    /// and the shape of `data` (an object of node lists).
    pub pages: Option<(Vec<PagedList>, Shape)>,
    pub vars: Vec<CompiledVar>,
}

impl CompiledRoute {
    /// The shape of what goes under `data` (the node for lists).
    pub fn data_shape(&self) -> &Shape {
        match (&self.page, &self.pages) {
            (Some((_, node)), _) => node,
            (None, Some((_, data))) => data,
            (None, None) => &self.shape,
        }
    }
}

/// The `{name}` segments of a path template.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Checks and parses one row.
///
/// # Errors
/// A message naming the row and what is wrong with it.
pub fn compile(index: &SchemaIndex, row: &Route) -> Result<CompiledRoute, String> {
    let at = format!("{} {}", row.method.as_str(), row.path);
    let fail = |msg: String| format!("REST row {at}: {msg}");
    let document = async_graphql::parser::parse_query(row.operation)
        .map_err(|e| fail(format!("the operation does not parse: {e}")))?;
    let (name, operation) = match &document.operations {
        DocumentOperations::Multiple(ops) if ops.len() == 1 => ops
            .iter()
            .next()
            .map(|(n, o)| (n.to_string(), o.node.clone()))
            .ok_or_else(|| fail("no operation".into()))?,
        _ => return Err(fail("needs exactly one named operation".into())),
    };
    if !document.fragments.is_empty() {
        return Err(fail("fragments are not supported in REST rows".into()));
    }
    let root_type = match operation.ty {
        OperationType::Query => index.query.clone(),
        OperationType::Mutation if row.method == Method::Get => {
            return Err(fail("GET must run a query, not a mutation".into()))
        }
        OperationType::Mutation => index
            .mutation
            .clone()
            .ok_or_else(|| fail("the schema has no mutations".into()))?,
        OperationType::Subscription => {
            return Err(fail("subscriptions cannot be REST rows".into()))
        }
    };
    let [root] = operation.selection_set.node.items.as_slice() else {
        return Err(fail(
            "the operation must select exactly one root field".into(),
        ));
    };
    let Selection::Field(root) = &root.node else {
        return Err(fail("the root selection must be a field".into()));
    };
    let root = &root.node;
    let root_name = root.name.node.as_str();
    let root_key = root
        .alias
        .as_ref()
        .map_or(root_name, |a| a.node.as_str())
        .to_string();
    let def = index
        .field(&root_type, root_name)
        .ok_or_else(|| fail(format!("{root_type} has no field {root_name}")))?
        .clone();
    let mut walker = Walker {
        index,
        used: Vec::new(),
    };
    walker
        .arguments(&def, &root.arguments, root_name)
        .map_err(&fail)?;
    let shape = walker
        .shape(
            &def.ty,
            def.description.clone(),
            &root.selection_set.node,
            root_name,
        )
        .map_err(&fail)?;

    // Variables: each declared one is sourced exactly once, used, and fits where it is used.
    let mut vars = Vec::new();
    for var_def in &operation.variable_definitions {
        let var_def = &var_def.node;
        let var_name = var_def.name.node.to_string();
        let sourced: Vec<_> = row.vars.iter().filter(|v| v.name == var_name).collect();
        let [source] = sourced.as_slice() else {
            return Err(fail(format!(
                "variable ${var_name} must be sourced exactly once (it is sourced {} times)",
                sourced.len()
            )));
        };
        let ty = var_def.var_type.node.clone();
        let has_default = var_def.default_value.is_some();
        let uses: Vec<_> = walker
            .used
            .iter()
            .filter(|(n, _, _)| *n == var_name)
            .collect();
        if uses.is_empty() {
            return Err(fail(format!("variable ${var_name} is never used")));
        }
        for (_, expected, _) in &uses {
            if !fits(&ty, expected, has_default) {
                return Err(fail(format!(
                    "variable ${var_name}: {ty} cannot be passed where {expected} is expected"
                )));
            }
        }
        let base = index
            .get(named(&ty))
            .ok_or_else(|| fail(format!("variable ${var_name}: unknown type {}", named(&ty))))?;
        let simple = matches!(base.kind, Kind::Scalar | Kind::Enum(_));
        match source.source {
            Source::Path if !simple || list_item(&ty).is_some() || ty.nullable => {
                return Err(fail(format!(
                    "path variable ${var_name} must be a non-null scalar or enum"
                )))
            }
            Source::Query if !simple || list_item(&ty).and_then(list_item).is_some() => {
                return Err(fail(format!(
                    "query variable ${var_name} must be a scalar, an enum or a list of them"
                )))
            }
            Source::Body if !matches!(base.kind, Kind::Input(_)) || list_item(&ty).is_some() => {
                return Err(fail(format!(
                    "body variable ${var_name} must be an input object"
                )))
            }
            _ => {}
        }
        vars.push(CompiledVar {
            rest: snake_case(&var_name),
            name: var_name,
            source: source.source,
            ty,
            has_default,
            description: uses.iter().find_map(|(_, _, d)| d.clone()),
        });
    }
    for var in row.vars {
        if !vars.iter().any(|v| v.name == var.name) {
            return Err(fail(format!(
                "sources ${} but the operation declares no such variable",
                var.name
            )));
        }
    }
    for used in &walker.used {
        if !vars.iter().any(|v| v.name == used.0) {
            return Err(fail(format!("uses ${} without declaring it", used.0)));
        }
    }
    let params = path_params(row.path);
    for var in vars.iter().filter(|v| v.source == Source::Path) {
        if !params.contains(&var.rest.as_str()) {
            return Err(fail(format!(
                "path variable ${} needs `{{{}}}` in the path",
                var.name, var.rest
            )));
        }
    }
    for param in &params {
        if !vars
            .iter()
            .any(|v| v.source == Source::Path && v.rest == *param)
        {
            return Err(fail(format!(
                "path segment {{{param}}} is not a path variable"
            )));
        }
    }
    if vars.iter().filter(|v| v.source == Source::Body).count() > 1
        || (vars.iter().any(|v| v.source == Source::Body)
            && vars
                .iter()
                .any(|v| matches!(v.source, Source::BodyField | Source::BodyFieldOrCookie(_))))
    {
        return Err(fail(
            "the body is either one input variable or a set of field variables".into(),
        ));
    }
    let mut rest_names = HashSet::new();
    for var in &vars {
        if !matches!(var.source, Source::Body) && !rest_names.insert(var.rest.clone()) {
            return Err(fail(format!("two variables are both called {}", var.rest)));
        }
    }

    // Envelope and status.
    match (row.envelope, row.status) {
        (Envelope::Empty, 204) => {}
        (Envelope::Empty, _) | (_, 204) => {
            return Err(fail("204 and the empty envelope go together".into()))
        }
        (_, 200..=202) => {}
        (_, other) => return Err(fail(format!("status {other} is not a success status"))),
    }
    if matches!(row.envelope, Envelope::Page | Envelope::Pages) {
        for needed in ["page", "pageSize"] {
            if !vars
                .iter()
                .any(|v| v.name == needed && v.source == Source::Query)
            {
                return Err(fail(format!(
                    "a paged row must take ${needed} from the query"
                )));
            }
        }
    }
    let pages = match row.envelope {
        Envelope::Pages => Some(paged_lists(&shape, root_name).map_err(&fail)?),
        _ => None,
    };
    let page = match row.envelope {
        Envelope::Page => Some(page_keys(&shape, root_name).map_err(&fail)?),
        _ => None,
    };
    Ok(CompiledRoute {
        row: *row,
        operation_name: name,
        document,
        root_key,
        root_description: def.description,
        shape,
        page,
        pages,
        vars,
    })
}

/// The connections of an [`Envelope::Pages`] row: every field its root selects, each a
/// connection; and the shape of `data`, an object of their node lists.
fn paged_lists(shape: &Shape, at: &str) -> Result<(Vec<PagedList>, Shape), String> {
    let ShapeKind::Object(fields) = &shape.kind else {
        return Err(format!(
            "{at}: a row of several pages must select an object of connections"
        ));
    };
    let mut lists = Vec::with_capacity(fields.len());
    let mut data = Vec::with_capacity(fields.len());
    for (key, field) in fields {
        let (keys, node) = page_keys(field, &format!("{at}.{key}"))?;
        data.push((
            key.clone(),
            Shape {
                nullable: false,
                description: field.description.clone(),
                type_description: None,
                kind: ShapeKind::List(Box::new(node.clone())),
            },
        ));
        lists.push((key.clone(), keys, node));
    }
    let data = Shape {
        nullable: false,
        description: shape.description.clone(),
        type_description: shape.type_description.clone(),
        kind: ShapeKind::Object(data),
    };
    Ok((lists, data))
}

/// Compiles the whole table.
///
/// # Errors
/// The first malformed row, or two rows with the same method and path or operation name.
pub fn compile_all(index: &SchemaIndex, rows: &[Route]) -> Result<Vec<CompiledRoute>, String> {
    let mut seen = HashSet::new();
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if !seen.insert((row.method, row.path)) {
            return Err(format!(
                "REST row {} {} appears twice",
                row.method.as_str(),
                row.path
            ));
        }
        let compiled = compile(index, row)?;
        if !names.insert(compiled.operation_name.clone()) {
            return Err(format!(
                "REST row {} {}: operation name {} is used by another row",
                row.method.as_str(),
                row.path,
                compiled.operation_name
            ));
        }
        out.push(compiled);
    }
    Ok(out)
}
