//! The words the chat shows for each event: plain strings, shared by the interactive prompt and
//! the `--auto` report (and checked by tests), so both say the same thing about the same step.

use aqm_core::messaging::PrefetchReport;
use aqm_core::pins::Trust;
use aqm_core::vault::KeyStatus;
use aqm_core::{Priority, Tier, TierCounts};

use super::session::{CoinSource, Incoming, Met, Outgoing, short};

/// `G:5 S:4 B:1`.
pub fn counts(c: &TierCounts) -> String {
    format!("G:{} S:{} B:{}", c.get(Tier::Gold), c.get(Tier::Silver), c.get(Tier::Bronze))
}

/// The live counter of the prompt: the partner's coins in the inventory.
pub fn counter(held: &TierCounts) -> String {
    format!("[{}]", counts(held))
}

fn prefetch(what: &str, r: &PrefetchReport) -> String {
    let mut s = format!("{what}: asked the directory for {}, got {}", counts(&r.requested), counts(&r.stored));
    if r.rejected > 0 {
        s.push_str(&format!(", {} refused (forged, expired or over the cap)", r.rejected));
    }
    let short_of = Tier::ALL.iter().any(|t| r.stored.get(*t) < r.requested.get(*t));
    if short_of {
        s.push_str(" (the rest: none left there, or today's anti-drain quota is used up)");
    }
    s
}

/// Lines for the partner's arrival.
pub fn met(m: &Met, priority: Priority) -> Vec<String> {
    let p = &m.partner;
    let how = match p.trust {
        Trust::Directory => "identity pinned from the directory only: their messages show unverified".to_owned(),
        Trust::Exchanged => {
            "identity pinned from the contact exchange (their hello), checked against the directory".to_owned()
        }
        Trust::Verified => "identity verified".to_owned(),
    };
    let mut lines = vec![
        format!("{} joined as {} ({}): {how}", p.name, p.id, priority.as_str()),
        format!("safety number {} (compare it with {} out of band)", m.safety_number, p.name),
    ];
    if m.prefetch.requested.total() == 0 && m.held.total() == 0 {
        lines.push(format!(
            "nothing to pre-fetch: a {}'s caps are {}, so every chain to {} opens with a coin fetched on demand",
            priority.as_str(),
            counts(&m.prefetch.requested),
            p.name
        ));
    } else {
        lines.push(prefetch(&format!("pre-fetched {}'s coins", p.name), &m.prefetch));
    }
    lines
}

/// Lines for one message sent to `partner`.
pub fn outgoing(o: &Outgoing, partner: &str, priority: Priority) -> Vec<String> {
    let s = &o.sent;
    let pq = if s.post_quantum { "post-quantum" } else { "classical only" };
    let chain = short(&s.envelope.chain);
    let mut lines = Vec::new();
    if s.rekeyed {
        let from = match o.source {
            CoinSource::OnDemand => {
                let r = o.range;
                if r.desired == r.lowest {
                    format!("fetched on demand from the directory (no {} cached)", r.desired)
                } else {
                    format!(
                        "fetched on demand from the directory (nothing from {} down to {} cached)",
                        r.desired, r.lowest
                    )
                }
            }
            _ => "popped from the inventory".to_owned(),
        };
        lines.push(format!(
            "→ {partner}: {} re-key, new chain with coin {chain} {from} · {pq} · {} more before the next re-key · {} B",
            s.tier, s.remaining, o.envelope_len
        ));
    } else {
        lines.push(format!(
            "→ {partner}: {} chain {chain}, message {} · no KEM (amortized) · {pq} · {} more before the next re-key · {} B",
            s.tier,
            s.envelope.counter + 1,
            s.remaining,
            o.envelope_len
        ));
    }
    if s.rekeyed {
        if s.fell_back {
            lines.push(format!(
                "  wanted {} → used {} (no {} coin of {partner}'s cached)",
                s.desired, s.tier, s.desired
            ));
        } else if o.affordable != s.desired {
            lines.push(format!(
                "  wanted {} → used {} (the context affords {}; a {}'s ceiling is {})",
                o.affordable,
                s.tier,
                o.affordable,
                priority.as_str(),
                s.desired
            ));
        }
    }
    if let Some(r) = &o.replenished {
        lines.push(format!("  {}", prefetch("a tier ran low, replenished", r)));
    }
    lines
}

/// Lines for one message received.
pub fn incoming(i: &Incoming) -> Vec<String> {
    let mut lines = vec![format!("← {}: \"{}\"", i.from, i.text)];
    let pq = if i.tier == Tier::Bronze { "classical only" } else { "post-quantum" };
    if i.rekeyed {
        let status = match i.coin_status {
            Some(KeyStatus::Burned) => "BURNED",
            Some(KeyStatus::Active) => "still ACTIVE (unexpected)",
            None => "gone",
        };
        lines.push(format!(
            "  {} re-key · {pq}: {}'s signature verified, coin {} decapsulated, message decrypted, coin {status}",
            i.tier,
            i.from,
            short(&i.chain)
        ));
    } else {
        lines.push(format!(
            "  {} chain {}, message {} · {pq} · decrypted with no KEM",
            i.tier,
            short(&i.chain),
            i.counter + 1
        ));
    }
    if i.unverified {
        lines.push(format!("  unverified: {}'s identity came from the directory only", i.from));
    }
    if i.restocked.total() > 0 {
        lines.push(format!("  restocked our coins in the directory: minted {}", counts(&i.restocked)));
    }
    lines
}
