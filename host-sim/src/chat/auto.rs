//! `aqm-sim chat --auto`: the three priority scenarios in one process with no services — each
//! user on an in-memory redb store, the directory an in-memory redb store, the frames carried by
//! an in-process queue — through the same [`Session`] code as the interactive chat, then a check
//! of every outcome the issue names.
//!
//! Every scenario plays one script (alice writes, bob answers, alice moves from Wi-Fi to cellular
//! to the underground and back); the checks read what the core did: the tier of every chain, the
//! fallback, where each coin came from, replenishment, the chain limit's re-key, each burn.

use std::collections::VecDeque;

use aqm_core::{Policy, Priority, Tier, TierCounts};
use aqm_storage_redb::RedbStore;

use super::describe;
use super::error::{ChatError, Ctx};
use super::session::{CoinSource, Event, Incoming, Met, Outgoing, Place, Session};

/// One thing the script does.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Alice moves.
    Go(Place),
    /// Alice asks for a new chain.
    Rekey,
    /// Alice writes to bob.
    Say(&'static str),
    /// Bob writes to alice.
    Reply(&'static str),
}

/// The script of one scenario. Alice re-keys at home until her GOLD coins run out only as a
/// BESTIE: a MATE or STRANGER has no GOLD to exhaust, and a STRANGER's directory quota (BRONZE 4
/// a day) is kept for the chain limit's re-keys.
fn script(priority: Priority) -> Vec<Action> {
    use Action::*;
    let mut s = vec![
        Say("Hi Bob, at home on Wi-Fi."),
        Say("Same chain, no KEM needed."),
        Reply("Hi Alice!"),
        Go(Place::Cell),
        Say("On the bus now."),
        Go(Place::Underground),
        Say("Tunnel 1"),
        Say("Tunnel 2"),
        Say("Tunnel 3"),
        Say("Tunnel 4"),
        Say("Tunnel 5"),
        Say("Tunnel 6"),
        Reply("See you soon."),
        Go(Place::Wifi),
        Say("Home again."),
    ];
    let rekeys = match priority {
        Priority::Bestie => 4,
        Priority::Mate => 1,
        Priority::Stranger => 0,
    };
    for text in ["Re-key 1", "Re-key 2", "Re-key 3", "Re-key 4"].into_iter().take(rekeys) {
        s.push(Rekey);
        s.push(Say(text));
    }
    s
}

/// One message of a run, as both ends saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Whether alice sent it (else bob).
    pub by_alice: bool,
    /// The sender's place.
    pub place: Place,
    /// Whether the script asked for a new chain (a context change that changed the tier
    /// range, or `/rekey`) — a re-key that was not asked for is the chain limit's.
    pub asked_rekey: bool,
    /// The plaintext.
    pub text: &'static str,
    /// The sender's account.
    pub out: Outgoing,
    /// The receiver's account.
    pub got: Incoming,
}

/// Everything one scenario did.
#[derive(Clone, Debug)]
pub struct Run {
    /// How each ranks the other.
    pub priority: Priority,
    /// Alice meeting bob (her pre-fetch of his coins).
    pub alice_met: Met,
    /// Bob meeting alice.
    pub bob_met: Met,
    /// Every message, in order.
    pub exchanges: Vec<Exchange>,
    /// Coins bob's vault burned in total.
    pub bob_burned: u64,
}

/// The in-process transport: frames in publication order, each for one user.
#[derive(Default)]
struct Wire(VecDeque<(bool, Vec<u8>)>);

impl Wire {
    fn publish(&mut self, to_alice: bool, frame: Vec<u8>) {
        self.0.push_back((to_alice, frame));
    }
}

