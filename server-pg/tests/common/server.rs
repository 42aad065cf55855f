//! An in-process `aqm-server` on a loopback port of its own, over a fresh schema.

use std::net::SocketAddr;

use aqm_server::config::Config;
use aqm_server::directory::PgDirectory;
use aqm_server::http::{AppState, serve_on};
use clap::Parser;

/// The admin token test servers are started with.
pub const ADMIN: &str = "test-admin-token";

pub struct TestServer {
    pub base: String,
    pub schema: String,
    pub directory: PgDirectory,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Start with `extra` flags on top of an admin token and a generous registration limit.
    pub async fn start(extra: &[&str]) -> TestServer {
        let schema = super::unique_schema("http");
        let db = super::create_schema(&schema).await;
        let mut args = vec!["aqm-server", "--admin-token", ADMIN];
        if !extra.contains(&"--register-per-minute") {
            args.extend(["--register-per-minute", "100000"]);
        }
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let directory = PgDirectory::from_config(db, config.pool_size, config.policy()).expect("pool");
        directory.migrate().await.expect("migrate");
        let state = AppState::new(directory.clone(), &config).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let timeout = config.request_timeout();
        let task = tokio::spawn(async move {
            serve_on(listener, state, timeout, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        TestServer { base: format!("http://{addr}"), schema, directory, stop: Some(stop), task: Some(task) }
    }

    /// Stop serving and drop the schema.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        super::drop_schema(&self.schema).await;
    }
}
