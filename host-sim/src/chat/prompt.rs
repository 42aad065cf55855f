//! The interactive chat: one loop over three sources — lines typed on stdin, frames from the
//! partner (Redis pub/sub, on a thread of its own) — that drives one [`Session`] and redraws
//! the prompt with the live coin counter after each event.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc;
use std::thread;

use aqm_core::store::DirectoryStore;
use owo_colors::OwoColorize;

use super::describe;
use super::error::ChatError;
use super::session::{DeviceStore, Event, Place, Session};
use super::transport::{Delivery, Pubsub, channel};

/// What the loop waits on.
enum Input {
    /// A line typed.
    Line(String),
    /// Stdin closed (Ctrl-D, or the end of piped input).
    Eof,
    /// Something from the pub/sub thread.
    Delivery(Delivery),
}

impl From<Delivery> for Input {
    fn from(d: Delivery) -> Self {
        Input::Delivery(d)
    }
}

/// A command typed at the prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Move to a place.
    Go(Place),
    /// Open a new chain with the next message.
    Rekey,
    /// Show the counters.
    Status,
    /// Show the commands.
    Help,
    /// Leave.
    Quit,
    /// Send this text.
    Say(String),
    /// Nothing typed.
    Empty,
    /// A slash command we do not know.
    Unknown(String),
}

impl Command {
    /// Parse one typed line.
    pub fn parse(line: &str) -> Command {
        let line = line.trim();
        match line {
            "" => Command::Empty,
            "/wifi" => Command::Go(Place::Wifi),
            "/cell" => Command::Go(Place::Cell),
            "/underground" => Command::Go(Place::Underground),
            "/rekey" => Command::Rekey,
            "/status" => Command::Status,
            "/help" | "/?" => Command::Help,
            "/quit" | "/exit" => Command::Quit,
            other if other.starts_with('/') => Command::Unknown(other.to_owned()),
            other => Command::Say(other.to_owned()),
        }
    }
}

const HELP: &str = "type a message and press Enter to send it · /wifi /cell /underground change the device context · \
                    /rekey opens a new chain with the next message · /status · /quit";

/// Writes lines above the prompt.
struct Screen {
    tty: bool,
}

impl Screen {
    /// Print lines, first wiping the prompt the cursor sits after (on a terminal).
    fn lines(&self, lines: &[String]) {
        if self.tty {
            // Straight to the terminal: anstream would strip this "erase line" under NO_COLOR,
            // leaving the end of a long prompt behind a short line.
            let mut raw = std::io::stdout();
            let _ = raw.write_all(b"\r\x1b[2K");
        }
        let mut out = anstream::stdout();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }

    fn info(&self, text: impl std::fmt::Display) {
        self.lines(&[format!("{}", text.dimmed())]);
    }

    fn error(&self, e: &ChatError) {
        self.lines(&[format!("{} {e}", "error:".red().bold())]);
    }

    fn prompt(&self, text: &str) {
        let mut out = anstream::stdout();
        let _ = write!(out, "{}", text.bold());
        let _ = out.flush();
    }
}

fn prompt_text<S: DeviceStore, D: DirectoryStore>(s: &Session<'_, S, D>) -> Result<String, ChatError> {
    Ok(format!("{} {}@{}> ", describe::counter(&s.held()?), s.name(), s.place().name()))
}

