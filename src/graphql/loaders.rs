//! Loaders of one request, scoped to the caller's org.
//!
//! An extension gives every execution of the schema (a `POST /graphql` request, a REST row, a
//! WebSocket operation or subscription) loaders of its own, built with the caller's org, so a
//! loader can filter every query by that org and no answer outlives the request; and it runs
//! the execution in rounds ([`InRounds`]), which is when batches go out. Each field position of
//! the query (its path without list indices) gets a [`Batcher`] of its own: the keys one
//! resolver level asks for are one batch, whatever else is in flight at the same time.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextSubscribe,
};
use async_graphql::{Context, QueryPathSegment, Request, Response, ServerResult};
use futures::stream::BoxStream;
use futures::StreamExt;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::batch::{BatchFn, Batcher, InRounds, Rounds};
use crate::context::Ctx;
use crate::error::AppError;

/// What a loader of one request reads with: the database, and the org every query filters by.
#[derive(Clone)]
pub struct OrgScope {
    pub db: DatabaseConnection,
    pub org_id: Uuid,
}

/// A loader built for one request's org.
pub trait OrgLoader: BatchFn<Error = async_graphql::Error> {
    fn new(scope: OrgScope) -> Self;
}

/// The batchers of one request, by loader and field position.
pub struct RequestLoaders {
    scope: OrgScope,
    rounds: Arc<Rounds>,
    batchers: Mutex<HashMap<(TypeId, u64), Arc<dyn Any + Send + Sync>>>,
}

impl RequestLoaders {
    /// Loaders for an execution that runs in `rounds`.
    pub fn new(scope: OrgScope, rounds: Arc<Rounds>) -> Self {
        Self {
            scope,
            rounds,
            batchers: Mutex::default(),
        }
    }

    /// The batcher of `L` at `position`, created on first use.
    fn batcher<L: OrgLoader>(&self, position: u64) -> Arc<Batcher<L>> {
        let mut batchers = self.batchers.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = batchers
            .entry((TypeId::of::<L>(), position))
            .or_insert_with(|| Arc::new(self.new_batcher::<L>()))
            .clone();
        drop(batchers);
        // The map's key holds `L`'s type id, so the downcast cannot fail; were it to, a batcher
        // of its own would still answer correctly.
        entry
            .downcast::<Batcher<L>>()
            .unwrap_or_else(|_| Arc::new(self.new_batcher::<L>()))
    }

    fn new_batcher<L: OrgLoader>(&self) -> Batcher<L> {
        Batcher::new(L::new(self.scope.clone()), self.rounds.clone())
    }

    /// The value of `key` through `L`, batched with what the same field of sibling objects asks.
    ///
    /// # Errors
    /// The batch's error.
    pub async fn load<L: OrgLoader>(
        &self,
        position: u64,
        key: L::Key,
    ) -> async_graphql::Result<Option<L::Value>> {
        self.batcher::<L>(position).load_one(key).await
    }
}

/// The value of `key` through `L`, loaded with the caller's org, batched with the keys the same
/// field of sibling objects asks for.
///
/// # Errors
/// `UNAUTHENTICATED` without a caller; the batch's error.
pub async fn load<L: OrgLoader>(
    ctx: &Context<'_>,
    key: L::Key,
) -> async_graphql::Result<Option<L::Value>> {
    let loaders = ctx
        .data_opt::<RequestLoaders>()
        .ok_or_else(|| AppError::unauthenticated("authentication required"))?;
    loaders.load::<L>(position(ctx), key).await
}

/// The field's place in the query: the response keys on its path, without list indices.
fn position(ctx: &Context<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Some(node) = &ctx.path_node {
        for segment in std::iter::once(node).chain(node.parents()) {
            if let QueryPathSegment::Name(name) = segment.segment {
                name.hash(&mut hasher);
            }
        }
    }
    hasher.finish()
}

/// Installs [`RequestLoaders`] in each request whose caller is known, and runs each request
/// (each subscription) in rounds.
pub struct PerRequestLoaders {
    pub db: DatabaseConnection,
}

