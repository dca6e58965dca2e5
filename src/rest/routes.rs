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
macro_rules! login_fields {
    () => {
        concat!(
            session_fields!(),
            " mfa_required: mfaRequired mfa_challenge: mfaChallenge mfa_challenge_expires_in: mfaChallengeExpiresIn"
        )
    };
}
macro_rules! recovery_code_fields {
    () => {
        "codes"
    };
}
macro_rules! api_key_fields {
    () => {
        "id label prefix scopes expires_at: expiresAt last_used_at: lastUsedAt revoked_at: revokedAt created_at: createdAt active"
    };
}
macro_rules! member_fields {
    () => {
        "id email display_name: displayName role joined_at: joinedAt active"
    };
}
macro_rules! invitation_fields {
    () => {
        "id email role status expires_at: expiresAt accepted_at: acceptedAt created_at: createdAt"
    };
}
macro_rules! accepted_invitation_fields {
    () => {
        concat!(
            "organization { ",
            org_fields!(),
            " } member { ",
            member_fields!(),
            " }"
        )
    };
}
macro_rules! org_fields {
    () => {
        "id slug name created_at: createdAt require_admin_mfa: requireAdminMfa"
    };
}

macro_rules! webhook_fields {
    () => {
        "id url description events target_id: targetId min_severity: minSeverity enabled disabled_reason: disabledReason failing_since: failingSince previous_secret_expires_at: previousSecretExpiresAt created_at: createdAt updated_at: updatedAt"
    };
}
macro_rules! delivery_fields {
    () => {
        "id webhook_id: webhookId event status attempts status_code: statusCode latency_ms: latencyMs response_excerpt: responseExcerpt error last_attempt_at: lastAttemptAt delivered_at: deliveredAt created_at: createdAt payload attempt_log: attemptLog { attempted_at: attemptedAt status_code: statusCode latency_ms: latencyMs response_excerpt: responseExcerpt error }"
    };
}

macro_rules! notification_fields {
    () => {
        "id kind title body severity target_id: targetId scan_id: scanId read read_at: readAt created_at: createdAt"
    };
}
macro_rules! notification_preference_fields {
    () => {
        "kinds min_severity: minSeverity email"
    };
}

macro_rules! counts {
    () => {
        "counts { critical high medium low info total }"
    };
}
macro_rules! sla_policy_fields {
    () => {
        "critical_days: criticalDays high_days: highDays medium_days: mediumDays low_days: lowDays info_days: infoDays updated_at: updatedAt updated_by: updatedBy"
    };
}
macro_rules! severity_counts {
    () => {
        "{ critical high medium low info total }"
    };
}
macro_rules! target_fields {
    () => {
        "id kind name labels metadata last_scan_at: lastScanAt last_score: lastScore risk_score: riskScore created_at: createdAt updated_at: updatedAt"
    };
}
macro_rules! cluster_fields {
    () => {
        "id name bootstrap_servers: bootstrapServers labels metadata last_scan_at: lastScanAt last_score: lastScore created_at: createdAt updated_at: updatedAt"
    };
}
macro_rules! schedule_fields {
    () => {
        "id target_id: targetId engines path git_url: gitUrl git_reference: gitReference cron time_zone: timeZone enabled next_run_at: nextRunAt last_run_at: lastRunAt last_group_id: lastGroupId created_at: createdAt"
    };
}
macro_rules! scan_fields {
    () => {
        concat!(
            "id target_id: targetId target { name kind } status source scanner_name: scannerName scanner_version: scannerVersion format policy_tier: policyTier score ",
            counts!(),
            " findings_new: findingsNew findings_fixed: findingsFixed findings_unchanged: findingsUnchanged raw_size: rawSize raw_sha256: rawSha256 error scanned_at: scannedAt created_at: createdAt started_at: startedAt finished_at: finishedAt duration_ms: durationMs group_id: groupId"
        )
    };
}
macro_rules! finding_fields {
    () => {
        "id target_id: targetId scanner fingerprint rule_id: ruleId title severity cve_ids: cveIds cwe_ids: cweIds location { path line component } description remediation occurrences status first_seen_at: firstSeenAt last_seen_at: lastSeenAt fixed_at: fixedAt triage { state note expires_at: expiresAt by at } assignee_id: assigneeId suppression { rule_id: ruleId until } due_at: dueAt sla_state: slaState"
    };
}
macro_rules! suppression_rule_fields {
    () => {
        "id target_id: targetId scanner rule_id: ruleId path_glob: pathGlob reason expires_at: expiresAt created_by: createdBy created_at: createdAt"
    };
}
macro_rules! comment_fields {
    () => {
        "id finding_id: findingId body author created_at: createdAt"
    };
}
macro_rules! audit_event_fields {
    () => {
        "id actor actor_user_id: actorUserId actor_api_key_id: actorApiKeyId action resource_type: resourceType resource_id: resourceId ip request_id: requestId details created_at: createdAt"
    };
}
macro_rules! framework_fields {
    () => {
        "id name version description source mapping policy_tier: policyTier control_count: controlCount"
    };
}
macro_rules! page_fields {
    () => {
        "total_count: totalCount page page_size: pageSize total_pages: totalPages"
    };
}

