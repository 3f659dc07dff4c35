//! The auth service's contract without HTTP: setup, login and sessions, passwords, roles,
//! API tokens, enrollment and node tokens.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::*;

const STRONG: &str = "violet-tractor-lantern-9";
const OTHER: &str = "quartz-meadow-bicycle-71";
const TEMPORARY: &str = "temporary-ocelot-42-x";

fn ip() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn config(dir: &Path) -> AuthConfig {
    AuthConfig {
        data_dir: dir.to_path_buf(),
        session_idle: Duration::from_secs(600),
        session_lifetime: Duration::from_secs(3600),
        password_min_len: 12,
        password_max_age: None,
        require_second_factor: SecondFactorPolicy::Off,
    }
}

fn service(dir: &Path) -> Auth {
    Auth::new(
        Store::open(&dir.join("db")).unwrap(),
        config(dir),
        LoginFailures::new(|_| {}),
    )
    .unwrap()
}

/// A service with its first admin, and that admin's session.
async fn with_admin(dir: &Path) -> (Auth, Principal) {
    let auth = service(dir);
    let file = dir.join("admin-password");
    std::fs::write(&file, STRONG).unwrap();
    assert!(auth.admin_from_file("admin", &file).await.unwrap());
    let s = auth.login("admin", STRONG, ip()).await.unwrap();
    let admin = auth.session(&s.id).unwrap().unwrap();
    (auth, admin)
}

#[tokio::test]
async fn setup_takes_its_code_once() {
    let dir = tempfile::tempdir().unwrap();
    let auth = service(dir.path());
    assert!(auth.needs_setup().unwrap());
    let code = auth
        .prepare_setup()
        .await
        .unwrap()
        .expect("a code before the first admin");
    assert!(matches!(
        auth.complete_setup("AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A", "admin", STRONG, ip())
            .await,
        Err(AuthError::BadSetupCode)
    ));
    assert!(matches!(
        auth.complete_setup(&code, "admin", "password1234", ip())
            .await,
        Err(AuthError::Policy(_))
    ));
    let s = auth
        .complete_setup(&code, "admin", STRONG, ip())
        .await
        .unwrap();
    let admin = auth.session(&s.id).unwrap().unwrap();
    assert_eq!((admin.name.as_str(), admin.role), ("admin", Role::Admin));
    assert!(admin.is_user() && !admin.must_change_password);
    assert!(!auth.needs_setup().unwrap());
    assert!(matches!(
        auth.complete_setup(&code, "other", STRONG, ip()).await,
        Err(AuthError::SetupDone)
    ));
    assert_eq!(auth.prepare_setup().await.unwrap(), None);
}

#[tokio::test]
async fn login_opens_a_session_that_logout_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, _) = with_admin(dir.path()).await;
    for (name, password) in [
        ("admin", OTHER),
        ("nobody", STRONG),
        (&*"x".repeat(65), STRONG),
    ] {
        assert!(matches!(
            auth.login(name, password, ip()).await,
            Err(AuthError::BadCredentials)
        ));
    }
    let s = auth.login("admin", STRONG, ip()).await.unwrap();
    assert_ne!(s.id, s.csrf);
    let who = auth.session(&s.id).unwrap().unwrap();
    assert_eq!(who.actor(), "admin");
    assert!(matches!(&who.via, Via::Session { csrf, .. } if *csrf == s.csrf));
    auth.logout(&who, ip()).await.unwrap();
    assert!(auth.session(&s.id).unwrap().is_none());
    assert!(auth.session("not-a-session").unwrap().is_none());
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, _) = with_admin(dir.path()).await;
    let mut throttled = None;
    for _ in 0..20 {
        match auth.login("admin", OTHER, ip()).await {
            Err(AuthError::BadCredentials) => {}
            Err(AuthError::Throttled { retry_after }) => {
                throttled = Some(retry_after);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        throttled.is_some_and(|w| w > Duration::ZERO),
        "no throttle after 20 failures"
    );
}

#[tokio::test]
async fn passwords_change_only_with_the_current_one_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    assert!(matches!(
        auth.change_password(&admin, OTHER, OTHER, ip()).await,
        Err(AuthError::WrongCurrentPassword)
    ));
    assert!(matches!(
        auth.change_password(&admin, STRONG, "short", ip()).await,
        Err(AuthError::Policy(_))
    ));
    assert!(matches!(
        auth.change_password(&admin, STRONG, STRONG, ip()).await,
        Err(AuthError::Policy(_))
    ));
    let s = auth
        .change_password(&admin, STRONG, OTHER, ip())
        .await
        .unwrap();
    assert!(auth.session(&s.id).unwrap().is_some());
    assert!(auth.login("admin", STRONG, ip()).await.is_err());
    auth.login("admin", OTHER, ip()).await.unwrap();
}