impl ExtensionFactory for PerRequestLoaders {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InstallLoaders {
            db: self.db.clone(),
            rounds: Arc::default(),
        })
    }
}

/// One request's: created for each execution of the schema.
struct InstallLoaders {
    db: DatabaseConnection,
    rounds: Arc<Rounds>,
}

#[async_trait::async_trait]
impl Extension for InstallLoaders {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        InRounds::new(self.rounds.clone(), Box::pin(next.run(ctx))).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, InRounds::new(self.rounds.clone(), stream).boxed())
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // The request's own caller first (HTTP, REST), else the connection's (WebSocket).
        let org_id = request
            .data
            .get(&TypeId::of::<Ctx>())
            .and_then(|c| c.downcast_ref::<Ctx>())
            .or_else(|| {
                ctx.session_data
                    .get(&TypeId::of::<Ctx>())
                    .and_then(|c| c.downcast_ref::<Ctx>())
            })
            .map(|c| c.org_id);
        let request = match org_id {
            Some(org_id) => request.data(RequestLoaders::new(
                OrgScope {
                    db: self.db.clone(),
                    org_id,
                },
                self.rounds.clone(),
            )),
            None => request,
        };
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::executor::block_on;
    use futures::future::{join, join_all};

    use super::*;

    /// Answers each key with the org it was asked in, and records every call.
    struct OrgEcho {
        org_id: Uuid,
    }

    static CALLS: Mutex<Vec<(Uuid, Vec<u32>)>> = Mutex::new(Vec::new());

    impl BatchFn for OrgEcho {
        type Key = u32;
        type Value = Uuid;
        type Error = async_graphql::Error;

        async fn load(&self, keys: &[u32]) -> async_graphql::Result<HashMap<u32, Uuid>> {
            CALLS.lock().unwrap().push((self.org_id, keys.to_vec()));
            Ok(keys.iter().map(|k| (*k, self.org_id)).collect())
        }
    }

    impl OrgLoader for OrgEcho {
        fn new(scope: OrgScope) -> Self {
            Self {
                org_id: scope.org_id,
            }
        }
    }

    fn request(org_id: Uuid) -> (Arc<Rounds>, RequestLoaders) {
        let rounds = Arc::<Rounds>::default();
        let scope = OrgScope {
            db: DatabaseConnection::default(),
            org_id,
        };
        (rounds.clone(), RequestLoaders::new(scope, rounds))
    }

    fn calls_of(orgs: &[Uuid]) -> Vec<(Uuid, Vec<u32>)> {
        let calls = CALLS.lock().unwrap();
        calls
            .iter()
            .filter(|(org, _)| orgs.contains(org))
            .cloned()
            .collect()
    }

    /// Two requests asking for the same key at the same moment: each fetches with its own org,
    /// and neither sees the other's answer.
    #[test]
    fn requests_do_not_share_loaders() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ((rounds_a, in_a), (rounds_b, in_b)) = (request(a), request(b));
        let (from_a, from_b) = block_on(join(
            InRounds::new(rounds_a, Box::pin(in_a.load::<OrgEcho>(1, 7))),
            InRounds::new(rounds_b, Box::pin(in_b.load::<OrgEcho>(1, 7))),
        ));
        assert_eq!(from_a.unwrap(), Some(a));
        assert_eq!(from_b.unwrap(), Some(b));
        assert_eq!(calls_of(&[a, b]), vec![(a, vec![7]), (b, vec![7])]);
    }

    /// Two field positions are two batches, even when asked for in the same round.
    #[test]
    fn positions_batch_apart() {
        let org = Uuid::new_v4();
        let (rounds, loaders) = request(org);
        block_on(InRounds::new(
            rounds,
            Box::pin(join(
                join_all((0..3).map(|k| loaders.load::<OrgEcho>(1, k))),
                join_all((3..5).map(|k| loaders.load::<OrgEcho>(2, k))),
            )),
        ));
        assert_eq!(
            calls_of(&[org]),
            vec![(org, vec![0, 1, 2]), (org, vec![3, 4])]
        );
    }
}