/// Play the script for `priority`.
pub fn run(priority: Priority) -> Result<Run, ChatError> {
    let policy = Policy::DEFAULT;
    let mut rng = rand::rng();
    let open = |what| RedbStore::in_memory(policy.clone()).store(what);
    let directory = open("open the in-process directory")?;
    let (alice_store, bob_store) = (open("open alice's store")?, open("open bob's store")?);
    let (mut alice, _) = Session::start("alice", "bob", priority, &alice_store, &directory, &mut rng)?;
    let (mut bob, _) = Session::start("bob", "alice", priority, &bob_store, &directory, &mut rng)?;

    // The handshake as two processes do it: alice's hello went out before bob listened, so it
    // is bob's hello that alice answers.
    let mut wire = Wire::default();
    wire.publish(true, bob.hello(false));
    let (mut alice_met, mut bob_met) = (None, None);
    while let Some((to_alice, frame)) = wire.0.pop_front() {
        let (who, met) = if to_alice { (&mut alice, &mut alice_met) } else { (&mut bob, &mut bob_met) };
        if let Event::Met(m, answer) = who.on_frame(&frame, &mut rng)? {
            *met = Some(m);
            if let Some(a) = answer {
                wire.publish(!to_alice, a);
            }
        }
    }
    let (Some(alice_met), Some(bob_met)) = (alice_met, bob_met) else {
        return Err(ChatError::Usage("the hello handshake did not complete".into()));
    };

    let mut exchanges = Vec::new();
    let mut asked = false;
    for action in script(priority) {
        match action {
            Action::Go(place) => asked |= alice.set_place(place)?,
            Action::Rekey => {
                alice.rekey_next();
                asked = true;
            }
            Action::Say(text) | Action::Reply(text) => {
                let by_alice = matches!(action, Action::Say(_));
                let (from, to) = if by_alice { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
                let out = from.send(text, &mut rng)?;
                let place = from.place();
                let got = match to.on_frame(&out.frame, &mut rng)? {
                    Event::Message(i) => i,
                    other => return Err(ChatError::Usage(format!("expected a message, got {other:?}"))),
                };
                exchanges.push(Exchange { by_alice, place, asked_rekey: by_alice && asked, text, out, got });
                if by_alice {
                    asked = false;
                }
            }
        }
    }
    let bob_burned = bob.vault_stats()?.total_burned;
    Ok(Run { priority, alice_met, bob_met, exchanges, bob_burned })
}

/// The verdict on one outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check { name, passed, detail }
}

fn alice_sends(run: &Run) -> impl Iterator<Item = &Exchange> {
    run.exchanges.iter().filter(|e| e.by_alice)
}

/// Every message opened on the other side to its own text; every re-key burned its coin.
pub fn delivered(run: &Run) -> Check {
    let bad: Vec<_> = run
        .exchanges
        .iter()
        .filter(|e| {
            e.got.text != e.text
                || e.got.rekeyed != e.out.sent.rekeyed
                || e.got.tier != e.out.sent.tier
                || (e.got.rekeyed && e.got.coin_status != Some(aqm_core::vault::KeyStatus::Burned))
        })
        .map(|e| e.text)
        .collect();
    let rekeys = run.exchanges.iter().filter(|e| e.got.rekeyed).count();
    check(
        "every message decrypts on the other side and every coin burns as it opens",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} messages both ways, {rekeys} re-keys, {rekeys} coins burned", run.exchanges.len())
        } else {
            format!("wrong outcome for {bad:?}")
        },
    )
}

/// BESTIE: the first chain at each place is GOLD on Wi-Fi, SILVER on cellular, BRONZE
/// underground, each from a pre-fetched coin.
pub fn every_tier(run: &Run) -> Check {
    let first = |p: Place| {
        alice_sends(run).find(|e| e.place == p && e.out.sent.rekeyed).map(|e| (e.out.sent.tier, e.out.source))
    };
    let got = [first(Place::Wifi), first(Place::Cell), first(Place::Underground)];
    let want = [Tier::Gold, Tier::Silver, Tier::Bronze].map(|t| Some((t, CoinSource::Inventory)));
    check(
        "BESTIE uses every tier: GOLD on Wi-Fi, SILVER on cellular, BRONZE underground",
        got == want,
        format!("first chain per place (wifi, cell, underground): {got:?}"),
    )
}

