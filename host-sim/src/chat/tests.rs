//! Chat's lifecycle in-process: one test per check `--auto` makes, plus the pieces the
//! interactive chat adds (commands, context changes, errors).

use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redb::RedbStore;

use super::auto::{self, Check, Run};
use super::error::ChatError;
use super::prompt::Command;
use super::session::{Event, Place, Session};

fn run(priority: Priority) -> Run {
    auto::run(priority).expect("the scenario runs")
}

fn assert_holds(c: Check) {
    assert!(c.passed, "{}: {}", c.name, c.detail);
}

#[test]
fn bestie_delivers_and_burns() {
    assert_holds(auto::delivered(&run(Priority::Bestie)));
}

#[test]
fn bestie_uses_every_tier() {
    assert_holds(auto::every_tier(&run(Priority::Bestie)));
}

#[test]
fn bestie_falls_back_when_gold_runs_out() {
    assert_holds(auto::gold_runs_out(&run(Priority::Bestie)));
}

#[test]
fn bestie_replenishes_a_low_tier() {
    assert_holds(auto::replenished(&run(Priority::Bestie)));
}

#[test]
fn bestie_chain_rekeys_at_its_limit() {
    assert_holds(auto::chain_limit_rekeys(&run(Priority::Bestie)));
}

#[test]
fn mate_delivers_and_burns() {
    assert_holds(auto::delivered(&run(Priority::Mate)));
}

#[test]
fn mate_falls_back_from_gold() {
    assert_holds(auto::mate_falls_back_from_gold(&run(Priority::Mate)));
}

#[test]
fn mate_chain_rekeys_at_its_limit() {
    assert_holds(auto::chain_limit_rekeys(&run(Priority::Mate)));
}

#[test]
fn stranger_delivers_and_burns() {
    assert_holds(auto::delivered(&run(Priority::Stranger)));
}

#[test]
fn stranger_only_through_on_demand_fetch() {
    assert_holds(auto::stranger_on_demand_only(&run(Priority::Stranger)));
}

#[test]
fn stranger_chain_rekeys_at_its_limit() {
    assert_holds(auto::chain_limit_rekeys(&run(Priority::Stranger)));
}

/// The checks fail when their outcome is missing: a BESTIE run does not pass as a STRANGER's.
#[test]
fn checks_can_fail() {
    let bestie = run(Priority::Bestie);
    assert!(!auto::stranger_on_demand_only(&bestie).passed);
    assert!(!auto::mate_falls_back_from_gold(&bestie).passed);
    let mate = run(Priority::Mate);
    assert!(!auto::every_tier(&mate).passed);
    assert!(!auto::gold_runs_out(&mate).passed);
}

/// The summary counts what the checks saw: a STRANGER's chains are all BRONZE, fetched on demand.
#[test]
fn the_summary_counts_the_run() {
    let s = auto::summary(&run(Priority::Stranger));
    assert_eq!((s.chains.get(Tier::Gold), s.chains.get(Tier::Silver)), (0, 0));
    assert_eq!(s.on_demand as u32, s.chains.total());
    assert_eq!((s.fallbacks, s.replenished), (0, 0));
}

#[test]
fn commands_parse() {
    assert_eq!(Command::parse(" /wifi "), Command::Go(Place::Wifi));
    assert_eq!(Command::parse("/cell"), Command::Go(Place::Cell));
    assert_eq!(Command::parse("/underground"), Command::Go(Place::Underground));
    assert_eq!(Command::parse("/rekey"), Command::Rekey);
    assert_eq!(Command::parse("/quit"), Command::Quit);
    assert_eq!(Command::parse(""), Command::Empty);
    assert_eq!(Command::parse("/nope"), Command::Unknown("/nope".into()));
    assert_eq!(Command::parse("hello /wifi"), Command::Say("hello /wifi".into()));
}

/// Two sessions over one directory, met through their hellos.
fn pair<'a>(
    priority: Priority,
    stores: &'a (RedbStore, RedbStore, RedbStore),
) -> (Session<'a, RedbStore, RedbStore>, Session<'a, RedbStore, RedbStore>) {
    let mut rng = rand::rng();
    let (a, b, d) = stores;
    let (mut alice, _) = Session::start("alice", "bob", priority, a, d, &mut rng).unwrap();
    let (mut bob, _) = Session::start("bob", "alice", priority, b, d, &mut rng).unwrap();
    let Event::Met(_, Some(answer)) = alice.on_frame(&bob.hello(false), &mut rng).unwrap() else { panic!() };
    let Event::Met(_, None) = bob.on_frame(&answer, &mut rng).unwrap() else { panic!("a reply is never answered") };
    (alice, bob)
}

fn stores() -> (RedbStore, RedbStore, RedbStore) {
    let open = || RedbStore::in_memory(Policy::DEFAULT).unwrap();
    (open(), open(), open())
}

/// A move re-keys only when it changes the tiers a send may use.
#[test]
fn a_context_change_rekeys_only_when_the_range_changes() {
    let s = stores();
    let (mut alice, _) = pair(Priority::Bestie, &s);
    assert!(alice.set_place(Place::Cell).unwrap());
    assert!(!alice.set_place(Place::Cell).unwrap());
    let s = stores();
    let (mut stranger, _) = pair(Priority::Stranger, &s);
    assert!(!stranger.set_place(Place::Underground).unwrap(), "a STRANGER is BRONZE everywhere");
}

#[test]
fn a_message_before_the_partner_joined_is_refused() {
    let (a, _, d) = stores();
    let mut rng = rand::rng();
    let (mut alice, _) = Session::start("alice", "bob", Priority::Bestie, &a, &d, &mut rng).unwrap();
    let e = alice.send("anyone?", &mut rng).unwrap_err();
    assert!(matches!(e, ChatError::NotJoined { .. }), "{e}");
    assert!(e.to_string().contains("aqm-sim chat --user bob --partner alice"), "{e}");
}

/// When neither the inventory nor the directory has a coin of the range, nothing is sent and
/// the error says what to do.
#[test]
fn no_coin_anywhere_is_a_clear_error() {
    let s = stores();
    let (mut alice, _) = pair(Priority::Stranger, &s);
    let mut rng = rand::rng();
    // A STRANGER may claim 4 BRONZE coins a day (the anti-drain quota); each carries 5 messages.
    for i in 0..20 {
        alice.send(&format!("m{i}"), &mut rng).unwrap();
    }
    let e = alice.send("one too many", &mut rng).unwrap_err();
    assert!(matches!(e, ChatError::NoCoin { range, .. } if range.desired == Tier::Bronze), "{e}");
}

#[test]
fn a_hello_from_someone_else_is_ignored() {
    let (a, b, d) = stores();
    let mut rng = rand::rng();
    let (mut alice, _) = Session::start("alice", "bob", Priority::Bestie, &a, &d, &mut rng).unwrap();
    let (carol, _) = Session::start("carol", "alice", Priority::Bestie, &b, &d, &mut rng).unwrap();
    assert!(matches!(alice.on_frame(&carol.hello(false), &mut rng).unwrap(), Event::Ignored(_)));
    assert!(alice.partner().is_none());
}

#[test]
fn bad_names_are_refused() {
    let (a, _, d) = stores();
    for (user, partner) in [("alice", "alice"), ("../alice", "bob"), ("alice", ""), ("alice", "b:b")] {
        let e = Session::start(user, partner, Priority::Bestie, &a, &d, &mut rand::rng()).err().unwrap();
        assert!(matches!(e, ChatError::Usage(_)), "{user} {partner}: {e}");
    }
}