/// Run the chat of `session` until `/quit` or the end of stdin.
pub fn run<S: DeviceStore, D: DirectoryStore>(
    session: &mut Session<'_, S, D>,
    pubsub: &mut Pubsub,
    prefix: &str,
) -> Result<(), ChatError> {
    let screen = Screen { tty: std::io::stdout().is_terminal() };
    let mut rng = rand::rng();
    let (tx, rx) = mpsc::channel::<Input>();
    pubsub.listen(&channel(prefix, session.name()), tx.clone())?;
    let to_partner = channel(prefix, session.partner_name());
    thread::Builder::new()
        .name("chat-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Input::Line(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::Eof);
        })
        .map_err(|e| ChatError::Usage(format!("cannot start the input thread: {e}")))?;

    let listening = pubsub.publish(&to_partner, &session.hello(false))?;
    if listening == 0 {
        screen.info(format!(
            "waiting for {p}: start `aqm-sim chat --user {p} --partner {me}` in another terminal",
            p = session.partner_name(),
            me = session.name()
        ));
    }
    screen.info(HELP);
    screen.prompt(&prompt_text(session)?);

    while let Ok(input) = rx.recv() {
        match input {
            Input::Eof => break,
            Input::Line(line) => match Command::parse(&line) {
                Command::Quit => break,
                Command::Empty => {}
                Command::Help => screen.info(HELP),
                Command::Unknown(c) => screen.info(format!("unknown command {c}; {HELP}")),
                Command::Rekey => {
                    session.rekey_next();
                    screen.info("the next message opens a new chain");
                }
                Command::Go(place) => match session.set_place(place) {
                    Ok(changed) => {
                        let ctx = place.context();
                        let what = if changed {
                            "the next message re-keys to what this context affords"
                        } else {
                            "the tiers a send may use are unchanged: the open chain carries on"
                        };
                        screen.info(format!(
                            "now {}: battery {}%, {}, signal {} dBm → affords {}; {what}",
                            place.name(),
                            ctx.battery_pct,
                            if ctx.wifi { "Wi-Fi" } else { "no Wi-Fi" },
                            ctx.signal_dbm,
                            ctx.affordable_tier()
                        ));
                    }
                    Err(e) => screen.error(&e),
                },
                Command::Status => match status(session) {
                    Ok(lines) => screen.lines(&lines),
                    Err(e) => screen.error(&e),
                },
                Command::Say(text) => match session.send(&text, &mut rng) {
                    Ok(out) => {
                        let delivered = pubsub.publish(&to_partner, &out.frame)?;
                        let mut lines = describe::outgoing(&out, session.partner_name(), session.priority());
                        if delivered == 0 {
                            lines.push(format!("  {} is not listening: this message is lost", session.partner_name()));
                        }
                        screen.lines(&lines);
                    }
                    Err(e) => screen.error(&e),
                },
            },
            Input::Delivery(Delivery::Lost(detail)) => {
                return Err(ChatError::Transport { url: pubsub.url().to_owned(), detail });
            }
            Input::Delivery(Delivery::Frame(bytes)) => match session.on_frame(&bytes, &mut rng) {
                Ok(Event::Met(met, answer)) => {
                    screen.lines(&describe::met(&met, session.priority()));
                    if let Some(hello) = answer {
                        pubsub.publish(&to_partner, &hello)?;
                    }
                }
                Ok(Event::Message(i)) => screen.lines(&describe::incoming(&i)),
                Ok(Event::Left(name)) => screen.info(format!("{name} left the chat")),
                Ok(Event::Ignored(why)) => screen.info(format!("ignored {why}")),
                Err(e) => screen.error(&e),
            },
        }
        screen.prompt(&prompt_text(session)?);
    }
    pubsub.publish(&to_partner, &session.bye())?;
    screen.lines(&["bye".to_owned()]);
    Ok(())
}

/// `/status`: where we are and what we hold.
fn status<S: DeviceStore, D: DirectoryStore>(s: &Session<'_, S, D>) -> Result<Vec<String>, ChatError> {
    let ctx = s.place().context();
    let mut lines = vec![format!(
        "{} at {} (affords {}); {} ranked {}",
        s.name(),
        s.place().name(),
        ctx.affordable_tier(),
        s.partner_name(),
        s.priority().as_str()
    )];
    match s.partner() {
        Some(p) => lines.push(format!("inventory of {}'s coins: {}", p.name, describe::counts(&s.held()?))),
        None => lines.push(format!("{} has not joined yet", s.partner_name())),
    }
    let v = s.vault_stats()?;
    lines.push(format!("our vault: {} ACTIVE, {} burned", describe::counts(&v.active), v.total_burned));
    Ok(lines)
}
