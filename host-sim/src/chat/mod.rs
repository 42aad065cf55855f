//! `aqm-sim chat`: two people chat in real time from two terminals, every message through the
//! full AQM lifecycle, with the partner's cached coins counted live in the prompt; or `--auto`,
//! the three priority scenarios in one process with every outcome checked.
//!
//! ```text
//! aqm-sim chat --user alice --partner bob --priority BESTIE    # terminal 1
//! aqm-sim chat --user bob --partner alice --priority BESTIE    # terminal 2
//! aqm-sim chat --auto
//! ```
//!
//! Messages travel over Redis pub/sub (channel `{prefix}:{user}`, as the prototype's
//! `aqm:chat:{user_id}`). Each side keeps its vault, sessions, pins and inventory in
//! `{data-dir}/{user}.redb` (or on Redis with `--redis`); the coin directory is
//! `{data-dir}/directory.redb`, which both processes share ([`directory::SharedDirectory`]), or
//! an aqm-server with `--server`. Identities and device keys are generated for each run and never
//! stored, so each run starts with a fresh store.
//!
//! Modules: [`session`] (one user's lifecycle over the core's `Messenger`), [`frame`] (what the
//! processes publish), [`transport`] (pub/sub), [`directory`] (the shared directory file),
//! [`describe`] (the words shown), [`prompt`] (the interactive loop), [`auto`] (the scenarios
//! and their checks).

pub mod auto;
pub mod describe;
pub mod directory;
pub mod error;
pub mod frame;
pub mod prompt;
pub mod session;
#[cfg(test)]
mod tests;
pub mod transport;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aqm_core::crypto::DeviceKey;
use aqm_core::store::DirectoryStore;
use aqm_core::{Policy, Priority};
use aqm_server::client::HttpDirectory;
use aqm_storage_redb::RedbStore;
use aqm_storage_redis::RedisStore;
use owo_colors::OwoColorize;
use rand::RngExt;

use directory::SharedDirectory;
use error::{ChatError, Ctx};
use session::{DeviceStore, Session};
use transport::Pubsub;

/// How the user ranks the partner (the prototype's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PriorityArg {
    /// Closest contacts: GOLD, SILVER and BRONZE cached (5/4/1).
    #[value(name = "BESTIE")]
    Bestie,
    /// Regular contacts: SILVER and BRONZE cached (0/6/4), never sent GOLD.
    #[value(name = "MATE")]
    Mate,
    /// Nothing cached; every chain opens with a coin fetched on demand, BRONZE only.
    #[value(name = "STRANGER")]
    Stranger,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::Bestie => Priority::Bestie,
            PriorityArg::Mate => Priority::Mate,
            PriorityArg::Stranger => Priority::Stranger,
        }
    }
}

/// Options of `aqm-sim chat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your user name (you listen on channel PREFIX:USER).
    #[arg(long, required_unless_present = "auto")]
    user: Option<String>,
    /// Who you chat with (their name as they pass it to --user).
    #[arg(long, required_unless_present = "auto")]
    partner: Option<String>,
    /// How you rank the partner: decides which of their coins you cache and the dearest tier
    /// you send with.
    #[arg(long, value_enum, ignore_case = true, default_value = "BESTIE")]
    priority: PriorityArg,
    /// Run the BESTIE, MATE and STRANGER scenarios in one process with no services, check every
    /// outcome and exit 1 if any check fails.
    #[arg(long, conflicts_with_all = ["user", "partner", "redis", "server", "data_dir"])]
    auto: bool,
    /// The Redis server that carries the messages (pub/sub).
    #[arg(long, value_name = "URL", env = "AQM_PUBSUB_URL", default_value = "redis://127.0.0.1:6379")]
    pubsub: String,
    /// Channel prefix: both sides must use the same one (tests use a unique one per run).
    #[arg(long, default_value = "aqm:chat")]
    prefix: String,
    /// Where USER.redb (your device store) and directory.redb (the coin directory both sides
    /// share) live. Both terminals must pass the same directory. Default: aqm-chat in the
    /// system's temporary directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep your vault, sessions, pins and inventory on the Redis server at URL (under a
    /// prefix unique to this run, deleted when you quit) instead of USER.redb.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Use the coin directory of the aqm-server at URL instead of directory.redb.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

/// Entry point of the subcommand.
pub fn main(args: Args) -> ExitCode {
    if args.auto {
        return if auto::main() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    match interactive(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            anstream::eprintln!("{} {e}", "error:".red().bold());
            ExitCode::FAILURE
        }
    }
}