#[tokio::test]
async fn roles_keep_an_admin_and_end_the_changed_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    let admin_id = admin.user_id.unwrap();
    assert!(matches!(
        auth.set_role(&admin, admin_id, Role::Viewer, ip()).await,
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        auth.delete_user(&admin, admin_id, ip()).await,
        Err(AuthError::SelfDelete)
    ));
    let viewer = auth
        .create_user(&admin, "vera", Role::Viewer, TEMPORARY, ip())
        .await
        .unwrap();
    assert!(matches!(
        auth.create_user(&admin, "VERA", Role::Viewer, TEMPORARY, ip())
            .await,
        Err(AuthError::NameTaken)
    ));
    let s = auth.login("vera", TEMPORARY, ip()).await.unwrap();
    assert!(
        s.must_change_password,
        "a temporary password must be changed"
    );
    auth.set_role(&admin, viewer.id, Role::Editor, ip())
        .await
        .unwrap();
    assert!(
        auth.session(&s.id).unwrap().is_none(),
        "a role change ends sessions"
    );
    assert!(matches!(
        auth.set_role(&admin, 999_999, Role::Editor, ip()).await,
        Err(AuthError::NotFound("user"))
    ));
    auth.delete_user(&admin, viewer.id, ip()).await.unwrap();
    assert!(auth.login("vera", TEMPORARY, ip()).await.is_err());
}

#[tokio::test]
async fn api_tokens_work_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    let (token, secret) = auth
        .create_token(&admin, "grafana", Role::Viewer, None, ip())
        .await
        .unwrap();
    let who = auth.bearer(&secret).unwrap().expect("a fresh token works");
    assert_eq!(
        (who.role, who.actor().as_str()),
        (Role::Viewer, "token:grafana")
    );
    assert!(matches!(who.via, Via::Token { id } if id == token.id));
    assert!(auth.bearer("perch_0000").unwrap().is_none());
    auth.revoke_token(&admin, token.id, ip()).await.unwrap();
    assert!(
        auth.bearer(&secret).unwrap().is_none(),
        "revocation stops it at once"
    );
    assert!(auth.tokens().unwrap().iter().all(|t| t.id != token.id));
}

/// A token made with a token, and what that one makes: all die with any ancestor.
async fn lineage(auth: &Auth, root_maker: &Principal, root_life: Option<Duration>) -> Vec<String> {
    let (_, t1) = auth
        .create_token(root_maker, "t1", Role::Admin, root_life, ip())
        .await
        .unwrap();
    let p1 = auth.bearer(&t1).unwrap().unwrap();
    let (_, t2) = auth
        .create_token(&p1, "t2", Role::Admin, None, ip())
        .await
        .unwrap();
    let p2 = auth.bearer(&t2).unwrap().unwrap();
    let (_, t3) = auth
        .create_token(&p2, "t3", Role::Viewer, None, ip())
        .await
        .unwrap();
    let (_, enroll) = auth
        .create_enroll_token(&p2, Duration::from_secs(600), ip())
        .await
        .unwrap();
    for secret in [&t1, &t2, &t3] {
        assert!(auth.bearer(secret).unwrap().is_some(), "alive at first");
    }
    assert!(auth.bearer(&enroll).unwrap().is_some());
    vec![t1, t2, t3, enroll]
}

fn all_dead(auth: &Auth, secrets: &[String], case: &str) {
    for secret in &secrets[1..3] {
        assert!(
            auth.bearer(secret).unwrap().is_none(),
            "{case}: a descendant token still works"
        );
    }
    assert!(
        auth.bearer(&secrets[3]).unwrap().is_none(),
        "{case}: an enrollment token made by a descendant still works"
    );
}