/// Every REST route, in routing order.
pub const ROUTES: &[Route] = &[
    // --- sessions -------------------------------------------------------------------------
    Route::post("/api/v1/auth/login", "auth", "Sign in with email and password",
        op!("mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { ", login_fields!(), " } }"))
        .vars(&[Var::field("email"), Var::field("password")])
        .sets_cookies()
        .public()
        .notes("Also sets the HttpOnly cookies `token` (path `/`) and `refresh_token` (path `/api/v1/auth`). Wrong email and wrong password give the same 401. At most 10 attempts per 15 minutes per client IP (429 with `Retry-After`). For an account with MFA the answer holds no session: `mfa_required` is true and `mfa_challenge` goes to `POST /api/v1/auth/login/mfa` with a code."),
    Route::post("/api/v1/auth/login/mfa", "auth", "Complete a login with an MFA code",
        op!("mutation CompleteLogin($challenge: String!, $code: String!) { completeLogin(challenge: $challenge, code: $code) { ", session_fields!(), " } }"))
        .vars(&[Var::field("challenge"), Var::field("code")])
        .sets_cookies()
        .public()
        .notes("The second step for an account with MFA: the `mfa_challenge` of the password step (valid 5 minutes) and a current 6-digit code, or an unused recovery code. Answers and sets cookies as `POST /api/v1/auth/login` does. A wrong or replayed code counts as a failed login (401; 429 once the account's budget is spent)."),
    Route::post("/auth/login", "auth", "Sign in (KafkaGuard-compatible alias)",
        op!("mutation LoginCompat($email: String!, $password: String!) { login(email: $email, password: $password) { ", login_fields!(), " } }"))
        .vars(&[Var::field("email"), Var::field("password")])
        .sets_cookies()
        .public()
        .bare()
        .notes("The same as `POST /api/v1/auth/login`, answered without the `data` wrapper, as KafkaGuard clients expect."),
    Route::post("/api/v1/auth/refresh", "auth", "Rotate a refresh token into a new pair",
        op!("mutation RefreshSession($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { ", session_fields!(), " } }"))
        .vars(&[Var::field_or_cookie("refreshToken", "refresh_token")])
        .sets_cookies()
        .public()
        .notes("The refresh token comes from the body's `refresh_token`, or else from the `refresh_token` cookie."),
    Route::post("/api/v1/auth/logout", "auth", "End the caller's session",
        "mutation Logout { logout }")
        .empty()
        .sets_cookies()
        .session()
        .notes("Also clears the session cookies."),
    Route::get("/api/v1/auth/me", "auth", "Who is calling",
        op!("query Me { me { kind role scopes organization { ", org_fields!(), " } user { ", member_fields!(), " } api_key: apiKey { ", api_key_fields!(), " } } }")),
    Route::post("/api/v1/auth/switch-org", "auth", "Move the session to another org",
        op!("mutation SwitchOrganization($orgId: UUID!) { switchOrganization(orgId: $orgId) { ", session_fields!(), " } }"))
        .vars(&[Var::field("orgId")])
        .sets_cookies()
        .session(),
    // --- my account -------------------------------------------------------------------------
    Route::get("/api/v1/auth/sessions", "account", "The signed-in person's open sessions",
        "query MySessions { mySessions { id user_agent: userAgent ip organization_id: organizationId created_at: createdAt last_used_at: lastUsedAt expires_at: expiresAt current } }")
        .session()
        .notes("A plain list, not paged: `{\"data\": [...]}` without `meta` and `links`. `current` marks the session making the request."),
    Route::post("/api/v1/auth/sessions/revoke-others", "account", "End every other session of the signed-in person",
        "mutation RevokeOtherSessions { revokeOtherSessions }")
        .empty()
        .session(),
    Route::delete("/api/v1/auth/sessions/{id}", "account", "End one of the signed-in person's sessions",
        "mutation RevokeSession($id: UUID!) { revokeSession(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    Route::post("/api/v1/auth/password", "account", "Change the signed-in person's password",
        "mutation ChangePassword($currentPassword: String!, $newPassword: String!) { changePassword(currentPassword: $currentPassword, newPassword: $newPassword) }")
        .vars(&[Var::field("currentPassword"), Var::field("newPassword")])
        .empty()
        .session()
        .notes("Every other session of the account ends; this one goes on. A wrong `current_password` answers 422 naming it."),
    Route::post("/api/v1/auth/password/renew", "account", "Sign in setting the new password an administrator required",
        op!("mutation RenewPassword($email: String!, $currentPassword: String!, $newPassword: String!) { renewPassword(email: $email, currentPassword: $currentPassword, newPassword: $newPassword) { ", session_fields!(), " } }"))
        .vars(&[Var::field("email"), Var::field("currentPassword"), Var::field("newPassword")])
        .sets_cookies()
        .public()
        .notes("The answer to a sign-in refused with 403 `PASSWORD_RESET_REQUIRED`: the same body as `POST /api/v1/auth/login` plus `new_password`, the same answer and the same limits."),
    Route::post("/api/v1/auth/password-reset", "account", "Mail a password-reset token",
        "mutation RequestPasswordReset($email: String!) { requestPasswordReset(email: $email) { message } }")
        .vars(&[Var::field("email")])
        .public()
        .notes("The answer is the same whether or not the address has an account, and whether or not mail is configured; the mail (when sent) carries a single-use token valid 30 minutes. At most 10 requests per 15 minutes per client IP."),
    Route::post("/api/v1/auth/password-reset/confirm", "account", "Set a new password with a mailed reset token",
        "mutation ResetPassword($token: String!, $newPassword: String!) { resetPassword(token: $token, newPassword: $newPassword) }")
        .vars(&[Var::field("token"), Var::field("newPassword")])
        .empty()
        .public()
        .notes("The token is spent, and every session of the account ends: sign in again with the new password."),
    // --- MFA ------------------------------------------------------------------------------------
    Route::get("/api/v1/auth/mfa", "auth", "The caller's MFA state",
        "query MfaStatus { mfaStatus { enabled pending recovery_codes_left: recoveryCodesLeft enrolment_required: enrolmentRequired } }")
        .session(),
    Route::post("/api/v1/auth/mfa/enrol", "auth", "Start enrolling an authenticator",
        "mutation EnrolMfa { enrolMfa { secret otpauth_url: otpauthUrl qr_code: qrCode } }")
        .session()
        .notes("The secret, its `otpauth://` URL and a QR code (SVG data URL), shown this once; MFA is on after `POST /api/v1/auth/mfa/confirm`."),
    Route::post("/api/v1/auth/mfa/confirm", "auth", "Enable MFA with a first code",
        op!("mutation ConfirmMfa($code: String!) { confirmMfa(code: $code) { ", recovery_code_fields!(), " } }"))
        .vars(&[Var::field("code")])
        .session()
        .notes("Answers the ten single-use recovery codes, shown this once."),
    Route::post("/api/v1/auth/mfa/disable", "auth", "Disable MFA",
        "mutation DisableMfa($code: String!) { disableMfa(code: $code) }")
        .vars(&[Var::field("code")])
        .empty()
        .session()
        .notes("Needs a current code (or an unused recovery code)."),
    Route::post("/api/v1/auth/mfa/recovery-codes", "auth", "Replace the MFA recovery codes",
        op!("mutation RegenerateRecoveryCodes($code: String!) { regenerateRecoveryCodes(code: $code) { ", recovery_code_fields!(), " } }"))
        .vars(&[Var::field("code")])
        .session()
        .notes("Needs a current code; the old recovery codes stop working."),
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
    Route::post("/api/v1/users", "users", "Invite a person into the caller's org",
        op!("mutation InviteUser($input: InviteMemberInput!) { inviteMember(input: $input) { token message invitation { ", invitation_fields!(), " } } }"))
        .vars(&[Var::body("input")])
        .created()
        .session()
        .notes("The same as `POST /api/v1/invitations`: people join by accepting, and the answer is the same whether or not the address has an account."),
    Route::patch("/api/v1/users/{id}", "users", "Change a member's role, display name or active state",
        op!("mutation UpdateUser($id: UUID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { ", member_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")])
        .session(),
    Route::post("/api/v1/users/{id}/force-password-reset", "users", "Require a member to choose a new password",
        op!("mutation ForcePasswordReset($id: UUID!) { forcePasswordReset(id: $id) { ", member_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session()
        .notes("Their sessions end now; their next sign-in answers 403 `PASSWORD_RESET_REQUIRED` until they set a new password (`POST /api/v1/auth/password/renew`)."),
    Route::delete("/api/v1/users/{id}", "users", "Remove a member from the caller's org",
        "mutation RemoveUser($id: UUID!) { removeUser(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    // --- invitations ------------------------------------------------------------------------
    Route::get("/api/v1/invitations/mine", "invitations", "Pending invitations addressed to the signed-in user",
        op!("query MyInvitations($page: Int, $pageSize: Int) { myInvitations(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { id organization { ", org_fields!(), " } role expires_at: expiresAt created_at: createdAt } } } }"))
        .vars(PAGE)
        .page()
        .session(),
    Route::get("/api/v1/invitations", "invitations", "List the org's invitations, newest first",
        op!("query ListInvitations($page: Int, $pageSize: Int) { invitations(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", invitation_fields!(), " } } } }"))
        .vars(PAGE)
        .page()
        .session(),
    Route::post("/api/v1/invitations", "invitations", "Invite a person into the caller's org",
        op!("mutation InviteMember($input: InviteMemberInput!) { inviteMember(input: $input) { token message invitation { ", invitation_fields!(), " } } }"))
        .vars(&[Var::body("input")])
        .created()
        .session()
        .notes("The answer is the same whether or not the address has an account anywhere. The `token` is in this answer only: hand it to the person invited. Signed in with that email they accept under `GET /api/v1/invitations/mine`; without an account they set a password with it (`POST /api/v1/invitations/sign-up`). Inviting an address again replaces its pending invitation."),
    Route::post("/api/v1/invitations/sign-up", "invitations", "Create an account from an invitation and join its org",
        op!("mutation SignUpWithInvitation($input: SignUpWithInvitationInput!) { signUpWithInvitation(input: $input) { ", accepted_invitation_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .created()
        .public()
        .notes("For an address without an account; the token is the proof. Sign in afterwards as usual. An address that has an account answers 409: sign in and accept instead."),
    Route::post("/api/v1/invitations/{id}/accept", "invitations", "Accept an invitation addressed to the signed-in user",
        op!("mutation AcceptInvitation($id: UUID!) { acceptInvitation(id: $id) { ", accepted_invitation_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session(),
    Route::post("/api/v1/invitations/{id}/decline", "invitations", "Decline an invitation addressed to the signed-in user",
        "mutation DeclineInvitation($id: UUID!) { declineInvitation(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    Route::delete("/api/v1/invitations/{id}", "invitations", "Withdraw a pending invitation of the caller's org",
        "mutation RevokeInvitation($id: UUID!) { revokeInvitation(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    // --- organizations ----------------------------------------------------------------------
    Route::get("/api/v1/organizations", "organizations", "The orgs the caller belongs to",
        op!("query ListOrganizations($page: Int, $pageSize: Int) { organizations(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { organization { ", org_fields!(), " } role } } } }"))
        .vars(PAGE)
        .page(),
    Route::post("/api/v1/organizations", "organizations", "Create an organization",
        op!("mutation CreateOrganization($input: CreateOrganizationInput!) { createOrganization(input: $input) { ", org_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .created()
        .session(),
    Route::patch("/api/v1/organizations/{id}", "organizations", "Change the caller's organization",
        op!("mutation UpdateOrganization($id: UUID!, $input: UpdateOrganizationInput!) { updateOrganization(id: $id, input: $input) { ", org_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")])
        .session()
        .notes("Admins. `require_admin_mfa: true` makes admins and owners without MFA answer 403 `MFA_REQUIRED` to everything but MFA enrolment; turning it on needs MFA on the caller's own account (409 otherwise)."),
    // --- targets --------------------------------------------------------------------------
    Route::get("/api/v1/targets", "targets", "List the org's targets",
        op!("query ListTargets($kind: TargetKind, $search: String, $label: String, $page: Int, $pageSize: Int) { targets(kind: $kind, search: $search, label: $label, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", target_fields!(), " } } } }"))
        .vars(&[Var::query("kind"), Var::query("search"), Var::query("label"), Var::query("page"), Var::query("pageSize")])
        .page(),
    Route::get("/api/v1/targets/{id}", "targets", "One target",
        op!("query GetTarget($id: UUID!) { target(id: $id) { ", target_fields!(), " } }"))
        .vars(&[Var::path("id")]),
    Route::patch("/api/v1/targets/{id}", "targets", "Rename, relabel or re-describe a target",
        op!("mutation UpdateTarget($id: UUID!, $input: UpdateTargetInput!) { updateTarget(id: $id, input: $input) { ", target_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")]),
    Route::delete("/api/v1/targets/{id}", "targets", "Delete a target with its scans, findings and raw reports",
        "mutation DeleteTarget($id: UUID!) { deleteTarget(id: $id) }")
        .vars(&[Var::path("id")]),
    Route::get("/api/v1/clusters", "targets", "List the org's Kafka clusters (targets of kind kafka_cluster)",
        op!("query ListClusters($page: Int, $pageSize: Int) { targets(kind: KAFKA_CLUSTER, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", cluster_fields!(), " } } } }"))
        .vars(PAGE)
        .page(),
    Route::get("/api/v1/clusters/{id}", "targets", "One Kafka cluster",
        op!("query GetCluster($id: UUID!) { target(id: $id, kind: KAFKA_CLUSTER) { ", cluster_fields!(), " } }"))
        .vars(&[Var::path("id")]),
    Route::patch("/api/v1/clusters/{id}", "targets", "Rename or relabel a Kafka cluster",
        op!("mutation UpdateCluster($id: UUID!, $input: UpdateTargetInput!) { updateTarget(id: $id, kind: KAFKA_CLUSTER, input: $input) { ", cluster_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")]),
    // --- scans ---------------------------------------------------------------------------
    Route::get("/api/v1/scans", "scans", "Scan history, newest first",
        op!("query ListScans($targetId: UUID, $status: [ScanStatus!], $groupId: UUID, $since: DateTime, $until: DateTime, $page: Int, $pageSize: Int) { scans(targetId: $targetId, status: $status, groupId: $groupId, since: $since, until: $until, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", scan_fields!(), " } } } }"))
        .vars(&[Var::query("targetId"), Var::query("status"), Var::query("groupId"), Var::query("since"), Var::query("until"), Var::query("page"), Var::query("pageSize")])
        .page(),
    Route::get("/api/v1/scans/compare", "scans", "What changed between two scans of one target",
        op!("query CompareScans($scanA: UUID!, $scanB: UUID!, $page: Int, $pageSize: Int) { compareScans(scanA: $scanA, scanB: $scanB) { new(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", finding_fields!(), " } } } fixed(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", finding_fields!(), " } } } unchanged(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", finding_fields!(), " } } } } }"))
        .vars(&[Var::query("scanA"), Var::query("scanB"), Var::query("page"), Var::query("pageSize")])
        .pages()
        .notes("The three lists are paged together: `page` and `page_size` apply to each, `meta` says where the page sits in each, and `links` reach the longest list's last page."),
    Route::get("/api/v1/scans/{id}", "scans", "One scan",
        op!("query GetScan($id: UUID!) { scan(id: $id) { ", scan_fields!(), " } }"))
        .vars(&[Var::path("id")]),
    Route::delete("/api/v1/scans/{id}", "scans", "Delete a finished scan and its raw report",
        "mutation DeleteScan($id: UUID!) { deleteScan(id: $id) }")
        .vars(&[Var::path("id")])
        .notes("409 while the scan is queued or running: cancel it first."),
    Route::get("/api/v1/scans/{id}/findings", "scans", "The findings one scan saw, worst first",
        op!("query ScanFindings($id: UUID!, $severity: [Severity!], $page: Int, $pageSize: Int) { scanFindings(scanId: $id, severity: $severity, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", finding_fields!(), " } } } }"))
        .vars(&[Var::path("id"), Var::query("severity"), Var::query("page"), Var::query("pageSize")])
        .page(),
    Route::get("/api/v1/scans/{id}/summary", "scans", "Counts per severity, score and timings of one scan",
        op!("query ScanSummary($id: UUID!) { scanSummary(scanId: $id) { scan_id: scanId status score ", counts!(), " findings_new: findingsNew findings_fixed: findingsFixed findings_unchanged: findingsUnchanged started_at: startedAt finished_at: finishedAt duration_ms: durationMs } }"))
        .vars(&[Var::path("id")]),
    Route::post("/api/v1/scans/{id}/cancel", "scans", "Stop a queued or running scan",
        op!("mutation CancelScan($id: UUID!) { cancelScan(id: $id) { ", scan_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .notes("409 when the scan has already finished."),
    Route::post("/api/v1/scans/{id}/retry", "scans", "Run a failed or cancelled scan again from its stored report",
        op!("mutation RetryScan($id: UUID!) { retryScan(id: $id) { ", scan_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .accepted()
        .notes("Answers 202: the scan is processed again in the background; follow it like an upload."),
    // --- engines -------------------------------------------------------------------------
    Route::get("/api/v1/engines", "engines", "The engines this server can run, with availability and version",
        "query ListEngines { engines { name description status version path format error } }")
        .notes("Start engine scans with `POST /api/v1/scans`."),
    Route::get("/api/v1/scan-schedules", "engines", "The org's scan schedules",
        op!("query ListScanSchedules { scanSchedules { ", schedule_fields!(), " } }")),
    Route::post("/api/v1/scan-schedules", "engines", "Schedule engine scans of a target by cron",
        op!("mutation CreateScanSchedule($input: CreateScanScheduleInput!) { createScanSchedule(input: $input) { ", schedule_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .created(),
    Route::patch("/api/v1/scan-schedules/{id}", "engines", "Change a schedule's cron, time zone or enabled flag",
        op!("mutation UpdateScanSchedule($id: UUID!, $input: UpdateScanScheduleInput!) { updateScanSchedule(id: $id, input: $input) { ", schedule_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")]),
    Route::delete("/api/v1/scan-schedules/{id}", "engines", "Delete a schedule (its scans stay)",
        "mutation DeleteScanSchedule($id: UUID!) { deleteScanSchedule(id: $id) }")
        .vars(&[Var::path("id")]),
    // --- findings ------------------------------------------------------------------------
    Route::get("/api/v1/findings", "findings", "Findings across scans, worst first",
        op!("query ListFindings($targetId: UUID, $scanId: UUID, $newInScan: UUID, $severity: [Severity!], $status: FindingStatus, $triageState: TriageState, $ruleId: String, $cve: String, $search: String, $assigneeId: UUID, $assignedToMe: Boolean, $suppression: SuppressionFilter, $slaState: SlaState, $page: Int, $pageSize: Int) { findings(targetId: $targetId, scanId: $scanId, newInScan: $newInScan, severity: $severity, status: $status, triageState: $triageState, ruleId: $ruleId, cve: $cve, search: $search, assigneeId: $assigneeId, assignedToMe: $assignedToMe, suppression: $suppression, slaState: $slaState, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", finding_fields!(), " } } } }"))
        .vars(&[Var::query("targetId"), Var::query("scanId"), Var::query("newInScan"), Var::query("severity"), Var::query("status"), Var::query("triageState"), Var::query("ruleId"), Var::query("cve"), Var::query("search"), Var::query("assigneeId"), Var::query("assignedToMe"), Var::query("suppression"), Var::query("slaState"), Var::query("page"), Var::query("pageSize")])
        .page(),
    Route::get("/api/v1/findings/{id}", "findings", "One finding",
        op!("query GetFinding($id: UUID!) { finding(id: $id) { ", finding_fields!(), " } }"))
        .vars(&[Var::path("id")]),
    Route::patch("/api/v1/findings/{id}/state", "findings", "Record a triage decision",
        op!("mutation SetFindingState($id: UUID!, $input: SetFindingStateInput!) { setFindingState(id: $id, input: $input) { ", finding_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")])
        .notes("`accepted_risk` needs `expires_at`, after which the finding reads as `untriaged` again."),
    Route::put("/api/v1/findings/{id}/assignee", "findings", "Assign a finding to a member, or unassign it",
        op!("mutation AssignFinding($id: UUID!, $assigneeId: UUID) { assignFinding(id: $id, assigneeId: $assigneeId) { ", finding_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::field("assigneeId")])
        .notes("`assignee_id: null` unassigns. The assignee must be a member of the organization; otherwise 400 `VALIDATION_FAILED` on `assigneeId`."),
    Route::post("/api/v1/findings/bulk-triage", "findings", "Triage, assign and/or comment on many findings at once",
        "mutation BulkTriageFindings($input: BulkTriageInput!) { bulkTriageFindings(input: $input) { count } }")
        .vars(&[Var::body("input")])
        .notes("Findings by `findings.ids` or `findings.filter` (the findings list's filters), at most 10,000: all change in one transaction or none does, recorded as one audit event with the count."),
    Route::put("/api/v1/findings/{id}/due-date", "sla", "Set or clear a finding's due date",
        op!("mutation SetFindingDueDate($id: UUID!, $dueAt: DateTime) { setFindingDueDate(id: $id, dueAt: $dueAt) { ", finding_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::field("dueAt")])
        .notes("Body `{\"due_at\": \"2027-01-31T00:00:00Z\"}`; `null` (or no `due_at`) goes back to the due date the SLA policy gives. Members and write keys; audited as `finding.due_date`."),
    Route::get("/api/v1/findings/{id}/comments", "findings", "Comments on a finding, oldest first",
        op!("query FindingComments($id: UUID!, $page: Int, $pageSize: Int) { findingComments(findingId: $id, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", comment_fields!(), " } } } }"))
        .vars(&[Var::path("id"), Var::query("page"), Var::query("pageSize")])
        .page(),
    Route::post("/api/v1/findings/{id}/comments", "findings", "Comment on a finding",
        op!("mutation AddComment($id: UUID!, $body: String!) { addComment(findingId: $id, body: $body) { ", comment_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::field("body")])
        .created(),
    Route::delete("/api/v1/findings/{id}/comments/{comment_id}", "findings", "Delete a comment",
        "mutation DeleteComment($id: UUID!, $commentId: UUID!) { deleteComment(id: $commentId, findingId: $id) }")
        .vars(&[Var::path("id"), Var::path("commentId")]),
    // --- suppression rules ---------------------------------------------------------------
    Route::get("/api/v1/suppression-rules", "suppressions", "The org's suppression rules, newest first",
        op!("query ListSuppressionRules($page: Int, $pageSize: Int) { suppressionRules(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", suppression_rule_fields!(), " } } } }"))
        .vars(PAGE)
        .page(),
    Route::post("/api/v1/suppression-rules", "suppressions", "Suppress the findings a rule matches, stored and future",
        op!("mutation CreateSuppressionRule($input: CreateSuppressionRuleInput!) { createSuppressionRule(input: $input) { suppressed rule { ", suppression_rule_fields!(), " } } }"))
        .vars(&[Var::body("input")])
        .created()
        .notes("At least one of `target_id`, `scanner`, `rule_id` and `path_glob` (`*` within a path segment, `**` across them), and a `reason`. Matching findings leave counts, SLA and score until the rule is deleted or its `expires_at` passes; `suppressed` is how many stored findings it matched."),
    Route::get("/api/v1/suppression-rules/{id}", "suppressions", "One suppression rule",
        op!("query GetSuppressionRule($id: UUID!) { suppressionRule(id: $id) { ", suppression_rule_fields!(), " } }"))
        .vars(&[Var::path("id")]),
    Route::delete("/api/v1/suppression-rules/{id}", "suppressions", "Delete a suppression rule; its findings count again",
        "mutation DeleteSuppressionRule($id: UUID!) { deleteSuppressionRule(id: $id) }")
        .vars(&[Var::path("id")])
        .notes("Answers how many findings came back (those another rule still matches stay suppressed)."),
    // --- webhooks ------------------------------------------------------------------------
    Route::get("/api/v1/webhooks", "webhooks", "List the org's webhooks, newest first",
        op!("query ListWebhooks($page: Int, $pageSize: Int) { webhooks(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", webhook_fields!(), " } } } }"))
        .vars(PAGE)
        .page()
        .session(),
    Route::post("/api/v1/webhooks", "webhooks", "Create a webhook",
        op!("mutation CreateWebhook($input: CreateWebhookInput!) { createWebhook(input: $input) { secret message webhook { ", webhook_fields!(), " } } }"))
        .vars(&[Var::body("input")])
        .created()
        .session()
        .notes("The `secret` (`whsec_` + base64) is in this answer only: verify each delivery's `webhook-signature` with it (Standard Webhooks). The URL must lead to a public address on port 80 or 443 unless the operator allows more; otherwise 400 `VALIDATION_FAILED` on `url`."),
    Route::get("/api/v1/webhooks/{id}", "webhooks", "One webhook",
        op!("query GetWebhook($id: UUID!) { webhook(id: $id) { ", webhook_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session(),
    Route::patch("/api/v1/webhooks/{id}", "webhooks", "Change a webhook",
        op!("mutation UpdateWebhook($id: UUID!, $input: UpdateWebhookInput!) { updateWebhook(id: $id, input: $input) { ", webhook_fields!(), " } }"))
        .vars(&[Var::path("id"), Var::body("input")])
        .session()
        .notes("Absent fields stay as they are; `null` clears `description`, `target_id` or `min_severity`. Enabling a disabled webhook forgets its failures."),
    Route::delete("/api/v1/webhooks/{id}", "webhooks", "Delete a webhook and its delivery log",
        "mutation DeleteWebhook($id: UUID!) { deleteWebhook(id: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    Route::post("/api/v1/webhooks/{id}/rotate-secret", "webhooks", "Give a webhook a new secret",
        op!("mutation RotateWebhookSecret($id: UUID!) { rotateWebhookSecret(id: $id) { secret message webhook { ", webhook_fields!(), " } } }"))
        .vars(&[Var::path("id")])
        .session()
        .notes("The new `secret` is in this answer only. The old one keeps signing beside it (two signatures in `webhook-signature`) until `previous_secret_expires_at`."),
    Route::post("/api/v1/webhooks/{id}/ping", "webhooks", "Send a webhook a test event",
        op!("mutation PingWebhook($id: UUID!) { pingWebhook(id: $id) { ", delivery_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .accepted()
        .session()
        .notes("Answers 202 with the queued delivery; follow it in the delivery log."),
    Route::get("/api/v1/webhooks/{id}/deliveries", "webhooks", "A webhook's delivery log, newest first",
        op!("query WebhookDeliveries($id: UUID!, $page: Int, $pageSize: Int) { webhookDeliveries(webhookId: $id, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", delivery_fields!(), " } } } }"))
        .vars(&[Var::path("id"), Var::query("page"), Var::query("pageSize")])
        .page()
        .session(),
    Route::get("/api/v1/webhook-deliveries/{id}", "webhooks", "One webhook delivery",
        op!("query GetWebhookDelivery($id: UUID!) { webhookDelivery(id: $id) { ", delivery_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session(),
    Route::post("/api/v1/webhook-deliveries/{id}/redeliver", "webhooks", "Send one delivery again",
        op!("mutation RedeliverWebhookDelivery($id: UUID!) { redeliverWebhookDelivery(id: $id) { ", delivery_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .accepted()
        .session()
        .notes("Same body and `webhook-id` as before, so receivers can drop duplicates. 409 while the delivery is still being attempted or the webhook is disabled."),
    // --- notifications -------------------------------------------------------------------
    Route::get("/api/v1/notifications", "notifications", "My notifications, unread first, then newest first",
        op!("query ListNotifications($unreadOnly: Boolean, $page: Int, $pageSize: Int) { notifications(unreadOnly: $unreadOnly, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", notification_fields!(), " } } } }"))
        .vars(&[Var::query("unreadOnly"), Var::query("page"), Var::query("pageSize")])
        .page()
        .session()
        .notes("Only the signed-in person's notifications in the org they are signed in to. `GET /api/v1/notifications/events` streams new ones as Server-Sent Events."),
    Route::get("/api/v1/notifications/counts", "notifications", "How many notifications I have, and how many are unread",
        op!("query NotificationCounts { notificationCounts { unread total } }"))
        .session(),
    Route::get("/api/v1/notifications/preferences", "notifications", "What notifies me",
        op!("query NotificationPreferences { notificationPreferences { ", notification_preference_fields!(), " } }"))
        .session(),
    Route::patch("/api/v1/notifications/preferences", "notifications", "Change what notifies me",
        op!("mutation UpdateNotificationPreferences($input: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $input) { ", notification_preference_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .session()
        .notes("Absent fields stay as they are. `kinds`: `finding_new`, `scan_failed` (an empty list silences everything); `min_severity` applies to new findings; `email` mails each notification when the server has an SMTP relay."),
    Route::post("/api/v1/notifications/read-all", "notifications", "Mark all my notifications read",
        op!("mutation MarkAllNotificationsRead { markAllNotificationsRead { count } }"))
        .session(),
    Route::get("/api/v1/notifications/{id}", "notifications", "One of my notifications",
        op!("query GetNotification($id: UUID!) { notification(id: $id) { ", notification_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session(),
    Route::post("/api/v1/notifications/{id}/read", "notifications", "Mark one of my notifications read",
        op!("mutation MarkNotificationRead($id: UUID!) { markNotificationRead(id: $id) { ", notification_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session(),
    Route::get("/api/v1/targets/followed", "notifications", "The targets I follow",
        op!("query FollowedTargets($page: Int, $pageSize: Int) { followedTargets(page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", target_fields!(), " } } } }"))
        .vars(PAGE)
        .page()
        .session(),
    Route::put("/api/v1/targets/{id}/follow", "notifications", "Follow a target",
        op!("mutation FollowTarget($id: UUID!) { followTarget(targetId: $id) { ", target_fields!(), " } }"))
        .vars(&[Var::path("id")])
        .session()
        .notes("Its new findings (at or above my minimum severity) and its failed scans then notify me. Following twice is following once."),
    Route::delete("/api/v1/targets/{id}/follow", "notifications", "Stop following a target",
        "mutation UnfollowTarget($id: UUID!) { unfollowTarget(targetId: $id) }")
        .vars(&[Var::path("id")])
        .session(),
    // --- insights ------------------------------------------------------------------------
    Route::get("/api/v1/stats", "insights", "Dashboard figures of the org's findings, or one target's",
        op!("query FindingStats($targetId: UUID, $period: String, $interval: TrendInterval, $top: Int) { findingStats(targetId: $targetId, period: $period, interval: $interval, top: $top) { target_id: targetId period interval at risk_score: riskScore open ", severity_counts!(),
            " by_severity_status: bySeverityStatus { severity status count } by_target_kind: byTargetKind { kind counts ", severity_counts!(),
            " } by_scanner: byScanner { scanner counts ", severity_counts!(),
            " } top_rules: topRules { scanner rule_id: ruleId count } top_cwes: topCwes { cwe count } age_buckets: ageBuckets { bucket min_days: minDays max_days: maxDays counts ", severity_counts!(),
            " } new_vs_fixed: newVsFixed { start new fixed } time_to_fix: timeToFix { severity fixed mean_hours: meanHours median_hours: medianHours } } }"))
        .vars(&[Var::query("targetId"), Var::query("period"), Var::query("interval"), Var::query("top")])
        .notes("`period` (`7d`, `30d` default, `90d`, `1y`) bounds `new_vs_fixed` and `time_to_fix`; `interval` is `day` (default) or `week`; `top` (1–100, default 10) bounds `top_rules` and `top_cwes`. A `target_id` of another org answers 404."),
    Route::get("/api/v1/trends/findings", "trends", "The org's open findings per severity over a period",
        op!("query OrgFindingTrend($period: String, $interval: TrendInterval) { findingTrend(period: $period, interval: $interval) { start at open ", severity_counts!(), " } }"))
        .vars(&[Var::query("period"), Var::query("interval")])
        .notes("A plain list, oldest first, one point per day (or week with `interval=week`) of the period (`7d`, `30d`, `90d` default, `1y`): the findings open at the point's `at`."),
    Route::get("/api/v1/trends/{target_id}/findings", "trends", "One target's open findings per severity over a period",
        op!("query TargetFindingTrend($targetId: UUID!, $period: String, $interval: TrendInterval) { findingTrend(targetId: $targetId, period: $period, interval: $interval) { start at open ", severity_counts!(), " } }"))
        .vars(&[Var::path("targetId"), Var::query("period"), Var::query("interval")])
        .notes("As `GET /api/v1/trends/findings`, for one target."),
    // --- sla ---------------------------------------------------------------------------------
    Route::get("/api/v1/sla/policy", "sla", "The org's SLA policy: days to fix per severity",
        op!("query SlaPolicy { slaPolicy { ", sla_policy_fields!(), " } }")),
    Route::patch("/api/v1/sla/policy", "sla", "Change the org's SLA policy",
        op!("mutation UpdateSlaPolicy($input: UpdateSlaPolicyInput!) { updateSlaPolicy(input: $input) { ", sla_policy_fields!(), " } }"))
        .vars(&[Var::body("input")])
        .notes("Admins only (API keys hold no admin rights: 403). An absent field stays as it is; `null` removes the SLA of that severity; days are 1–3650. Audited as `sla_policy.update` with the policy before and after."),
    Route::get("/api/v1/sla/summary", "sla", "Open findings per SLA state, and SLA compliance over a period",
        op!("query SlaSummary($targetId: UUID, $period: String) { slaSummary(targetId: $targetId, period: $period) { target_id: targetId period on_time: onTime due_soon: dueSoon breached met missed compliance_pct: compliancePct } }"))
        .vars(&[Var::query("targetId"), Var::query("period")])
        .notes("Of the org, or of one target with `target_id` (404 for another org's). `period` is `7d`, `30d` (default), `90d` or `1y`. See docs/sla.md for due dates, the due-soon margin and the compliance formula."),
    // --- trends --------------------------------------------------------------------------
    Route::get("/api/v1/trends/compare", "trends", "Every target's score, change over the period and sparkline",
        op!("query FleetComparison($period: String, $page: Int, $pageSize: Int) { fleetComparison(period: $period, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { target_id: targetId name current_score: currentScore delta_pct: deltaPct last_scanned_at: lastScannedAt sparkline } } } }"))
        .vars(&[Var::query("period"), Var::query("page"), Var::query("pageSize")])
        .page()
        .notes("`period` is `7d`, `30d` (default), `90d` or `1y`; `delta_pct` is the raw score change from the first scan in the period to the latest."),
    Route::get("/api/v1/trends/{target_id}", "trends", "One target's scores over a period",
        op!("query TargetTrend($targetId: UUID!, $period: String, $page: Int, $pageSize: Int) { targetTrend(targetId: $targetId, period: $period, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { scan_id: scanId scanned_at: scannedAt score } } } }"))
        .vars(&[Var::path("targetId"), Var::query("period"), Var::query("page"), Var::query("pageSize")])
        .page()
        .notes("`period` is `7d`, `30d`, `90d` (default) or `1y`."),
    // --- compliance ----------------------------------------------------------------------
    Route::get("/api/v1/compliance/frameworks", "compliance", "The compliance frameworks Rampart ships",
        op!("query ComplianceFrameworks { complianceFrameworks { ", framework_fields!(), " } }"))
        .notes("A plain list, not paged: `{\"data\": [...]}`. `mapping` says how findings map to each framework's controls and names the public source; docs/compliance.md has the same."),
    Route::get("/api/v1/compliance/{framework}", "compliance", "How a target or the org meets a framework",
        op!("query Compliance($framework: String!, $targetId: UUID) { compliance(framework: $framework, targetId: $targetId) { framework { ", framework_fields!(), " } target_id: targetId score passed failed not_tested: notTested open_findings: openFindings fixed_findings: fixedFindings computed_at: computedAt controls { id title source cwe_ids: cweIds check_ids: checkIds known_vulnerabilities: knownVulnerabilities state open_findings: openFindings fixed_findings: fixedFindings } } }"))
        .vars(&[Var::path("framework"), Var::query("targetId")])
        .notes("Without `target_id`, the whole org. A control is `failed` with an open finding mapped to it, `passed` when tested without one (a mapped finding was fixed, or a scanner able to find it completed a scan in scope), `not_tested` otherwise; `score` is passed / (passed + failed) × 100. False positives are left out. An unknown framework, or another org's target, answers 404."),
    Route::get("/api/v1/compliance/{framework}/trend", "compliance", "A framework's score at the end of each day or week of a period",
        op!("query ComplianceTrend($framework: String!, $targetId: UUID, $period: String, $interval: String) { complianceTrend(framework: $framework, targetId: $targetId, period: $period, interval: $interval) { at score passed failed not_tested: notTested open_findings: openFindings fixed_findings: fixedFindings } }"))
        .vars(&[Var::path("framework"), Var::query("targetId"), Var::query("period"), Var::query("interval")])
        .notes("`period` is `7d`, `30d` (default), `90d` or `1y`; `interval` `day` (default) or `week`. Oldest first; the last point is now. Each point applies the rules of `GET /api/v1/compliance/{framework}` to what was known then: findings first seen and not yet fixed are open, scans finished by then test."),
    // --- audit ---------------------------------------------------------------------------
    Route::get("/api/v1/audit-events", "audit", "The org's audit log, newest first",
        op!("query ListAuditEvents($action: String, $actor: String, $resourceType: String, $since: DateTime, $until: DateTime, $page: Int, $pageSize: Int) { auditEvents(action: $action, actor: $actor, resourceType: $resourceType, since: $since, until: $until, page: $page, pageSize: $pageSize) { ", page_fields!(), " edges { node { ", audit_event_fields!(), " } } } }"))
        .vars(&[Var::query("action"), Var::query("actor"), Var::query("resourceType"), Var::query("since"), Var::query("until"), Var::query("page"), Var::query("pageSize")])
        .page()
        .notes("Admins only (API keys hold no admin rights: 403 `FORBIDDEN`). `actor` is the id of a user or an API key, or the label the events show as `actor`; `since` is inclusive, `until` exclusive. `GET /api/v1/audit-events/export` streams the same events, with the same filters, as one CSV or JSON file."),
];
