//! The REST surface, as one table. Each row names a GraphQL operation on the same schema as
//! `/graphql`; aliases in the operation are the REST (snake_case) field names. Adding a route
//! is adding a row: the generic translator serves it and the OpenAPI document describes it.
//!
//! Order matters only where two paths could match the same request; axum prefers a literal
//! segment over a `{param}` (so `/api-keys/me` wins over `/api-keys/{id}`), and rows are
//! mounted in this order.

use super::row::{Route, Var};

const PAGE: &[Var] = &[Var::query("page"), Var::query("pageSize")];

/// Builds an operation string at compile time (`concat!` of literals and the field lists below).
macro_rules! op {
    ($($part:expr),+ $(,)?) => { concat!($($part),+) };
}

macro_rules! session_fields {
    () => {
        "token refresh_token: refreshToken expires_in: expiresIn user { id email role org_id: orgId org_slug: orgSlug }"
    };
}
macro_rules! api_key_fields {
    () => {
        "id label prefix scopes expires_at: expiresAt last_used_at: lastUsedAt revoked_at: revokedAt created_at: createdAt active"
    };
}
macro_rules! member_fields {
    () => {
        "id email display_name: displayName role joined_at: joinedAt"
    };
}
macro_rules! org_fields {
    () => {
        "id slug name created_at: createdAt"
    };
}

/// Every REST route, in routing order.
pub const ROUTES: &[Route] = &[
    // --- sessions -------------------------------------------------------------------------
    Route::post("/api/v1/auth/login", "auth", "Sign in with email and password",
        op!("mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { ", session_fields!(), " } }"))
        .vars(&[Var::field("email"), Var::field("password")])
        .public()
        .notes("Also sets the HttpOnly cookies `token` (path `/`) and `refresh_token` (path `/api/v1/auth`). Wrong email and wrong password give the same 401. At most 10 attempts per 15 minutes per client IP (429 with `Retry-After`)."),
    Route::post("/auth/login", "auth", "Sign in (KafkaGuard-compatible alias)",
        op!("mutation LoginCompat($email: String!, $password: String!) { login(email: $email, password: $password) { ", session_fields!(), " } }"))
        .vars(&[Var::field("email"), Var::field("password")])
        .public()
        .bare()
        .notes("The same as `POST /api/v1/auth/login`, answered without the `data` wrapper, as KafkaGuard clients expect."),
    Route::post("/api/v1/auth/refresh", "auth", "Rotate a refresh token into a new pair",
        op!("mutation RefreshSession($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { ", session_fields!(), " } }"))
        .vars(&[Var::field_or_cookie("refreshToken", "refresh_token")])
        .public()
        .notes("The refresh token comes from the body's `refresh_token`, or else from the `refresh_token` cookie."),
    Route::post("/api/v1/auth/logout", "auth", "End the caller's session",
        "mutation Logout { logout }")
        .empty()
        .session()
        .notes("Also clears the session cookies."),
    Route::get("/api/v1/auth/me", "auth", "Who is calling",
        op!("query Me { me { kind role scopes organization { ", org_fields!(), " } user { ", member_fields!(), " } api_key: apiKey { ", api_key_fields!(), " } } }")),
    Route::post("/api/v1/auth/switch-org", "auth", "Move the session to another org",
        op!("mutation SwitchOrganization($orgId: UUID!) { switchOrganization(orgId: $orgId) { ", session_fields!(), " } }"))
        .vars(&[Var::field("orgId")])
        .session(),
    // --- API keys -----------------------------------------------------------------------------
    Route::get("/api/v1/api-keys/me", "api-keys", "The API key this request was made with",
        op!("query CurrentApiKey { currentApiKey { ", api_key_fields!(), " } }")),
    Route::get("/api/v1/api-keys", "api-keys", "List the org's API keys",
        op!("query ListApiKeys($page: Int, $pageSize: Int) { apiKeys(page: $page, pageSize: $pageSize) { total_count: totalCount page page_size: pageSize total_pages: totalPages edges { node { ", api_key_fields!(), " } } } }"))
        .vars(PAGE)
        .page(),
    Route::post("/api/v1/api-keys", "api-keys", "Mint an API key",
        op!("mutation CreateApiKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { key message api_key: apiKey { ", api_key_fields!(), " } } }"))
        .vars(&[Var::body("input")])
        .created()
        .session()
        .notes("The plaintext `key` is in this answer only; store it now."),
    Route::delete("/api/v1/api-keys/{id}", "api-keys", "Revoke an API key",
        "mutation RevokeApiKey($id: UUID!) { revokeApiKey(id: $id) { id } }")
        .vars(&[Var::path("id")])
        .session(),
    // --- users ------------------------------------------------------------------------------
    Route::get("/api/v1/users", "users", "List the members of the caller's org",
        op!("query ListUsers($page: Int, $pageSize: Int) { users(page: $page, pageSize: $pageSize) { total_count: totalCount page page_size: pageSize total_pages: totalPages edges { node { ", member_fields!(), " } } } }"))
        .vars(PAGE)
        .page()
        .session(),
    Route::post("/api/v1/users", "users", "Add a person to the caller's org",
        op!("mutation CreateUser($input: CreateUserInput!) { createUser(input: $input) { ", member_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .created()
        .session(),
    Route::patch("/api/v1/users/{id}", "users", "Change a member",
        op!("mutation UpdateUser($id: UUID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { ", member_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")])
        .session(),
    Route::delete("/api/v1/users/{id}", "users", "Remove a member from the caller's org",
        "mutation RemoveUser($id: UUID!) { removeUser(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    // --- organizations ----------------------------------------------------------------------
    Route::get("/api/v1/organizations", "organizations", "The orgs the caller belongs to",
        op!("query ListOrganizations { organizations { organization { ", org_fields!(), " } role } }"))
        .notes("A plain list, not paged: `{\"data\": [...]}` without `meta` and `links`."),
    Route::post("/api/v1/organizations", "organizations", "Create an organization",
        op!("mutation CreateOrganization($input: CreateOrganizationInput!) { createOrganization(input: $input) { ", org_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .created()
        .session(),
];