#[tokio::test]
async fn tokens_made_by_tokens_die_with_any_ancestor() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;

    // The first token revoked.
    let secrets = lineage(&auth, &admin, None).await;
    let t1 = auth
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "t1")
        .unwrap();
    auth.revoke_token(&admin, t1.id, ip()).await.unwrap();
    all_dead(&auth, &secrets, "revoked");

    // Its maker demoted, then (another lineage) deleted.
    for (name, demote) in [("eve", true), ("mallory", false)] {
        auth.create_user(&admin, name, Role::Admin, TEMPORARY, ip())
            .await
            .unwrap();
        let s = auth.login(name, TEMPORARY, ip()).await.unwrap();
        let maker = auth.session(&s.id).unwrap().unwrap();
        let secrets = lineage(&auth, &maker, None).await;
        let id = maker.user_id.unwrap();
        if demote {
            auth.set_role(&admin, id, Role::Viewer, ip()).await.unwrap();
        } else {
            auth.delete_user(&admin, id, ip()).await.unwrap();
        }
        all_dead(&auth, &secrets, name);
        assert!(auth.bearer(&secrets[0]).unwrap().is_none());
    }

    // The first token expired. Expiry counts whole seconds, so a 1 s life could end
    // between making the token and its first use; 3 s leaves room on a slow machine.
    let secrets = lineage(&auth, &admin, Some(Duration::from_secs(3))).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    all_dead(&auth, &secrets, "expired");
}

#[tokio::test]
async fn an_enrollment_token_enrolls_one_node_whose_token_writes_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    assert!(matches!(
        auth.create_enroll_token(&admin, Duration::from_secs(60), ip())
            .await,
        Err(AuthError::BadInput(_))
    ));
    let (_, enroll) = auth
        .create_enroll_token(&admin, Duration::from_secs(600), ip())
        .await
        .unwrap();
    let machine = auth
        .bearer(&enroll)
        .unwrap()
        .expect("an unused enrollment token");
    assert!(matches!(machine.via, Via::Enroll { .. }) && !machine.is_user());
    let request = EnrollRequest {
        name: "db1".into(),
        ..Default::default()
    };
    let (node, node_token) = auth.enroll(&machine, request, ip()).await.unwrap();
    assert!(
        !matches!(auth.bearer(&enroll), Ok(Some(_))),
        "an enrollment token is used up"
    );
    let writer = auth.bearer(&node_token).unwrap().expect("the node token");
    assert!(matches!(writer.via, Via::Node { node_id, .. } if node_id == node.id));
    let again = EnrollRequest {
        name: "db1".into(),
        ..Default::default()
    };
    assert!(matches!(
        auth.enroll(&admin, again, ip()).await,
        Err(AuthError::NodeNameTaken(_))
    ));
    auth.delete_node(&admin, node.id, ip()).await.unwrap();
    assert!(auth.bearer(&node_token).unwrap().is_none());
    assert!(matches!(
        auth.node(node.id),
        Err(AuthError::NotFound("node"))
    ));
}

#[test]
fn user_names_are_plain_ascii() {
    assert_eq!(
        check_name("  alice.b-c_d@example ").unwrap(),
        "alice.b-c_d@example"
    );
    // Cyrillic "а" looks like Latin "a".
    assert!(check_name("\u{0430}dmin").is_err());
    assert!(check_name("").is_err());
    assert!(check_name("has space").is_err());
    assert!(check_name(&"x".repeat(65)).is_err());
}

/// `password` is refused for `rule` on every path that sets one: the password file, setup,
/// create, change and reset.
async fn refused_on_every_path(password: &str, rule: password::Rule, in_file_error: &str) {
    let refused = |r: Result<(), AuthError>| matches!(r, Err(AuthError::Policy(ref refusal)) if refusal.rule == rule);
    let dir = tempfile::tempdir().unwrap();
    let auth = service(dir.path());
    let file = dir.path().join("refused-password");
    std::fs::write(&file, password).unwrap();
    let e = auth.admin_from_file("admin", &file).await.unwrap_err();
    assert!(e.contains(in_file_error), "the password file: {e}");
    let code = auth.prepare_setup().await.unwrap().unwrap();
    assert!(refused(
        auth.complete_setup(&code, "admin", password, ip())
            .await
            .map(|_| ())
    ));
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    assert!(refused(
        auth.create_user(&admin, "erin", Role::Viewer, password, ip())
            .await
            .map(|_| ())
    ));
    assert!(refused(
        auth.change_password(&admin, STRONG, password, ip())
            .await
            .map(|_| ())
    ));
    let erin = auth
        .create_user(&admin, "erin", Role::Viewer, TEMPORARY, ip())
        .await
        .unwrap();
    assert!(refused(
        auth.reset_password(&admin, erin.id, password, ip()).await
    ));
}

