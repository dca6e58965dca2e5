//! Limits that bound what one GraphQL document may make the server do, beside depth and
//! complexity: how many times one field may be selected under one parent. Aliases let a
//! client ask for an expensive field hundreds of times in one request while each copy stays
//! cheap in the complexity count of its own; this caps the copies with a clear error.

use std::collections::{HashMap, HashSet};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Pos, ServerError, ServerResult, Variables};
use std::sync::Arc;

/// Complexity points of the fields whose resolvers do far more than read a row: one point is
/// an ordinary field. `fleetComparison` reads every scan of every target in the period (about
/// 8 ms for a small org, growing with it), `compareScans` two scans' findings, `targetTrend` one
/// target's scans; a text `search` cannot use an index. With the default limit of 1000, a
/// request holds at most a handful of them.
pub const FLEET_COMPARISON_COST: usize = 200;
pub const COMPARE_SCANS_COST: usize = 100;
pub const TARGET_TREND_COST: usize = 25;
/// `compliance` groups the org's (or a target's) findings by CWE list, and its scans and
/// rules by scanner; `complianceTrend` does the same with one bucket per day or week.
pub const COMPLIANCE_COST: usize = 100;
pub const COMPLIANCE_TREND_COST: usize = 200;
/// `findingStats`: its fields each run one grouped query over the scope's findings.
pub const FINDING_STATS_COST: usize = 100;
/// A list's own cost, with and without a text search.
pub fn list_cost(search: Option<&String>) -> usize {
    if search.is_some_and(|s| !s.is_empty()) {
        50
    } else {
        5
    }
}

/// Selections visited at most while counting; fragments spread into fragments could
/// otherwise make the walk itself the expensive part.
const MAX_VISITS: usize = 20_000;

/// Refuses documents that select one field more than `max` times under one parent.
pub struct AliasLimit {
    pub max: usize,
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension { max: self.max })
    }
}

struct AliasLimitExtension {
    max: usize,
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document, self.max)?;
        Ok(document)
    }
}

fn refuse(message: String, pos: Pos) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, e| e.set("code", "BAD_REQUEST"))
        .into_server_error(pos)
}

/// What the walk has seen: per parent (the path of response keys from the operation's root)
/// and field name, the distinct response keys it is selected under. The same response key
/// twice is one execution (GraphQL merges them), so it counts once.
#[derive(Default)]
struct Walk<'a> {
    seen: HashMap<(String, &'a str), HashSet<&'a str>>,
    visits: usize,
}

impl<'a> Walk<'a> {
    fn visit(
        &mut self,
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        parent: &str,
        spreading: &mut Vec<&'a str>,
        max: usize,
    ) -> ServerResult<()> {
        for selection in &set.items {
            self.visits += 1;
            if self.visits > MAX_VISITS {
                return Err(refuse(
                    format!("the query expands to more than {MAX_VISITS} selections"),
                    selection.pos,
                ));
            }
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let key = field
                        .node
                        .alias
                        .as_ref()
                        .map_or(name, |alias| alias.node.as_str());
                    let keys = self.seen.entry((parent.to_string(), name)).or_default();
                    keys.insert(key);
                    if keys.len() > max {
                        return Err(refuse(
                            format!(
                                "field `{name}` is selected more than {max} times under one parent (aliases included); ask for it at most {max} times per request"
                            ),
                            field.pos,
                        ));
                    }
                    let path = format!("{parent}.{key}");
                    self.visit(
                        document,
                        &field.node.selection_set.node,
                        &path,
                        spreading,
                        max,
                    )?;
                }
                Selection::InlineFragment(fragment) => {
                    self.visit(
                        document,
                        &fragment.node.selection_set.node,
                        parent,
                        spreading,
                        max,
                    )?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A cycle is the validator's to report; here it only must not loop.
                    if spreading.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = document.fragments.get(name) {
                        spreading.push(name);
                        self.visit(
                            document,
                            &fragment.node.selection_set.node,
                            parent,
                            spreading,
                            max,
                        )?;
                        spreading.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

/// # Errors
/// `BAD_REQUEST` naming the first field selected more than `max` times under one parent.
fn check(document: &ExecutableDocument, max: usize) -> ServerResult<()> {
    let mut walk = Walk::default();
    for (_, operation) in document.operations.iter() {
        walk.visit(
            document,
            &operation.node.selection_set.node,
            "",
            &mut Vec::new(),
            max,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(query: &str, max: usize) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        check(&document, max).map_err(|e| e.message)
    }

    #[test]
    fn aliases_of_one_field_are_counted_under_their_parent() {
        assert!(checked("{ a: serverInfo { name } b: serverInfo { name } }", 2).is_ok());
        let err = checked(
            "{ a: serverInfo { name } b: serverInfo { name } c: serverInfo { name } }",
            2,
        )
        .unwrap_err();
        assert!(err.contains("`serverInfo`"), "{err}");
        // The same response key twice is one execution.
        assert!(checked(
            "{ serverInfo { name } serverInfo { name } serverInfo { name } }",
            1
        )
        .is_ok());
    }

    #[test]
    fn fragments_count_toward_the_parent_they_are_spread_into() {
        let query = "query { ...A ...B c: serverInfo { name } }
            fragment A on Query { a: serverInfo { name } }
            fragment B on Query { ... on Query { b: serverInfo { name } } }";
        assert!(checked(query, 2).is_err());
        assert!(checked(query, 3).is_ok());
        // A cycle does not hang the walk.
        assert!(checked("{ ...A } fragment A on Query { ...A }", 2).is_ok());
    }

    #[test]
    fn nested_parents_are_apart() {
        assert!(checked("{ x: me { a: kind b: kind } y: me { a: kind b: kind } }", 2).is_ok());
    }
}
