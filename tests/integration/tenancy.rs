//! What one tenant can learn about another, and what input can do to the server: invitations
//! instead of adding accounts, org slugs, names, cursors, label filters, and the modes of the
//! files the server writes.

use serde_json::{json, Value};

use crate::support::{assert_envelope, Auth, TestApp, TestConfig, MEMBER_PASSWORD};

/// A REST call: status and JSON body (null when empty).
async fn rest(
    app: &TestApp,
    auth: Auth<'_>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::ApiKey(key) => req.header("x-api-key", key),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"))
    };
    (status, body)
}

/// `value` with every string replaced by its kind, so two answers compare by shape only.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => json!("string"),
        other => other.clone(),
    }
}

const INVITE: &str = "mutation($e: String!, $r: Role!) { inviteMember(input: {email: $e, role: $r}) { token message invitation { id email role status expiresAt acceptedAt createdAt } } }";

async fn member_emails(app: &TestApp, token: &str) -> Vec<String> {
    let users = app
        .gql(
            Auth::Bearer(token),
            "{ users { nodes { email } } }",
            json!({}),
        )
        .await;
    users.data("users")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["email"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn adding_a_person_is_an_invitation_that_reveals_no_account() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    // Carol has an account, in another org only. (`in_other` stays a session in that org.)
    let (_, in_other) = app.switch_to_new_org(&owner, "Other Org").await;
    app.add_member(&in_other, "carol@other.test", "MEMBER")
        .await;
    // Alice administers the default org and belongs to nothing else.
    let owner = app.login_admin().await;
    app.add_member(&owner, "alice@acme.test", "ADMIN").await;
    let alice = app.login("alice@acme.test", MEMBER_PASSWORD).await.0;

    // Inviting an existing account and an unknown address: the same answer, up to the values.
    let existing = app
        .gql(
            Auth::Bearer(&alice),
            INVITE,
            json!({"e": "carol@other.test", "r": "VIEWER"}),
        )
        .await;
    let unknown = app
        .gql(
            Auth::Bearer(&alice),
            INVITE,
            json!({"e": "nobody@new.test", "r": "VIEWER"}),
        )
        .await;
    let existing = existing.data("inviteMember").clone();
    let unknown = unknown.data("inviteMember").clone();
    assert_eq!(shape(&existing), shape(&unknown));
    assert_eq!(existing["message"], unknown["message"]);
    assert_eq!(existing["invitation"]["status"], "PENDING");
    assert_eq!(unknown["invitation"]["status"], "PENDING");
    // Nobody joined without saying yes.
    assert!(!member_emails(&app, &alice)
        .await
        .contains(&"carol@other.test".to_string()));

    // Carol sees the invitation, names the org that sent it, and accepts it.
    let carol = app.login("carol@other.test", MEMBER_PASSWORD).await.0;
    let mine = app
        .gql(
            Auth::Bearer(&carol),
            "{ myInvitations { nodes { id role organization { slug } } } }",
            json!({}),
        )
        .await;
    let mine = mine.data("myInvitations")["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["organization"]["slug"], "default");
    assert_eq!(mine[0]["role"], "VIEWER");
    let invitation_id = mine[0]["id"].clone();
    assert_eq!(invitation_id, existing["invitation"]["id"]);

    // Someone else cannot accept or decline it, and cannot use its token to take the address.
    app.add_member(&owner, "mallory@acme.test", "VIEWER").await;
    let mallory = app.login("mallory@acme.test", MEMBER_PASSWORD).await.0;
    for op in [
        "mutation($id: UUID!) { acceptInvitation(id: $id) { member { id } } }",
        "mutation($id: UUID!) { declineInvitation(id: $id) }",
    ] {
        let res = app
            .gql(Auth::Bearer(&mallory), op, json!({"id": invitation_id}))
            .await;
        assert_eq!(res.code(), Some("NOT_FOUND"), "{op}: {}", res.body);
    }
    let takeover = app
        .gql(
            Auth::None,
            "mutation($t: String!) { signUpWithInvitation(input: {token: $t, password: \"attacker-password\"}) { member { id } } }",
            json!({"t": existing["token"]}),
        )
        .await;
    assert_eq!(takeover.code(), Some("CONFLICT"), "{}", takeover.body);
    assert!(app
        .gql(
            Auth::None,
            "mutation { login(email: \"carol@other.test\", password: \"attacker-password\") { token } }",
            json!({}),
        )
        .await
        .code()
        .is_some());

    let accepted = app
        .gql(
            Auth::Bearer(&carol),
            "mutation($id: UUID!) { acceptInvitation(id: $id) { organization { slug } member { email role } } }",
            json!({"id": invitation_id}),
        )
        .await;
    let accepted = accepted.data("acceptInvitation");
    assert_eq!(accepted["organization"]["slug"], "default");
    assert_eq!(accepted["member"]["role"], "VIEWER");
    assert!(member_emails(&app, &alice)
        .await
        .contains(&"carol@other.test".to_string()));
    let again = app
        .gql(
            Auth::Bearer(&carol),
            "mutation($id: UUID!) { acceptInvitation(id: $id) { member { id } } }",
            json!({"id": invitation_id}),
        )
        .await;
    assert_eq!(again.code(), Some("NOT_FOUND"));

    // A new person sets a password with the token, once, and signs in.
    let joined = app
        .gql(
            Auth::None,
            "mutation($t: String!) { signUpWithInvitation(input: {token: $t, password: \"a-new-password\", displayName: \"Nobody\"}) { organization { slug } member { email role displayName } } }",
            json!({"t": unknown["token"]}),
        )
        .await;
    let joined = joined.data("signUpWithInvitation");
    assert_eq!(joined["member"]["email"], "nobody@new.test");
    assert_eq!(joined["member"]["role"], "VIEWER");
    app.login("nobody@new.test", "a-new-password").await;
    let reused = app
        .gql(
            Auth::None,
            "mutation($t: String!) { signUpWithInvitation(input: {token: $t, password: \"another-password\"}) { member { id } } }",
            json!({"t": unknown["token"]}),
        )
        .await;
    assert_eq!(reused.code(), Some("UNAUTHENTICATED"));

    // Declined and revoked invitations are gone; a revoked token no longer works.
    let to_decline = app
        .gql(
            Auth::Bearer(&in_other),
            INVITE,
            json!({"e": "mallory@acme.test", "r": "MEMBER"}),
        )
        .await
        .data("inviteMember")["invitation"]["id"]
        .clone();
    let declined = app
        .gql(
            Auth::Bearer(&mallory),
            "mutation($id: UUID!) { declineInvitation(id: $id) }",
            json!({"id": to_decline}),
        )
        .await;
    assert_eq!(declined.data("declineInvitation"), true);
    let revoked = app
        .gql(
            Auth::Bearer(&alice),
            INVITE,
            json!({"e": "someone@new.test", "r": "MEMBER"}),
        )
        .await
        .data("inviteMember")
        .clone();
    // Another org's admin cannot see or withdraw it: it does not exist for them.
    let res = app
        .gql(
            Auth::Bearer(&in_other),
            "mutation($id: UUID!) { revokeInvitation(id: $id) }",
            json!({"id": revoked["invitation"]["id"]}),
        )
        .await;
    assert_eq!(res.code(), Some("NOT_FOUND"), "{}", res.body);
    let res = app
        .gql(
            Auth::Bearer(&alice),
            "mutation($id: UUID!) { revokeInvitation(id: $id) }",
            json!({"id": revoked["invitation"]["id"]}),
        )
        .await;
    assert_eq!(res.data("revokeInvitation"), true);
    let res = app
        .gql(
            Auth::None,
            "mutation($t: String!) { signUpWithInvitation(input: {token: $t, password: \"a-new-password\"}) { member { id } } }",
            json!({"t": revoked["token"]}),
        )
        .await;
    assert_eq!(res.code(), Some("UNAUTHENTICATED"));

    // The admin's list, and the history.
    let list = app
        .gql(
            Auth::Bearer(&alice),
            "{ invitations { totalCount nodes { email status } } }",
            json!({}),
        )
        .await;
    let list = list.data("invitations");
    // alice, mallory (added by the helper), carol and nobody; the revoked one is gone.
    assert_eq!(list["totalCount"], 4, "{list}");
    let nodes = list["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["status"] == "ACCEPTED"), "{list}");
    assert!(
        nodes.iter().all(|n| n["email"] != "someone@new.test"),
        "{list}"
    );
    let audit = app
        .gql(
            Auth::Bearer(&owner),
            "{ auditEvents(pageSize: 100) { nodes { action } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = audit.data("auditEvents")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["action"].as_str())
        .collect();
    for expected in [
        "invitation.create",
        "invitation.accept",
        "invitation.revoke",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }

    // REST: the same answer shape for both kinds of address, and the rows of the table.
    let (status, a) = rest(
        &app,
        Auth::Bearer(&alice),
        reqwest::Method::POST,
        "/api/v1/invitations",
        Some(json!({"email": "dave@other.test", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    app.add_member(&in_other, "erin@other.test", "MEMBER").await;
    let (status, b) = rest(
        &app,
        Auth::Bearer(&alice),
        reqwest::Method::POST,
        "/api/v1/users",
        Some(json!({"email": "erin@other.test", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(shape(&a), shape(&b));
    let erin = app.login("erin@other.test", MEMBER_PASSWORD).await.0;
    let (status, mine) = rest(
        &app,
        Auth::Bearer(&erin),
        reqwest::Method::GET,
        "/api/v1/invitations/mine",
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["meta"]["total"], 1, "a paged list: {mine}");
    assert!(mine["links"]["self"].is_string(), "{mine}");
    let id = mine["data"][0]["id"].as_str().unwrap().to_string();
    let (status, accepted) = rest(
        &app,
        Auth::Bearer(&erin),
        reqwest::Method::POST,
        &format!("/api/v1/invitations/{id}/accept"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["data"]["member"]["role"], "member");
    let pending = a["data"]["invitation"]["id"].as_str().unwrap().to_string();
    let (status, body) = rest(
        &app,
        Auth::Bearer(&alice),
        reqwest::Method::DELETE,
        &format!("/api/v1/invitations/{pending}"),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = rest(
        &app,
        Auth::Bearer(&alice),
        reqwest::Method::GET,
        "/api/v1/invitations?page_size=2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 5, "{body}");
    assert_eq!(body["data"][0]["email"], "erin@other.test");
    assert_eq!(body["data"][0]["status"], "accepted");
}

#[tokio::test]
async fn org_slugs_do_not_tell_about_other_tenants() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let create = "mutation($n: String!, $s: String) { createOrganization(input: {name: $n, slug: $s}) { id slug } }";
    app.gql(
        Auth::Bearer(&owner),
        create,
        json!({"n": "Globex Secret Project", "s": "globex"}),
    )
    .await
    .data("createOrganization");

    // Someone else, in no org with "globex", asks for that slug: a bare "not available".
    app.add_member(&owner, "outsider@acme.test", "VIEWER").await;
    let outsider = app.login("outsider@acme.test", MEMBER_PASSWORD).await.0;
    let taken = app
        .gql(
            Auth::Bearer(&outsider),
            create,
            json!({"n": "Mine", "s": "globex"}),
        )
        .await;
    assert_eq!(taken.code(), Some("CONFLICT"), "{}", taken.body);
    let message = taken.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains("globex") && !message.contains("Secret") && !message.contains("exists"),
        "{message}"
    );
    // A slug made from a name never fails on another tenant's slug.
    let derived = app
        .gql(Auth::Bearer(&outsider), create, json!({"n": "Globex"}))
        .await;
    let slug = derived.data("createOrganization")["slug"].as_str().unwrap();
    assert!(
        slug.starts_with("globex-") && slug.len() > "globex-".len(),
        "{slug}"
    );
}

/// Names no person should be able to give anything.
const BAD_NAMES: &[(&str, &str)] = &[
    ("a\u{0}b", "control"),
    ("line\nbreak", "control"),
    ("\u{1b}[31mred", "control"),
    ("invoice\u{202E}fdp.exe", "bidirectional"),
    ("\u{2066}isolate\u{2069}", "bidirectional"),
    ("mark\u{200F}", "bidirectional"),
    ("\u{200B}\u{200B}", "visible"),
    ("\u{3000}\u{FEFF}", "visible"),
];

fn assert_refused(body: &Value, field: &str, problem: &str, context: &str) {
    let details = &body["errors"][0]["extensions"]["details"][0];
    let details = if details.is_null() {
        &body["details"][0]
    } else {
        details
    };
    assert_eq!(details["field"], field, "{context}: {body}");
    assert!(
        details["message"].as_str().unwrap_or("").contains(problem),
        "{context}: {body}"
    );
}

#[tokio::test]
async fn names_with_controls_bidi_overrides_or_nothing_visible_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=good-name&target_kind=repository",
            rampart::ingest::synthetic::sarif(
                "semgrep",
                (0..2).map(rampart::ingest::synthetic::SyntheticResult::numbered),
            ),
        )
        .await;
    let target_id = scan["targetId"].as_str().expect("target id").to_string();

    for (name, problem) in BAD_NAMES {
        let cases = [
            (
                "mutation($n: String!) { createOrganization(input: {name: $n}) { id } }",
                "name",
            ),
            (
                "mutation($n: String!) { createApiKey(input: {label: $n}) { key } }",
                "label",
            ),
            (
                "mutation($n: String!, $id: UUID!) { updateTarget(id: $id, input: {name: $n}) { id } }",
                "name",
            ),
        ];
        for (op, field) in cases {
            let res = app
                .gql(
                    Auth::Bearer(&owner),
                    op,
                    json!({"n": name, "id": target_id}),
                )
                .await;
            assert_eq!(
                res.code(),
                Some("VALIDATION_FAILED"),
                "{op} {name:?}: {}",
                res.body
            );
            assert_refused(&res.body, field, problem, &format!("{op} {name:?}"));
        }
        let invited = app
            .invite(&owner, &format!("p{}@new.test", name.len()), "VIEWER")
            .await;
        let res = app
            .gql(
                Auth::None,
                "mutation($t: String!, $n: String!) { signUpWithInvitation(input: {token: $t, password: \"a-new-password\", displayName: $n}) { member { id } } }",
                json!({"t": invited, "n": name}),
            )
            .await;
        assert_refused(
            &res.body,
            "display_name",
            problem,
            &format!("sign-up {name:?}"),
        );

        // REST: the same rule, the same envelope.
        let (status, body) = rest(
            &app,
            Auth::Bearer(&owner),
            reqwest::Method::POST,
            "/api/v1/organizations",
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_envelope(&body, 422, "VALIDATION_FAILED");
        assert_refused(&body, "name", problem, &format!("REST org {name:?}"));
        let (status, body) = rest(
            &app,
            Auth::Bearer(&owner),
            reqwest::Method::PATCH,
            &format!("/api/v1/targets/{target_id}"),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_refused(&body, "name", problem, &format!("REST target {name:?}"));
        let query = format!("target={}&target_kind=repository", urlencode(name));
        let res = app
            .ingest(Auth::Bearer(&owner), &query, b"{}".to_vec())
            .await;
        assert_eq!(res.status, 422, "{}", res.body);
        assert_refused(&res.body, "target", problem, &format!("ingest {name:?}"));
    }
    // Nothing of that got in.
    let targets = app
        .gql(
            Auth::Bearer(&owner),
            "{ targets { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(targets.data("targets")["totalCount"], 1);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn cursor(position: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{position}"))
}

#[tokio::test]
async fn cursors_past_what_a_database_takes_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    for position in [
        (i64::MAX as u64).to_string(),
        (i64::MAX as u64 + 1).to_string(),
        u64::MAX.to_string(),
        "18446744073709551616".to_string(),
    ] {
        for list in ["targets", "scans", "findings", "users", "apiKeys"] {
            let res = app
                .gql(
                    Auth::Bearer(&owner),
                    &format!("query($a: String) {{ {list}(after: $a) {{ totalCount page }} }}"),
                    json!({"a": cursor(&position)}),
                )
                .await;
            assert_eq!(res.status, 200, "{list} {position}: {}", res.body);
            assert_eq!(
                res.code(),
                Some("VALIDATION_FAILED"),
                "{list} after {position}: {}",
                res.body
            );
            assert_eq!(
                res.body["errors"][0]["extensions"]["details"][0]["field"],
                "after"
            );
        }
    }
    // The last position a database takes still pages (to nothing).
    let res = app
        .gql(
            Auth::Bearer(&owner),
            "query($a: String) { targets(after: $a) { totalCount nodes { id } } }",
            json!({"a": cursor(&(i64::MAX as u64 - 1).to_string())}),
        )
        .await;
    assert_eq!(res.data("targets")["nodes"], json!([]));
    // REST pages are numbers: one past what the schema takes is a client error too.
    let (status, body) = rest(
        &app,
        Auth::Bearer(&owner),
        reqwest::Method::GET,
        "/api/v1/targets?page=99999999999999999999",
        None,
    )
    .await;
    assert!((400..500).contains(&status), "{status}: {body}");
}

#[tokio::test]
async fn label_filters_take_any_key() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=labelled&target_kind=repository",
            rampart::ingest::synthetic::sarif(
                "semgrep",
                (0..1).map(rampart::ingest::synthetic::SyntheticResult::numbered),
            ),
        )
        .await;
    let target_id = scan["targetId"].as_str().expect("target id").to_string();
    let labels = json!({"a\\b": "x", "say \"hi\"": "y", "$.z[0]": "w"});
    app.gql(
        Auth::Bearer(&owner),
        "mutation($id: UUID!, $l: JSON!) { updateTarget(id: $id, input: {labels: $l}) { id } }",
        json!({"id": target_id, "l": labels}),
    )
    .await
    .data("updateTarget");

    for (label, expected) in [
        ("a\\b", 1),
        ("a\\b=x", 1),
        ("a\\b=y", 0),
        ("say \"hi\"", 1),
        ("say \"hi\"=y", 1),
        ("$.z[0]=w", 1),
        ("\\", 0),
        ("\"", 0),
    ] {
        let res = app
            .gql(
                Auth::Bearer(&owner),
                "query($l: String) { targets(label: $l) { totalCount } }",
                json!({"l": label}),
            )
            .await;
        assert_eq!(res.data("targets")["totalCount"], expected, "{label:?}");
        let (status, body) = rest(
            &app,
            Auth::Bearer(&owner),
            reqwest::Method::GET,
            &format!("/api/v1/targets?label={}", urlencode(label)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{label:?}: {body}");
        assert_eq!(body["meta"]["total"], expected, "{label:?}");
    }
}

/// Mode bits of a path (permissions only).
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs in a process of its own with umask 000, so the modes it checks are the ones the server
/// sets, not the ones a umask happens to give.
#[cfg(unix)]
#[tokio::test]
#[ignore = "run by data_files_are_private_to_the_service, in a process of its own"]
async fn data_files_are_private_child() {
    // SAFETY: umask only changes this process's file creation mask; this process runs only
    // this test.
    unsafe { libc::umask(0) };
    let mut tc = TestConfig::new().await;
    let data_dir = tc.data_dir.path().join("fresh").join("data");
    tc.config.data_dir = data_dir.clone();
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=secrets&target_kind=repository",
            rampart::ingest::synthetic::sarif(
                "gitleaks",
                (0..3).map(rampart::ingest::synthetic::SyntheticResult::numbered),
            ),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");

    assert_eq!(mode(&data_dir), 0o700, "data directory");
    assert_eq!(mode(&data_dir.join("jwt-secret")), 0o600, "jwt-secret");
    let mut checked = 0;
    if tc.config.database_url.is_none() {
        // While the server runs, SQLite in WAL mode keeps its -wal and -shm files.
        for name in ["rampart.db", "rampart.db-wal", "rampart.db-shm"] {
            assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
            checked += 1;
        }
    }
    if tc.config.s3_bucket.is_none() {
        let mut reports = 0;
        let mut stack = vec![data_dir.join("reports")];
        while let Some(dir) = stack.pop() {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    assert_eq!(mode(&path), 0o600, "{}", path.display());
                    reports += 1;
                }
            }
        }
        assert!(reports >= 1, "the uploaded report is on disk");
        checked += reports;
    }
    println!("CHECKED={checked}");
    app.stop().await;
    drop(tc);
}

#[cfg(unix)]
#[test]
fn data_files_are_private_to_the_service() {
    let stdout = crate::support::run_in_own_process("tenancy::data_files_are_private_child");
    assert!(stdout.contains("CHECKED="), "{stdout}");
}