/// A strong password with a zero-width space inside: refused on every path that sets one.
#[tokio::test]
async fn invisible_characters_are_refused_on_every_path() {
    refused_on_every_path(
        "violet\u{200b}-tractor-lantern-9",
        password::Rule::Invisible,
        "invisible",
    )
    .await;
}

/// A password field over 1 KiB (here U+FDFA, which NFKC makes 18 times longer) is refused
/// before it is normalised, wherever a password is typed, logging in included.
#[tokio::test]
async fn password_fields_over_a_kibibyte_are_refused_on_every_path() {
    let huge = "\u{FDFA}".repeat(342);
    assert!(huge.len() > password::MAX_INPUT_BYTES);
    refused_on_every_path(&huge, password::Rule::TooLong, "1024 bytes").await;
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    let too_long = |r: Result<(), AuthError>| matches!(r, Err(AuthError::Policy(ref refusal)) if refusal.rule == password::Rule::TooLong);
    assert!(too_long(auth.login("admin", &huge, ip()).await.map(|_| ())));
    assert!(too_long(
        auth.change_password(&admin, &huge, OTHER, ip())
            .await
            .map(|_| ())
    ));
    // Not counted as failures: the owner is not throttled by them.
    assert!(auth.login("admin", STRONG, ip()).await.is_ok());
}

/// The code `enrolment`'s secret gives at `at` (unix seconds).
fn code_of(enrolment: &Enrolment, at: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret.as_bytes())
        .unwrap();
    totp::code(&secret, totp::step_at(at))
}

/// Six digits that are no code of `enrolment` this step, the one before or the one after.
fn wrong_code(enrolment: &Enrolment) -> String {
    let now = perch_time::unix_now();
    let window: Vec<String> = [-1, 0, 1]
        .iter()
        .map(|d| code_of(enrolment, now + d * totp::STEP_SECONDS))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !window.contains(c))
        .unwrap()
}

#[tokio::test]
async fn a_second_factor_is_enrolled_with_a_code_and_each_code_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    let enrolment = auth.begin_second_factor(&admin).await.unwrap();
    assert!(
        enrolment
            .uri
            .starts_with("otpauth://totp/Perch%3Aadmin?secret=")
    );
    assert!(matches!(
        auth.confirm_second_factor(&admin, &wrong_code(&enrolment), ip())
            .await,
        Err(AuthError::InvalidCode)
    ));
    let now = perch_time::unix_now();
    let codes = auth
        .confirm_second_factor(&admin, &code_of(&enrolment, now), ip())
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let id = admin.user_id.unwrap();
    let stored = auth.store.user(id).unwrap().unwrap();
    let sealed = &stored.second_factor.as_ref().unwrap().sealed_secret;
    assert!(!sealed.contains(&enrolment.secret) && stored.pending_second_factor.is_none());
    assert!(auth.users().unwrap().iter().any(|u| u.second_factor));

    // The confirming code is used: not again; the next step's is good once.
    assert!(matches!(
        auth.check_second_factor(id, &code_of(&enrolment, now), ip())
            .await,
        Err(AuthError::InvalidCode)
    ));
    let next = code_of(&enrolment, now + totp::STEP_SECONDS);
    assert_eq!(
        auth.check_second_factor(id, &next, ip()).await.unwrap(),
        second_factor::Accepted::Totp
    );
    assert!(auth.check_second_factor(id, &next, ip()).await.is_err());
    // A recovery code once, however typed; not twice.
    let typed = codes[3].to_uppercase();
    assert_eq!(
        auth.check_second_factor(id, &typed, ip()).await.unwrap(),
        second_factor::Accepted::Recovery { remaining: 9 }
    );
    assert!(auth.check_second_factor(id, &codes[3], ip()).await.is_err());
    // Renewed, the old ones are void.
    let renewed = auth
        .renew_recovery_codes(&admin, &codes[4], ip())
        .await
        .unwrap();
    assert!(auth.check_second_factor(id, &codes[5], ip()).await.is_err());
    assert!(
        auth.check_second_factor(id, &renewed[0], ip())
            .await
            .is_ok()
    );

    // An admin resets someone else's, never their own; a user removes theirs with a code.
    assert!(matches!(
        auth.reset_second_factor(&admin, id, ip()).await,
        Err(AuthError::BadInput(_))
    ));
    auth.remove_second_factor(&admin, &renewed[1], ip())
        .await
        .unwrap();
    assert!(
        auth.store
            .user(id)
            .unwrap()
            .unwrap()
            .second_factor
            .is_none()
    );
    let kinds: Vec<_> = auth
        .audit_trail(None, None, 50)
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        AuditKind::SecondFactorEnabled,
        AuditKind::RecoveryCodeUsed,
        AuditKind::RecoveryCodesRenewed,
        AuditKind::SecondFactorDisabled,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} audited");
    }
}