/// BESTIE: at home, once the GOLD coins are used up (the directory's anti-drain quota allows no
/// more today), a send that wants GOLD falls back to SILVER, still post-quantum.
pub fn gold_runs_out(run: &Run) -> Check {
    let fell = alice_sends(run).find(|e| e.out.sent.fell_back);
    let passed = fell.is_some_and(|e| {
        let s = &e.out.sent;
        (s.desired, s.tier, s.post_quantum, e.out.held.get(Tier::Gold)) == (Tier::Gold, Tier::Silver, true, 0)
    });
    check(
        "BESTIE falls back GOLD → SILVER when the GOLD coins run out",
        passed,
        match fell {
            Some(e) => format!("\"{}\": wanted {} → used {}", e.text, e.out.sent.desired, e.out.sent.tier),
            None => "no send fell back".into(),
        },
    )
}

/// A tier that ran low was topped up from the directory by a pre-fetch.
pub fn replenished(run: &Run) -> Check {
    let r = alice_sends(run).find_map(|e| e.out.replenished.filter(|r| r.stored.total() > 0).map(|r| (e.text, r)));
    check(
        "a tier that runs low is replenished from the directory",
        r.is_some(),
        match r {
            Some((text, r)) => format!(
                "after \"{text}\": asked {}, got {}",
                describe::counts(&r.requested),
                describe::counts(&r.stored)
            ),
            None => "no replenishment stored a coin".into(),
        },
    )
}

/// A chain that reached its limit re-keyed by itself (no context change, no `/rekey`).
pub fn chain_limit_rekeys(run: &Run) -> Check {
    // The first message opens the first chain: it is no limit's doing.
    let e = alice_sends(run).skip(1).find(|e| e.out.sent.rekeyed && !e.asked_rekey);
    let limit = e.map(|e| Policy::DEFAULT.ratchet_limit(e.out.sent.tier));
    check(
        "a chain re-keys by itself at its limit",
        e.is_some(),
        match (e, limit) {
            (Some(e), Some(l)) => {
                format!("\"{}\" opened a new {} chain after {l} messages on the last one", e.text, e.out.sent.tier)
            }
            _ => "no unrequested re-key".into(),
        },
    )
}

/// MATE: the context affords GOLD at home, but a MATE is sent SILVER and no GOLD is cached.
pub fn mate_falls_back_from_gold(run: &Run) -> Check {
    let e = alice_sends(run).find(|e| e.place == Place::Wifi && e.out.sent.rekeyed);
    let passed = e.is_some_and(|e| {
        (e.out.affordable, e.out.sent.desired, e.out.sent.tier) == (Tier::Gold, Tier::Silver, Tier::Silver)
    }) && run.alice_met.held.get(Tier::Gold) == 0
        && alice_sends(run).all(|e| e.out.sent.tier != Tier::Gold);
    check(
        "MATE falls back from GOLD: the context wants GOLD, a MATE gets SILVER (no GOLD cached)",
        passed,
        match e {
            Some(e) => format!(
                "at home: wanted {} → used {}; pre-fetched {}",
                e.out.affordable,
                e.out.sent.tier,
                describe::counts(&run.alice_met.held)
            ),
            None => "no chain opened at home".into(),
        },
    )
}

/// STRANGER: nothing is ever cached; every chain opens with a coin fetched on demand; the
/// receiver shows the messages unverified.
pub fn stranger_on_demand_only(run: &Run) -> Check {
    let rekeys: Vec<_> = alice_sends(run).filter(|e| e.out.sent.rekeyed).collect();
    let passed = run.alice_met.prefetch.requested.total() == 0
        && alice_sends(run).all(|e| e.out.held.total() == 0)
        && rekeys.len() >= 2
        && rekeys.iter().all(|e| e.out.source == CoinSource::OnDemand && e.out.sent.tier == Tier::Bronze)
        && alice_sends(run).all(|e| e.got.unverified)
        && run.bob_met.partner.trust == aqm_core::pins::Trust::Directory;
    check(
        "STRANGER reaches the partner only through on-demand fetch",
        passed,
        format!(
            "pre-fetch asked {}; {} chains, sources {:?}; inventory always empty: {}; shown unverified: {}",
            describe::counts(&run.alice_met.prefetch.requested),
            rekeys.len(),
            rekeys.iter().map(|e| e.out.source).collect::<Vec<_>>(),
            alice_sends(run).all(|e| e.out.held.total() == 0),
            alice_sends(run).all(|e| e.got.unverified)
        ),
    )
}

