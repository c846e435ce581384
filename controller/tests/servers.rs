//! Server specs through the public API: validation naming the field, port clashes, update masks,
//! filters and pagination, on SQLite or PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use languard_proto::v1 as pb;
use pb::server_service_client::ServerServiceClient;
use tonic::Code;

#[tokio::test]
async fn create_validate_update_list_delete() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (n1, _) = c.create_node("n1").await;
    let (n2, _) = c.create_node("n2").await;
    let dir = tempfile::tempdir().unwrap();
    let mut servers = ServerServiceClient::new(c.channel().await);
    let create = |s: pb::Server, pw: &str| {
        authed(
            pb::CreateServerRequest {
                server: Some(s),
                rcon_password: pw.into(),
            },
            &admin,
        )
    };

    // Validation errors name the field.
    let mut bad = fake_server(n1, "a", dir.path(), 2302, &[]);
    bad.executable_path = "arma3server_x64".into();
    let e = servers
        .create_server(create(bad, ""))
        .await
        .expect_err("relative path");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("server.executable_path"),
        "{}",
        e.message()
    );
    let mut bad = fake_server(n1, "a", dir.path(), 80, &[]);
    bad.rcon_port = 2400;
    let e = servers
        .create_server(create(bad, "pw"))
        .await
        .expect_err("low port");
    assert!(
        e.message().starts_with("server.arma3.game_port"),
        "{}",
        e.message()
    );
    let mut bad = fake_server(n1, "a", dir.path(), 2302, &[]);
    bad.rcon_port = 2400;
    let e = servers
        .create_server(create(bad, ""))
        .await
        .expect_err("rcon without password");
    assert!(e.message().starts_with("rcon_password"), "{}", e.message());
    let e = servers
        .create_server(create(fake_server(999, "a", dir.path(), 2302, &[]), ""))
        .await
        .expect_err("no node");
    assert!(e.message().starts_with("server.node_id"), "{}", e.message());

    let mut spec = fake_server(n1, "a", dir.path(), 2302, &[]);
    spec.rcon_port = 2310;
    let a = servers
        .create_server(create(spec, "secret-pw"))
        .await
        .expect("create a")
        .into_inner();
    assert_eq!(a.status, pb::ServerStatus::Stopped as i32);
    assert!(
        a.rcon_password_set && a.status_stale,
        "password set, node offline"
    );
    // Port clashes on the same node: 2302-2306 and 2310 are taken.
    let e = servers
        .create_server(create(fake_server(n1, "b", dir.path(), 2304, &[]), ""))
        .await
        .expect_err("clash");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("clash"), "{}", e.message());
    let e = servers
        .create_server(create(fake_server(n1, "b", dir.path(), 2308, &[]), ""))
        .await
        .expect_err("clash with rcon");
    assert!(e.message().contains("clash"), "{}", e.message());
    let e = servers
        .create_server(create(fake_server(n1, "a", dir.path(), 2402, &[]), ""))
        .await
        .expect_err("same name");
    assert_eq!(e.code(), Code::AlreadyExists);
    // The same ports on another node are fine.
    let b = servers
        .create_server(create(fake_server(n2, "b", dir.path(), 2302, &[]), ""))
        .await
        .expect("other node")
        .into_inner();
    let c3 = servers
        .create_server(create(fake_server(n1, "c", dir.path(), 2402, &[]), ""))
        .await
        .expect("c")
        .into_inner();

    // Update with a mask: only named fields change; the password stays write-only.
    let patch = pb::Server {
        name: "a-renamed".into(),
        auto_restart: true,
        ..Default::default()
    };
    let mask = prost_types::FieldMask {
        paths: vec!["name".into(), "auto_restart".into()],
    };
    let u = servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id: a.id,
                server: Some(patch),
                update_mask: Some(mask),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(u.name, "a-renamed");
    assert!(u.auto_restart);
    assert_eq!(
        u.arma3.as_ref().unwrap().game_port,
        2302,
        "unmasked field unchanged"
    );
    assert!(u.rcon_password_set);
    let patch = pb::Server {
        arma3: Some(pb::Arma3Settings {
            game_port: 2404,
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id: a.id,
                server: Some(patch),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["arma3.game_port".into()],
                }),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .expect_err("update into a clash");
    assert!(e.message().contains("clash"), "{}", e.message());
    let e = servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id: a.id,
                server: None,
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .expect_err("bad mask");
    assert!(e.message().starts_with("update_mask"), "{}", e.message());

    // List: filters and pagination.
    let all = servers
        .list_servers(authed(pb::ListServersRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.servers.len(), 3);
    let on_n1 = servers
        .list_servers(authed(
            pb::ListServersRequest {
                node_id: n1,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        on_n1.servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.id, c3.id]
    );
    let running = servers
        .list_servers(authed(
            pb::ListServersRequest {
                status: pb::ServerStatus::Running as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(running.servers.is_empty());
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = servers
            .list_servers(authed(
                pb::ListServersRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.servers.iter().map(|s| s.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, vec![a.id, b.id, c3.id]);

    // Delete (node offline: stored spec only), then gone; events recorded with the actor.
    servers
        .delete_server(authed(pb::DeleteServerRequest { id: b.id }, &admin))
        .await
        .expect("delete");
    let e = servers
        .get_server(authed(pb::GetServerRequest { id: b.id }, &admin))
        .await
        .expect_err("gone");
    assert_eq!(e.code(), Code::NotFound);
    let mut events = pb::event_service_client::EventServiceClient::new(c.channel().await);
    let ev = events
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: a.id,
                r#type: "spec".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ev.events.len(), 2, "created + changed");
    assert!(ev.events[0].id > ev.events[1].id, "newest first");
    assert_eq!(ev.events[0].actor, "admin");
    // A node with servers cannot be deleted.
    let mut nodes = pb::node_service_client::NodeServiceClient::new(c.channel().await);
    let e = nodes
        .delete_node(authed(pb::DeleteNodeRequest { id: n1 }, &admin))
        .await
        .expect_err("node has servers");
    assert_eq!(e.code(), Code::FailedPrecondition);
    nodes
        .delete_node(authed(pb::DeleteNodeRequest { id: n2 }, &admin))
        .await
        .expect("empty node deleted");
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    // Always SQLite, whatever LANGUARD_TEST_DB says: this checks the connection set-up itself.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("wal.db").display());
    let db = languard_controller::db::connect(&url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    for (pragma, want) in [
        ("PRAGMA journal_mode", "wal"),
        ("PRAGMA synchronous", "1"),
        ("PRAGMA foreign_keys", "1"),
    ] {
        let row = db
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                pragma,
            ))
            .await
            .unwrap()
            .unwrap();
        let v: String = row
            .try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
            .unwrap();
        assert_eq!(v.to_lowercase(), want, "{pragma}");
    }
}