#[tokio::test]
async fn the_second_factor_key_file_is_needed_once_secrets_are_sealed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (auth, admin) = with_admin(dir.path()).await;
        let enrolment = auth.begin_second_factor(&admin).await.unwrap();
        auth.confirm_second_factor(&admin, &code_of(&enrolment, perch_time::unix_now()), ip())
            .await
            .unwrap();
    }
    std::fs::remove_file(dir.path().join("perch").join(SECOND_FACTOR_KEY_FILE)).unwrap();
    let reopened = (0..50).find_map(|_| match Store::open(&dir.path().join("db")) {
        Ok(store) => Some(store),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    });
    let e = Auth::new(
        reopened.expect("the store reopens"),
        config(dir.path()),
        LoginFailures::new(|_| {}),
    )
    .unwrap_err();
    assert!(
        e.contains(SECOND_FACTOR_KEY_FILE) && e.contains("missing"),
        "{e}"
    );
}

#[tokio::test]
async fn an_exported_store_imports_whole_without_sessions_and_ids_go_on_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    auth.create_user(&admin, "viewer1", Role::Viewer, STRONG, ip())
        .await
        .unwrap();
    let (token, secret) = auth
        .create_token(&admin, "ci", Role::Editor, None, ip())
        .await
        .unwrap();
    let copy = auth.export_store().unwrap();
    assert_eq!((copy.users, copy.api_tokens), (2, 1));

    let restored = tempfile::tempdir().unwrap();
    let imported = Store::import(&restored.path().join("db"), &copy.records).unwrap();
    assert_eq!(imported.api_tokens, 1);
    assert_eq!(imported.users, 2);
    // Not over a store that exists.
    assert!(matches!(
        Store::import(&restored.path().join("db"), &copy.records),
        Err(ImportError::NotEmpty(_))
    ));
    // A cut or altered copy is refused.
    let cut = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::import(cut.path(), &copy.records[..copy.records.len() - 3]),
        Err(ImportError::Damaged(_))
    ));
    std::fs::copy(
        dir.path().join("perch/second-factor.key"),
        restored.path().join("perch/second-factor.key"),
    )
    .ok();
    let again = service(restored.path());
    assert!(!again.needs_setup().unwrap());
    let s = again.login("viewer1", STRONG, ip()).await.unwrap();
    assert!(again.session(&s.id).unwrap().is_some());
    let by_token = again
        .bearer(&secret)
        .unwrap()
        .expect("the token still works");
    assert_eq!(by_token.token_id(), Some(token.id));
    // The admin's session was not copied.
    let admin_session = auth.login("admin", STRONG, ip()).await.unwrap();
    assert!(again.session(&admin_session.id).unwrap().is_none());
    // New records get ids past every copied one.
    let admin2 = again
        .session(&again.login("admin", STRONG, ip()).await.unwrap().id)
        .unwrap()
        .unwrap();
    let (newer, _) = again
        .create_token(&admin2, "later", Role::Viewer, None, ip())
        .await
        .unwrap();
    assert!(newer.id > token.id, "{} > {}", newer.id, token.id);
}

#[tokio::test]
async fn ids_count_from_one_for_each_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (auth, admin) = with_admin(dir.path()).await;
    assert_eq!(admin.user_id, Some(1), "the first user");
    let (token, _) = auth
        .create_token(&admin, "first", Role::Viewer, None, ip())
        .await
        .unwrap();
    assert_eq!(token.id, 1, "the first API token");
    let (node, _) = auth
        .enroll(
            &admin,
            nodes::EnrollRequest {
                name: "db-1".into(),
                address: String::new(),
                labels: Default::default(),
                force: false,
            },
            ip(),
        )
        .await
        .unwrap();
    assert_eq!(node.id, 1, "the first node");
    auth.create_user(&admin, "second", Role::Viewer, STRONG, ip())
        .await
        .unwrap();
    let users = auth.users().unwrap();
    assert_eq!(
        users.iter().map(|u| u.id).collect::<Vec<_>>(),
        [1, 2],
        "one more for the next user"
    );
}
