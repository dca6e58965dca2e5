//! The GraphQL schema, assembled from the domain modules' objects, and the helpers resolvers
//! share to reach the caller and the services.

pub mod batch;
pub mod costs;
pub mod enums;
pub mod limits;
pub mod loaders;
pub mod pagination;

use async_graphql::{Context, MergedObject, MergedSubscription, Object, Schema, SimpleObject};

use crate::app::AppState;
use crate::context::{Ctx, RequestMeta};
use crate::error::{AppError, AppResult};

/// The schema every surface executes against (REST rows run operations on it too).
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Which server answered, so clients can check compatibility.
#[derive(SimpleObject)]
pub struct ServerInfo {
    /// Always `rampart`.
    pub name: String,
    /// The server's semantic version.
    pub version: String,
}

#[derive(Default)]
pub struct ServerQuery;

#[Object]
impl ServerQuery {
    /// The name and version of this server.
    async fn server_info(&self) -> ServerInfo {
        ServerInfo {
            name: "rampart".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Read operations.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    ServerQuery,
    crate::auth::graphql::AuthQuery,
    crate::orgs::graphql::OrgsQuery,
    crate::invitations::graphql::InvitationsQuery,
    crate::keys::graphql::KeysQuery,
    crate::audit::graphql::AuditQuery,
    crate::targets::graphql::TargetsQuery,
    crate::scans::graphql::ScansQuery,
    crate::findings::graphql::FindingsQuery,
    crate::trends::graphql::TrendsQuery,
    crate::compliance::graphql::ComplianceQuery,
    crate::insights::graphql::InsightsQuery,
    crate::sla::graphql::SlaQuery,
    crate::accounts::graphql::AccountsQuery,
    crate::auth::mfa::graphql::MfaQuery,
    crate::webhooks::graphql::WebhooksQuery,
    crate::suppressions::graphql::SuppressionsQuery,
    crate::notifications::graphql::NotificationsQuery,
    crate::engines::graphql::EnginesQuery,
);

/// Write operations.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    crate::auth::graphql::AuthMutation,
    crate::orgs::graphql::OrgsMutation,
    crate::invitations::graphql::InvitationsMutation,
    crate::keys::graphql::KeysMutation,
    crate::targets::graphql::TargetsMutation,
    crate::scans::graphql::ScansMutation,
    crate::findings::graphql::FindingsMutation,
    crate::sla::graphql::SlaMutation,
    crate::ingest::graphql::IngestMutation,
    crate::accounts::graphql::AccountsMutation,
    crate::auth::mfa::graphql::MfaMutation,
    crate::webhooks::graphql::WebhooksMutation,
    crate::suppressions::graphql::SuppressionsMutation,
    crate::notifications::graphql::NotificationsMutation,
    crate::engines::graphql::EnginesMutation,
);

/// Live operations.
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    crate::live::graphql::ScanSubscription,
    crate::notifications::graphql::NotificationsSubscription,
);

/// Builds the schema with its limits; `state` is what resolvers reach through [`state`].
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    );
    if let Some(state) = state {
        let config = &state.config;
        // Not async-graphql's limit_depth / limit_complexity: those count introspection
        // fields too and refuse the standard introspection query (see limits.rs).
        builder = builder
            .extension(limits::QueryLimits {
                max_depth: config.graphql_max_depth,
                max_complexity: config.graphql_max_complexity,
            })
            .extension(costs::AliasLimit {
                max: config.graphql_max_aliases,
            });
        if !config.graphql_introspection {
            builder = builder.disable_introspection();
        }
        builder = builder
            .extension(loaders::PerRequestLoaders {
                db: state.db.clone(),
            })
            .data(state);
    }
    builder.finish()
}

/// The services.
pub fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// The authenticated caller, or `UNAUTHENTICATED`.
///
/// # Errors
/// When the request carried no valid credential.
pub fn caller<'a>(ctx: &Context<'a>) -> AppResult<&'a Ctx> {
    ctx.data_opt::<Ctx>()
        .ok_or_else(|| AppError::unauthenticated("authentication required"))
}

/// Facts about the request (always present).
pub fn meta<'a>(ctx: &Context<'a>) -> RequestMeta {
    ctx.data_opt::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta::internal("graphql"))
}
