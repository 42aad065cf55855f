//! Shared helpers of the `kat_*` known-answer tests: vector loading, hex, a fixed-output RNG and
//! per-result counters that print themselves and fail on zero.
#![allow(dead_code)] // each kat_* test uses its own subset

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;

use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

/// Parse `core/tests/vectors/<name>`.
pub fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Decode a hex string (either case).
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

/// A hex field of a JSON object.
pub fn field(v: &Value, name: &str) -> Vec<u8> {
    hex(v[name].as_str().unwrap_or_else(|| panic!("field {name} missing in {v}")))
}

/// Optional hex field (absent → `None`).
pub fn opt_field(v: &Value, name: &str) -> Option<Vec<u8>> {
    v.get(name).and_then(Value::as_str).map(hex)
}

/// Iterate `(group, test)` over a Wycheproof file.
pub fn wycheproof_tests(file: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    file["testGroups"]
        .as_array()
        .expect("testGroups")
        .iter()
        .flat_map(|g| g["tests"].as_array().expect("tests").iter().map(move |t| (g, t)))
}

/// Test id and comment, for failure messages.
pub fn id(t: &Value) -> String {
    format!("tcId {} ({})", t["tcId"], t["comment"].as_str().unwrap_or(""))
}

/// Whether a Wycheproof test carries `flag`.
pub fn has_flag(t: &Value, flag: &str) -> bool {
    t["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == flag))
}

/// An RNG that hands out exactly the given bytes, in order, and panics when asked for more:
/// a KAT's fixed randomness fed through the wrappers' `CryptoRng` parameter.
pub struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    pub fn new(bytes: &[u8]) -> Self {
        FixedRng { bytes: bytes.to_vec(), pos: 0 }
    }
    /// All bytes were consumed.
    pub fn is_drained(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let end = self.pos + dst.len();
        assert!(
            end <= self.bytes.len(),
            "FixedRng: asked for {} bytes, {} left",
            dst.len(),
            self.bytes.len() - self.pos
        );
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

impl TryCryptoRng for FixedRng {}

/// Vectors run, per expected result (`valid` / `invalid` / `acceptable`, or a test's own
/// category), and vectors skipped with the reason. Printed by [`Counts::finish`], which fails
/// when nothing ran.
#[derive(Default)]
pub struct Counts {
    name: &'static str,
    ran: BTreeMap<String, usize>,
    skipped: BTreeMap<&'static str, usize>,
}

impl Counts {
    pub fn new(name: &'static str) -> Self {
        Counts { name, ..Default::default() }
    }
    pub fn ran(&mut self, result: &str) {
        *self.ran.entry(result.to_string()).or_default() += 1;
    }
    pub fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }
    pub fn get(&self, result: &str) -> usize {
        self.ran.get(result).copied().unwrap_or(0)
    }
    /// Print the counts; fail if no vector ran, or if any of `required` results ran none.
    pub fn finish(self, required: &[&str]) {
        let total: usize = self.ran.values().sum();
        let ran: Vec<String> = self.ran.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let skipped: Vec<String> = self.skipped.iter().map(|(k, v)| format!("{v} ({k})")).collect();
        println!(
            "KAT {}: ran {total}: {}{}",
            self.name,
            ran.join(", "),
            if skipped.is_empty() { String::new() } else { format!("; skipped {}", skipped.join(", ")) }
        );
        assert!(total > 0, "KAT {}: no vector ran", self.name);
        for r in required {
            assert!(self.get(r) > 0, "KAT {}: no `{r}` vector ran", self.name);
        }
    }
}