/// The checks of one scenario.
pub fn checks(run: &Run) -> Vec<Check> {
    let mut c = vec![delivered(run)];
    match run.priority {
        Priority::Bestie => c.extend([every_tier(run), gold_runs_out(run), replenished(run), chain_limit_rekeys(run)]),
        Priority::Mate => c.extend([mate_falls_back_from_gold(run), chain_limit_rekeys(run)]),
        Priority::Stranger => c.extend([stranger_on_demand_only(run), chain_limit_rekeys(run)]),
    }
    c
}

/// What one scenario cost, counted from its messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages, both ways.
    pub messages: usize,
    /// Chains opened (one KEM each) per tier.
    pub chains: TierCounts,
    /// Re-keys whose coin was of a cheaper tier than wanted.
    pub fallbacks: usize,
    /// Coins fetched on demand.
    pub on_demand: usize,
    /// Coins a replenishing pre-fetch stored.
    pub replenished: u32,
}

/// Count `run`'s messages.
pub fn summary(run: &Run) -> Summary {
    let mut s = Summary { messages: run.exchanges.len(), ..Summary::default() };
    for e in &run.exchanges {
        let sent = &e.out.sent;
        if sent.rekeyed {
            *s.chains.get_mut(sent.tier) += 1;
        }
        s.fallbacks += usize::from(sent.fell_back);
        s.on_demand += usize::from(e.out.source == CoinSource::OnDemand);
        s.replenished += e.out.replenished.map_or(0, |r| r.stored.total());
    }
    s
}

/// Run the three scenarios, print the conversation and the checks; true if every check held.
pub fn main() -> bool {
    use owo_colors::OwoColorize;
    let ui = crate::ui::Ui;
    ui.title("AQM chat --auto: alice and bob in one process, all three priorities, no services");
    ui.info("in-memory redb stores, an in-process directory and transport; fresh identities per scenario");
    let (mut passed, mut total) = (0, 0);
    let mut summaries = Vec::new();
    for (n, priority) in Priority::ALL.into_iter().enumerate() {
        ui.phase(
            n as u8 + 1,
            3,
            priority.as_str(),
            "each ranks the other so; alice moves wifi → cell → underground → wifi",
        );
        let run = match run(priority) {
            Ok(r) => r,
            Err(e) => {
                ui.fail("the scenario stopped", e);
                total += 1;
                continue;
            }
        };
        for line in describe::met(&run.alice_met, priority) {
            ui.info(format!("alice: {line}"));
        }
        for e in &run.exchanges {
            let (who, partner) = if e.by_alice { ("alice", "bob") } else { ("bob", "alice") };
            let mut lines = describe::outgoing(&e.out, partner, priority);
            lines.extend(describe::incoming(&e.got));
            ui.note(format!("{} {}", format!("{who}@{}", e.place.name()).bold(), lines[0]));
            for l in &lines[1..] {
                ui.info(l.trim_start());
            }
        }
        ui.info(format!("bob's vault burned {} coins", run.bob_burned));
        summaries.push((priority, summary(&run)));
        for c in checks(&run) {
            total += 1;
            if c.passed {
                passed += 1;
                ui.ok(format!("{}: {}", c.name, c.detail));
            } else {
                ui.fail(c.name, c.detail);
            }
        }
    }
    ui.phase(4, 4, "SUMMARY", "what each scenario cost");
    ui.note(format!(
        "{:<9} {:>8} {:>6} {:>13} {:>9} {:>9} {:>11}",
        "priority", "messages", "KEMs", "chains G/S/B", "KEM/msg", "fallback", "on-demand"
    ));
    for (p, s) in &summaries {
        let kems = s.chains.total();
        ui.note(format!(
            "{:<9} {:>8} {:>6} {:>13} {:>9.2} {:>9} {:>11}",
            p.as_str(),
            s.messages,
            kems,
            format!("{}/{}/{}", s.chains.get(Tier::Gold), s.chains.get(Tier::Silver), s.chains.get(Tier::Bronze)),
            f64::from(kems) / s.messages.max(1) as f64,
            s.fallbacks,
            s.on_demand
        ));
    }
    let ok = passed == total;
    ui.verdict(ok, format!("{passed} of {total} checks held across BESTIE, MATE and STRANGER"));
    ok
}
