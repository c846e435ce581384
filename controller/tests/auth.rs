//! Authentication and authorisation against the real controller binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use languard_proto::v1 as pb;
use pb::auth_service_client::AuthServiceClient;
use pb::server_service_client::ServerServiceClient;
use pb::user_service_client::UserServiceClient;
use tonic::Code;

#[tokio::test]
async fn login_ok_and_wrong_password() {
    let c = Controller::start().await;
    let ok = c.login("admin", ADMIN_PASSWORD).await.expect("login");
    assert!(!ok.access_token.is_empty() && ok.refresh_token.starts_with("lgr_"));
    assert_eq!(ok.user.unwrap().role, pb::Role::Admin as i32);
    let err = c
        .login("admin", "wrong password")
        .await
        .expect_err("wrong password");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = c
        .login("nobody", "wrong password")
        .await
        .expect_err("unknown user");
    assert_eq!(err.code(), Code::Unauthenticated);
    // The initial password came from the environment: nothing is written to the data dir.
    assert!(!c.data_dir.join("initial-admin-password").exists());
}

fn jwt(header: &str, claims: serde_json::Value, secret: &[u8]) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let alg: Algorithm = header.parse().unwrap();
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn expired_forged_and_alg_none_tokens_are_refused() {
    let c = Controller::start().await;
    let mut auth = AuthServiceClient::new(c.channel().await);
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| serde_json::json!({"sub": "1", "name": "admin", "iss": "languard-controller", "aud": "languard-api", "exp": exp, "iat": now - 3600});
    // A well-formed token signed with the real secret works (the control case).
    let good = jwt("HS256", claims(now + 600), JWT_SECRET.as_bytes());
    assert!(
        auth.who_am_i(authed(pb::WhoAmIRequest {}, &good))
            .await
            .is_ok()
    );
    // Expired beyond the leeway.
    let expired = jwt("HS256", claims(now - 120), JWT_SECRET.as_bytes());
    let e = auth
        .who_am_i(authed(pb::WhoAmIRequest {}, &expired))
        .await
        .expect_err("expired");
    assert_eq!(e.code(), Code::Unauthenticated);
    // Forged signature.
    let forged = jwt(
        "HS256",
        claims(now + 600),
        b"another-secret-another-secret-0000",
    );
    let e = auth
        .who_am_i(authed(pb::WhoAmIRequest {}, &forged))
        .await
        .expect_err("forged");
    assert_eq!(e.code(), Code::Unauthenticated);
    // Signed with the real secret, but by another algorithm: the algorithm is pinned to HS256.
    for alg in ["HS384", "HS512"] {
        let other = jwt(alg, claims(now + 600), JWT_SECRET.as_bytes());
        let e = auth
            .who_am_i(authed(pb::WhoAmIRequest {}, &other))
            .await
            .expect_err(alg);
        assert_eq!(e.code(), Code::Unauthenticated, "{alg}");
    }
    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims(now + 600).to_string());
    let none = format!("{header}.{body}.");
    let e = auth
        .who_am_i(authed(pb::WhoAmIRequest {}, &none))
        .await
        .expect_err("alg none");
    assert_eq!(e.code(), Code::Unauthenticated);
    // Missing header.
    let e = auth
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect_err("missing");
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let c = Controller::start().await;
    let mut auth = AuthServiceClient::new(c.channel().await);
    let first = c.login("admin", ADMIN_PASSWORD).await.unwrap();
    let second = auth
        .refresh(pb::RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    assert!(
        auth.who_am_i(authed(pb::WhoAmIRequest {}, &second.access_token))
            .await
            .is_ok()
    );
    // Reusing the spent token is theft: refused, and the whole family is revoked.
    let e = auth
        .refresh(pb::RefreshRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .expect_err("reuse");
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = auth
        .refresh(pb::RefreshRequest {
            refresh_token: second.refresh_token.clone(),
        })
        .await
        .expect_err("family revoked");
    assert_eq!(e.code(), Code::Unauthenticated);
    // A new login starts a new family, and logout revokes it. Logout needs the caller's access token,
    // and a caller can only log out their own sessions.
    let third = c.login("admin", ADMIN_PASSWORD).await.unwrap();
    let e = auth
        .logout(pb::LogoutRequest {
            refresh_token: third.refresh_token.clone(),
        })
        .await
        .expect_err("logout without an access token");
    assert_eq!(e.code(), Code::Unauthenticated);
    let watcher = c.user_token("watcher", pb::Role::Viewer).await;
    let e = auth
        .logout(authed(
            pb::LogoutRequest {
                refresh_token: third.refresh_token.clone(),
            },
            &watcher,
        ))
        .await
        .expect_err("another user's refresh token");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = auth
        .logout(authed(
            pb::LogoutRequest {
                refresh_token: "lgr_not-a-real-token".into(),
            },
            &third.access_token,
        ))
        .await
        .expect_err("an unknown refresh token");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("refresh_token"), "{}", e.message());
    auth.logout(authed(
        pb::LogoutRequest {
            refresh_token: third.refresh_token.clone(),
        },
        &third.access_token,
    ))
    .await
    .expect("logout");
    let e = auth
        .refresh(pb::RefreshRequest {
            refresh_token: third.refresh_token,
        })
        .await
        .expect_err("after logout");
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn roles_are_enforced() {
    let c = Controller::start().await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    let operator = c.user_token("otto", pb::Role::Operator).await;
    let (node_id, _) = c.create_node("n1").await;
    let admin = c.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let mut servers = ServerServiceClient::new(c.channel().await);
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(node_id, "s1", dir.path(), 2302, &[])),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .expect("create")
        .into_inner();
    // Viewer: may read, may not act.
    assert!(
        servers
            .get_server(authed(pb::GetServerRequest { id: s.id }, &viewer))
            .await
            .is_ok()
    );
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &viewer))
        .await
        .expect_err("viewer start");
    assert_eq!(e.code(), Code::PermissionDenied);
    // Operator: may act (the node is offline, so UNAVAILABLE, not PERMISSION_DENIED), may not admin.
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &operator))
        .await
        .expect_err("offline");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("offline"), "{}", e.message());
    let e = servers
        .delete_server(authed(pb::DeleteServerRequest { id: s.id }, &operator))
        .await
        .expect_err("operator delete");
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut users = UserServiceClient::new(c.channel().await);
    let e = users
        .list_users(authed(pb::ListUsersRequest::default(), &operator))
        .await
        .expect_err("operator users");
    assert_eq!(e.code(), Code::PermissionDenied);
    // A role change takes effect at once, on the same token.
    let list = users
        .list_users(authed(pb::ListUsersRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    let vera = list.users.iter().find(|u| u.username == "vera").unwrap();
    users
        .update_user(authed(
            pb::UpdateUserRequest {
                id: vera.id,
                role: Some(pb::Role::Operator as i32),
                password: None,
            },
            &admin,
        ))
        .await
        .unwrap();
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &viewer))
        .await
        .expect_err("now operator");
    assert_eq!(e.code(), Code::Unavailable);
}

