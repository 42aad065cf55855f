//! The real `aqm-server` binary as a child process, and a private PostgreSQL instance that a
//! test may stop and start (fault injection without touching the machine's own server).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::ADMIN;

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A running `aqm-server`.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    /// Start the binary on `port` against `database_url`; returns once it listens.
    pub fn start(database_url: &str, port: u16, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aqm-server"))
            .args(["--database-url", database_url, "--bind", &format!("127.0.0.1:{port}"), "--admin-token", ADMIN])
            .args(["--register-per-minute", "100000"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aqm-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read aqm-server's first line");
        assert!(line.contains("listening on"), "aqm-server did not start: {line:?}");
        ServerProcess { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// SIGKILL: no graceful shutdown, requests in flight are cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pg_bin(tool: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(root).expect("/usr/lib/postgresql").filter_map(|e| e.ok()).collect();
    versions.sort_by_key(|e| e.file_name());
    versions.last().expect("a PostgreSQL version").path().join("bin").join(tool)
}

/// Run a PostgreSQL tool as the `postgres` user (initdb refuses root).
fn as_postgres(tool: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = if nix_is_root() { Command::new("runuser") } else { Command::new(pg_bin(tool)) };
    if nix_is_root() {
        cmd.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
    }
    cmd.args(args).output().unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// A private PostgreSQL cluster in a temporary directory, on a port of its own.
pub struct PrivatePostgres {
    pub dir: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// initdb and start.
    pub fn start() -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("aqm-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let _ = Command::new("chown").args(["postgres:postgres", dir.to_str().expect("path")]).status();
        let data = dir.join("data");
        let out = as_postgres("initdb", &["-D", data.to_str().expect("path"), "-A", "trust", "-U", "postgres"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = PrivatePostgres { dir, port: free_port() };
        pg.resume();
        pg
    }

    /// The connection URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop the server (fast: connections are cut).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = as_postgres("pg_ctl", &["-D", data.to_str().expect("path"), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Start it (again).
    pub fn resume(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let out = as_postgres(
            "pg_ctl",
            &["-D", data.to_str().expect("path"), "-l", log.to_str().expect("path"), "-o", &opts, "-w", "start"],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private PostgreSQL did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres("pg_ctl", &["-D", data.to_str().unwrap_or("."), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
