//! The GraphQL schema, assembled from the domain modules' objects.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

/// The schema every surface executes against (REST rows run operations on it too).
pub type AppSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Which server answered, so clients can check compatibility.
#[derive(SimpleObject)]
pub struct ServerInfo {
    /// Always `rampart`.
    pub name: String,
    /// The server's semantic version.
    pub version: String,
}

/// Read operations.
#[derive(Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The name and version of this server.
    async fn server_info(&self) -> ServerInfo {
        ServerInfo {
            name: "rampart".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Builds the schema with its limits.
pub fn build_schema() -> AppSchema {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .limit_depth(16)
        .limit_complexity(2_000)
        .finish()
}