/// The first bytes of every redb file: only such a file is replaced when a chat starts afresh.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Open `{dir}/{user}.redb` afresh: an earlier run's file is deleted (its device key was never
/// stored, so nothing in it could be opened again), unless another chat holds it right now or
/// it is not a redb file.
fn fresh_device_store(dir: &Path, user: &str, policy: &Policy) -> Result<RedbStore, ChatError> {
    let path = dir.join(format!("{user}.redb"));
    let data_dir = |detail: String| ChatError::DataDir { path: path.clone(), detail };
    if path.exists() {
        let mut head = [0u8; REDB_MAGIC.len()];
        let is_redb = std::fs::File::open(&path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
            && head == REDB_MAGIC;
        if !is_redb {
            return Err(data_dir("exists and is not a redb file: move it away or pick another --data-dir".into()));
        }
        // Only the lock matters here (any other answer, e.g. a sealed file, means: delete it).
        match RedbStore::open_unsealed(&path, policy.clone()) {
            Err(aqm_storage_redb::Error::Open { source: redb::DatabaseError::DatabaseAlreadyOpen, .. }) => {
                return Err(data_dir(format!(
                    "another `aqm-sim chat --user {user}` is running with this data directory: quit it, or pick another --user or --data-dir"
                )));
            }
            _ => std::fs::remove_file(&path)
                .map_err(|e| data_dir(format!("cannot delete the earlier run's file: {e}")))?,
        }
    }
    // The file is new each run, like the session's device key: seal its metadata under a key of
    // this run.
    RedbStore::open(&path, policy.clone(), &DeviceKey::random(&mut rand::rng())).store("open the device store")
}

fn interactive(args: &Args) -> Result<(), ChatError> {
    let (Some(user), Some(partner)) = (args.user.as_deref(), args.partner.as_deref()) else {
        return Err(ChatError::Usage("pass --user and --partner (or --auto)".into()));
    };
    let policy = Policy::DEFAULT;
    // Reach Redis first: without pub/sub there is no chat, whatever else is set up.
    let mut pubsub = Pubsub::connect(&args.pubsub)?;
    let dir = args.data_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("aqm-chat"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ChatError::DataDir { path: dir.clone(), detail: format!("cannot create it: {e}") })?;
    match &args.server {
        Some(url) => {
            let unreachable = |detail: String| ChatError::ServerUnreachable { url: url.clone(), detail };
            let directory = HttpDirectory::new(url, policy.clone()).map_err(|e| unreachable(e.to_string()))?;
            let health = directory.health().map_err(|e| unreachable(e.to_string()))?;
            if !health.db_connected {
                return Err(unreachable("it reports its database unreachable".into()));
            }
            with_store(args, user, partner, &dir, &policy, &directory, url, &mut pubsub)
        }
        None => {
            let path = dir.join("directory.redb");
            let directory = SharedDirectory::open(&path, policy.clone()).directory("open the shared directory file")?;
            with_store(args, user, partner, &dir, &policy, &directory, &path.display().to_string(), &mut pubsub)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn with_store<D: DirectoryStore>(
    args: &Args,
    user: &str,
    partner: &str,
    dir: &Path,
    policy: &Policy,
    directory: &D,
    where_: &str,
    pubsub: &mut Pubsub,
) -> Result<(), ChatError> {
    match &args.redis {
        None => {
            let store = fresh_device_store(dir, user, policy)?;
            let here = format!("{}", dir.join(format!("{user}.redb")).display());
            chat(args, user, partner, &store, &here, directory, where_, pubsub)
        }
        Some(url) => {
            let run_id: u64 = rand::rng().random();
            let prefix = format!("aqm-chat-{run_id:016x}:{user}");
            // The run's store is deleted at its end: a fresh key seals its contact metadata.
            let sealing = aqm_storage_redis::Sealing::sealed(&aqm_core::crypto::DeviceKey::random(&mut rand::rng()));
            let store = RedisStore::connect(url, &prefix, policy.clone(), sealing).store("connect the Redis store")?;
            let here = format!("Redis {url} under {{{prefix}}}:*");
            let result = chat(args, user, partner, &store, &here, directory, where_, pubsub);
            match store.destroy_all() {
                Ok(n) => anstream::println!("removed this run's {n} Redis keys"),
                Err(e) => {
                    anstream::println!("could not remove this run's Redis keys ({e}); delete {{{prefix}}}:* by hand")
                }
            }
            result
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn chat<S: DeviceStore, D: DirectoryStore>(
    args: &Args,
    user: &str,
    partner: &str,
    store: &S,
    here: &str,
    directory: &D,
    where_: &str,
    pubsub: &mut Pubsub,
) -> Result<(), ChatError> {
    let mut rng = rand::rng();
    let priority = Priority::from(args.priority);
    let (mut session, started) = Session::start(user, partner, priority, store, directory, &mut rng)?;
    let ui = crate::ui::Ui;
    ui.title(format!("AQM chat: {user} → {partner} ({})", priority.as_str()));
    ui.info(format!(
        "you are {} (fresh identity for this run; its secrets are never stored or shown) · store: {here} · directory: {where_} · pub/sub: {} channel {}",
        session.user_id(),
        args.pubsub,
        transport::channel(&args.prefix, user)
    ));
    ui.info(format!("minted and uploaded {} of our coins to the directory", describe::counts(&started.minted)));
    prompt::run(&mut session, pubsub, &args.prefix)
}
