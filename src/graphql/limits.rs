//! Depth and complexity limits that leave introspection to bounds of its own.
//!
//! async-graphql's `limit_depth` counts every field, so the standard introspection query of
//! graphql-js 16 (GraphiQL's) and graphql-core 3.3 (depth 15: nine `ofType` levels under
//! `__schema.types.fields.args.type`) is refused by any depth limit an API would choose for its
//! own data. Here the configured limits apply to the application's fields only; the
//! `__schema` / `__type` subtrees, answered from the in-memory registry, get their own bounds
//! (depth, size, and graphql-js's limit on nested type lists that stops a query from
//! multiplying the schema by itself).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use crate::error::AppError;

/// Deepest introspection selection accepted, counted from `__schema` / `__type` (1) down.
/// The standard queries reach 15 (graphql-js's and graphql-core's default nine `ofType`
/// levels); this leaves room for clients that ask a few levels more.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;
/// Largest introspection complexity accepted (one point per field, like the application's
/// complexity). The standard queries cost about 230; this admits one with every option and a
/// few single-type look-ups beside it, not many aliased copies of the whole schema.
pub const INTROSPECTION_MAX_COMPLEXITY: usize = 400;
/// Most type lists (`fields`, `inputFields`, `interfaces`, `possibleTypes`) nested inside one
/// another, as graphql-js's `MaxIntrospectionDepthRule` allows: deeper nesting multiplies the
/// answer by the schema's size at every level while costing a few points.
pub const INTROSPECTION_MAX_TYPE_LISTS: usize = 2;

/// The fields of `__Type` that list other types, each of which can list types again.
const TYPE_LISTS: [&str; 4] = ["fields", "inputFields", "interfaces", "possibleTypes"];

/// The schema extension enforcing the limits; one instance per request.
pub struct QueryLimits {
    /// Deepest selection of application fields.
    pub max_depth: usize,
    /// Largest complexity of application fields (as async-graphql computes it, with each
    /// field's own cost).
    pub max_complexity: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            shape: Mutex::new(None),
        })
    }
}

struct LimitsExtension {
    max_depth: usize,
    max_complexity: usize,
    /// Measured when the query is parsed, enforced once validation has computed complexity.
    shape: Mutex<Option<Shape>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.shape.lock().unwrap_or_else(|p| p.into_inner()) = Some(Shape::of(&document));
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let shape = self
            .shape
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let refuse = |message: &str| {
            // The contract's code, as every other GraphQL error carries it.
            let mut error = ServerError::new(message, None);
            error.extensions =
                async_graphql::Error::from(AppError::bad_request(message)).extensions;
            Err(vec![error])
        };
        // async-graphql's complexity covers every field; introspection fields carry no cost
        // function, so theirs is exactly the one point per field counted here.
        let complexity = result
            .complexity
            .saturating_sub(shape.introspection.complexity);
        if complexity > self.max_complexity {
            return refuse("Query is too complex.");
        }
        if shape.depth > self.max_depth {
            return refuse("Query is nested too deep.");
        }
        if shape.introspection.complexity > INTROSPECTION_MAX_COMPLEXITY {
            return refuse("Introspection query is too complex.");
        }
        if shape.introspection.depth > INTROSPECTION_MAX_DEPTH {
            return refuse("Introspection query is nested too deep.");
        }
        if shape.introspection.type_lists > INTROSPECTION_MAX_TYPE_LISTS {
            return refuse("Introspection query nests type lists too deep.");
        }
        Ok(ValidationResult {
            complexity,
            depth: shape.depth,
            ..result
        })
    }
}

/// What the limits look at in a document: measured over all its operations, with fragments
/// inlined, the way async-graphql's own depth and complexity visitors do (`__typename`, which
/// they skip, is skipped here too).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Deepest application field.
    pub depth: usize,
    /// The `__schema` / `__type` subtrees.
    pub introspection: Introspection,
}

/// The measure of a document's introspection selections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Introspection {
    /// Deepest field, `__schema` / `__type` being 1.
    pub depth: usize,
    /// One point per field.
    pub complexity: usize,
    /// Most type lists nested in one another.
    pub type_lists: usize,
}

/// Where a selection set sits: how many fields are above it, and inside introspection, how
/// many of them and how many type lists.
#[derive(Clone, Copy)]
struct Position {
    depth: usize,
    introspection: Option<(usize, usize)>,
}

impl Shape {
    /// Measures `document`.
    pub fn of(document: &ExecutableDocument) -> Self {
        let mut walk = Walk {
            document,
            shape: Shape::default(),
            fragments: HashSet::new(),
        };
        for (_, operation) in document.operations.iter() {
            let root = Position {
                depth: 0,
                introspection: None,
            };
            let is_query = operation.node.ty == OperationType::Query;
            walk.selection_set(&operation.node.selection_set.node, root, is_query);
        }
        walk.shape
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    shape: Shape,
    /// Fragments being expanded on the current path (a cycle is a validation error; this
    /// only keeps the walk finite until validation reports it).
    fragments: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet, at: Position, query_root: bool) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let depth = at.depth + 1;
                    let introspection = match at.introspection {
                        Some((fields, lists)) => {
                            Some((fields + 1, lists + usize::from(TYPE_LISTS.contains(&name))))
                        }
                        None if query_root && (name == "__schema" || name == "__type") => {
                            Some((1, 0))
                        }
                        None => None,
                    };
                    match introspection {
                        Some((fields, lists)) => {
                            let i = &mut self.shape.introspection;
                            i.complexity += 1;
                            i.depth = i.depth.max(fields);
                            i.type_lists = i.type_lists.max(lists);
                        }
                        None => self.shape.depth = self.shape.depth.max(depth),
                    }
                    let below = Position {
                        depth,
                        introspection,
                    };
                    self.selection_set(&field.node.selection_set.node, below, false);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if !self.fragments.insert(name) {
                        continue;
                    }
                    self.selection_set(&fragment.node.selection_set.node, at, query_root);
                    self.fragments.remove(name);
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, at, query_root);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Shape {
        Shape::of(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn application_depth_counts_fields_through_fragments() {
        let s = shape(
            "query { scans { edges { ...E } } } fragment E on ScanEdge { node { ... on Scan { id } } }",
        );
        assert_eq!(s.depth, 4);
        assert_eq!(s.introspection, Introspection::default());
    }

    #[test]
    fn introspection_is_measured_apart_from_the_application() {
        let s = shape(
            "{ serverInfo { name } __schema { types { fields { type { ofType { name } } } } } }",
        );
        assert_eq!(s.depth, 2);
        assert_eq!(
            s.introspection,
            Introspection {
                depth: 6,
                complexity: 6,
                type_lists: 1
            }
        );
    }

    #[test]
    fn nested_type_lists_are_counted() {
        let s = shape(
            "{ __type(name: \"Query\") { fields { type { fields { type { interfaces { name } } } } } } }",
        );
        assert_eq!(s.introspection.type_lists, 3);
    }

    #[test]
    fn introspection_names_count_as_introspection_only_on_the_query_root() {
        // Not valid GraphQL (validation refuses it); measured as application fields.
        let s = shape("{ scans { __schema { types { name } } } }");
        assert_eq!(s.depth, 4);
        assert_eq!(s.introspection.complexity, 0);
        let s = shape("mutation { __schema { types { name } } }");
        assert_eq!(s.depth, 3);
    }

    #[test]
    fn typename_is_skipped_and_fragment_cycles_end() {
        let s = shape("{ __typename a { ...F } } fragment F on A { __typename b { ...F } }");
        assert_eq!(s.depth, 2);
    }
}