#[tokio::test]
async fn login_rate_limit() {
    let c = Controller::start_with(&[("LANGUARD_LOGIN_ATTEMPTS_PER_MINUTE", "5")]).await;
    for _ in 0..5 {
        let e = c.login("admin", "bad").await.expect_err("bad password");
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = c
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect_err("limited even with the right password");
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("too many login attempts"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn login_rate_limit_per_client_address() {
    // Every attempt names another user, so only the per-address limit can stop them.
    let c = Controller::start_with(&[("LANGUARD_LOGIN_ATTEMPTS_PER_MINUTE", "5")]).await;
    for i in 0..5 {
        let e = c
            .login(&format!("guess{i}"), "bad")
            .await
            .expect_err("unknown user");
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let e = c
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect_err("limited by address even for a fresh username");
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
}

#[tokio::test]
async fn users_crud_and_password_change() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let mut users = UserServiceClient::new(c.channel().await);
    let e = users
        .create_user(authed(
            pb::CreateUserRequest {
                username: "bad name".into(),
                password: "password-123".into(),
                role: 1,
            },
            &admin,
        ))
        .await
        .expect_err("bad name");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("username"), "{}", e.message());
    let e = users
        .create_user(authed(
            pb::CreateUserRequest {
                username: "ann".into(),
                password: "short".into(),
                role: 1,
            },
            &admin,
        ))
        .await
        .expect_err("short password");
    assert!(e.message().starts_with("password"), "{}", e.message());
    let u = users
        .create_user(authed(
            pb::CreateUserRequest {
                username: "ann".into(),
                password: "password-123".into(),
                role: pb::Role::Viewer as i32,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let e = users
        .create_user(authed(
            pb::CreateUserRequest {
                username: "ann".into(),
                password: "password-123".into(),
                role: 1,
            },
            &admin,
        ))
        .await
        .expect_err("duplicate");
    assert_eq!(e.code(), Code::AlreadyExists);
    assert_eq!(
        users
            .get_user(authed(pb::GetUserRequest { id: u.id }, &admin))
            .await
            .unwrap()
            .into_inner()
            .username,
        "ann"
    );
    // Pagination: page size 1 walks both users.
    let p1 = users
        .list_users(authed(
            pb::ListUsersRequest {
                page_size: 1,
                page_token: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.users.len(), 1);
    let p2 = users
        .list_users(authed(
            pb::ListUsersRequest {
                page_size: 1,
                page_token: p1.next_page_token,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p2.users[0].username, "ann");
    let e = users
        .list_users(authed(
            pb::ListUsersRequest {
                page_size: 1,
                page_token: "garbage!".into(),
            },
            &admin,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(e.code(), Code::InvalidArgument);
    // Own password change.
    let ann = c.login("ann", "password-123").await.unwrap();
    let mut auth = AuthServiceClient::new(c.channel().await);
    let e = auth
        .change_password(authed(
            pb::ChangePasswordRequest {
                current_password: "nope".into(),
                new_password: "new-password-1".into(),
            },
            &ann.access_token,
        ))
        .await
        .expect_err("wrong current");
    assert_eq!(e.code(), Code::PermissionDenied);
    auth.change_password(authed(
        pb::ChangePasswordRequest {
            current_password: "password-123".into(),
            new_password: "new-password-1".into(),
        },
        &ann.access_token,
    ))
    .await
    .unwrap();
    assert!(c.login("ann", "new-password-1").await.is_ok());
    assert!(
        auth.refresh(pb::RefreshRequest {
            refresh_token: ann.refresh_token
        })
        .await
        .is_err(),
        "refresh tokens revoked"
    );
    // The last admin cannot be deleted; others can.
    let me = auth
        .who_am_i(authed(pb::WhoAmIRequest {}, &admin))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let e = users
        .delete_user(authed(pb::DeleteUserRequest { id: me.id }, &admin))
        .await
        .expect_err("last admin");
    assert_eq!(e.code(), Code::FailedPrecondition);
    users
        .delete_user(authed(pb::DeleteUserRequest { id: u.id }, &admin))
        .await
        .unwrap();
    let e = users
        .get_user(authed(pb::GetUserRequest { id: u.id }, &admin))
        .await
        .expect_err("deleted");
    assert_eq!(e.code(), Code::NotFound);
}
