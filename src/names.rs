//! Which model field a name denotes: one rule for every way a name arrives.
//!
//! CRMs re-case and re-space field names between an export and an integration (`Lead Source`,
//! `lead source`, `LEAD  SOURCE`). If a CSV header and a gRPC map key were matched by different
//! rules, the same lead would get one probability from `leadscore score` and another from the
//! server. So every path that matches a name against a model goes through [`FieldIndex`]: CSV
//! headers (`data::Table::attribute_columns`, used by `score` and the `evaluate` backtest), gRPC
//! map keys (`server::service`), and any later API.
//!
//! **The rule: two names denote the same field when they are equal after trimming, folding
//! case (Unicode lower-case) and collapsing each inner run of white space to one space.**
//!
//! - A key spelled exactly like a model field denotes that field; any other key denotes the
//!   field whose folded name equals its own (if a model has two such fields, which only a
//!   training file with two such columns produces, the first).
//! - Two different keys of one record that denote the same field are refused ([`Claims`] finds
//!   them): the record says two things about one field, and picking one would be a guess. So is
//!   a record none of whose keys denotes a field ([`Claims::none`]): it would get the average
//!   lead's score for a lead nobody described.
//!
//! Category *values* fold the same way (`schema::normalise_category`), but that is a separate
//! rule on purpose: levels are stored folded in `model.json`, so changing how values fold
//! changes what stored models mean, while field names are stored as spelled and this rule can
//! change without touching any model. Neither module depends on the other.

use hashbrown::HashTable;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// The characters of `name` under the rule: trimmed, lower-cased, inner white space runs as one
/// space. An iterator, so names compare and hash without allocating.
fn folded(name: &str) -> impl Iterator<Item = char> + '_ {
    name.split_whitespace().enumerate().flat_map(|(i, word)| {
        (i > 0)
            .then_some(' ')
            .into_iter()
            .chain(word.chars().flat_map(char::to_lowercase))
    })
}

/// `name` under the rule, e.g. `"  Lead   SOURCE "` → `"lead source"`.
pub fn normalise(name: &str) -> String {
    folded(name).collect()
}

/// Whether `a` and `b` denote the same field.
pub fn same(a: &str, b: &str) -> bool {
    a == b || folded(a).eq(folded(b))
}

/// Hash of a name's folded form (equal for any two names [`same`] accepts): the hash of the
/// folded form's UTF-8 bytes, written into a stack buffer so that the common case allocates
/// nothing. It runs for every key a request spells differently from the model, which includes
/// every field the model does not use (a CRM sends its whole record: 15 of 35 fields in the
/// X Education benchmark), so it is on the serving hot path; char-by-char hashing here cost
/// ~3 µs per call there.
fn folded_hash(name: &str) -> u64 {
    let mut buf = [0u8; 128];
    match fold_into(name, &mut buf) {
        Some(len) => FastHash::default().hash_one(&buf[..len]),
        None => FastHash::default().hash_one(normalise(name).as_bytes()),
    }
}

/// Writes `name`'s folded form into `buf` and returns its length, or `None` if it does not fit.
/// An ASCII name whose only inner white space is single spaces (nearly every field name) folds
/// in one lower-casing copy; any other goes through [`folded`].
fn fold_into(name: &str, buf: &mut [u8; 128]) -> Option<usize> {
    // `str::trim` trims what `char::is_whitespace` calls white space, as `folded` splits on.
    let trimmed = name.trim().as_bytes();
    let len = trimmed.len();
    let plain = name.is_ascii()
        && !trimmed.iter().any(|&b| matches!(b, b'\t'..=b'\r'))
        && !trimmed.windows(2).any(|pair| pair == b"  ");
    if plain {
        for (out, byte) in buf.get_mut(..len)?.iter_mut().zip(trimmed) {
            *out = byte.to_ascii_lowercase();
        }
        return Some(len);
    }
    let mut len = 0;
    for c in folded(name) {
        let mut utf8 = [0u8; 4];
        for &byte in c.encode_utf8(&mut utf8).as_bytes() {
            *buf.get_mut(len)? = byte;
            len += 1;
        }
    }
    Some(len)
}

/// foldhash's fast, fixed-seed hasher: the keys are the model's own names (clients only look
/// up), so no client can add colliding entries and a keyed hash would only cost time.
type FastHash = foldhash::fast::FixedState;

/// A model's field names → attribute index, built once per loaded model.
#[derive(Debug, Clone)]
pub struct FieldIndex {
    /// Hashes every key looked up, once: the exact table and the thread's [`UNMATCHED`] cache
    /// share the hash, so a key the model does not use costs one hash, not two. Seeded per
    /// index, as clients choose the keys that go into the cache.
    hasher: KeyHash,
    /// Exact spelling → attribute. The hot path: a correctly spelled key costs one hash of its
    /// bytes and no allocation. Bytes, so the gRPC reader can look a key up before (and instead
    /// of) checking that it is UTF-8.
    exact: HashTable<(Box<[u8]>, usize)>,
    /// Hash of the folded name → the attributes with that hash, lowest index first: any other
    /// spelling is found here, hashed and compared on the fly, still without allocating. A fast
    /// fixed-seed hash: the names are the model's own (clients only look up), so no client can
    /// add colliding entries.
    folded: HashMap<u64, Vec<usize>, FastHash>,
    /// The names as the model spells them, in attribute order, for lookups and messages.
    names: Vec<String>,
    /// Tells this index's entries in a thread's [`UNMATCHED`] cache from another index's.
    id: u64,
}

/// A key's hash under its index's seeded hasher, from [`FieldIndex::get_exact`]'s miss, for
/// [`FieldIndex::get_folded`] to look the key up in the cache of unmatched keys without
/// hashing it again.
#[derive(Debug, Clone, Copy)]
pub struct KeyHashed(u64);

/// The hash of client keys: seeded, as clients choose what goes in the unmatched cache.
type KeyHash = foldhash::fast::RandomState;

/// Where [`FieldIndex`] ids come from.
static NEXT_INDEX_ID: AtomicU64 = AtomicU64::new(0);

/// At most this many unmatched keys are remembered per thread, each of at most
/// [`MAX_UNMATCHED_KEY_BYTES`]: a client sending endless new names costs folding, not memory.
const MAX_UNMATCHED_KEYS: usize = 1024;
const MAX_UNMATCHED_KEY_BYTES: usize = 256;

thread_local! {
    /// Keys this thread found to denote no field of the index whose id is `.0`. A CRM sends its
    /// whole record on every call, so the same unused names come again and again (15 of 35 in
    /// the X Education benchmark); remembering them makes each one cost a probe with the hash
    /// the exact table already computed, instead of a fold (about 550 instructions each, 5% of
    /// a call). Per thread, so it needs no lock.
    static UNMATCHED: RefCell<(u64, HashTable<Box<[u8]>>)> =
        const { RefCell::new((u64::MAX, HashTable::new())) };
}

impl FieldIndex {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> FieldIndex {
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        let hasher = KeyHash::default();
        let mut exact: HashTable<(Box<[u8]>, usize)> = HashTable::new();
        let mut folded: HashMap<u64, Vec<usize>, FastHash> = HashMap::default();
        for (i, name) in names.iter().enumerate() {
            let key = name.as_bytes();
            let hash = hasher.hash_one(key);
            // The first of two identical names keeps the spelling.
            if exact.find(hash, |(k, _)| **k == *key).is_none() {
                exact.insert_unique(hash, (key.into(), i), |(k, _)| hasher.hash_one(&**k));
            }
            folded.entry(folded_hash(name)).or_default().push(i);
        }
        FieldIndex {
            hasher,
            exact,
            folded,
            names,
            id: NEXT_INDEX_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The attribute `key` denotes under the rule, if any. A key that is not UTF-8 denotes
    /// nothing.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<usize> {
        match self.get_exact(key) {
            Ok(i) => Some(i),
            Err(hashed) => self.get_folded(std::str::from_utf8(key).ok()?, hashed),
        }
    }

    /// [`FieldIndex::get`] for a key that is already text.
    #[inline]
    pub fn get_str(&self, key: &str) -> Option<usize> {
        match self.get_exact(key.as_bytes()) {
            Ok(i) => Some(i),
            Err(hashed) => self.get_folded(key, hashed),
        }
    }

    /// The attribute spelled exactly `key`, or the key's hash: the first half of the rule, for
    /// a caller that needs a key it does not find as text anyway (the gRPC reader, whose unused
    /// names go into a warning) and so checks its UTF-8 once, then asks
    /// [`FieldIndex::get_folded`] with the hash.
    #[inline]
    pub fn get_exact(&self, key: &[u8]) -> Result<usize, KeyHashed> {
        let hash = self.hasher.hash_one(key);
        match self.exact.find(hash, |(k, _)| **k == *key) {
            Some(&(_, i)) => Ok(i),
            None => Err(KeyHashed(hash)),
        }
    }

    /// The attribute `key` denotes under the rule when it is not an exact spelling; `hashed`
    /// is what [`FieldIndex::get_exact`] returned for it.
    #[inline(never)]
    pub fn get_folded(&self, key: &str, hashed: KeyHashed) -> Option<usize> {
        let key_bytes = key.as_bytes();
        UNMATCHED.with_borrow_mut(|(id, unmatched)| {
            if *id == self.id && unmatched.find(hashed.0, |k| **k == *key_bytes).is_some() {
                return None;
            }
            let found = self.find_folded(key);
            if found.is_none() && key.len() <= MAX_UNMATCHED_KEY_BYTES {
                if *id != self.id {
                    unmatched.clear();
                    *id = self.id;
                }
                if unmatched.len() < MAX_UNMATCHED_KEYS {
                    unmatched
                        .insert_unique(hashed.0, key_bytes.into(), |k| self.hasher.hash_one(&**k));
                }
            }
            found
        })
    }

    fn find_folded(&self, key: &str) -> Option<usize> {
        self.folded
            .get(&folded_hash(key))?
            .iter()
            .copied()
            .find(|&i| folded(&self.names[i]).eq(folded(key)))
    }

    /// The field names, as the model spells them, in attribute order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The field names quoted and comma-separated, for messages that list what is expected.
    pub fn expected(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which key of one record (a lead's map, a CSV header row) claimed each field, so that every
/// path refuses a second spelling of a field the same way. Reused from record to record: no
/// allocation per record.
#[derive(Debug, Clone)]
pub struct Claims<K> {
    /// The key that claimed each field, by attribute index.
    by_field: Vec<Option<K>>,
    /// Fields claimed so far, so "no field known" costs nothing to ask.
    claimed: usize,
}

impl<K> Default for Claims<K> {
    fn default() -> Self {
        Claims {
            by_field: Vec::new(),
            claimed: 0,
        }
    }
}

impl<K: Copy + PartialEq> Claims<K> {
    /// Forgets the previous record's claims, for a model of `fields` fields.
    pub fn start(&mut self, fields: usize) {
        self.by_field.clear();
        self.by_field.resize(fields, None);
        self.claimed = 0;
    }

    /// Records that `key` denotes `field`. The same key again is not a conflict (a later entry
    /// replaces an earlier one, as in a protobuf map); a different key is `Err(earlier key)`.
    #[inline]
    pub fn claim(&mut self, field: usize, key: K) -> Result<(), K> {
        match self.by_field[field] {
            Some(earlier) if earlier != key => Err(earlier),
            Some(_) => Ok(()),
            None => {
                self.by_field[field] = Some(key);
                self.claimed += 1;
                Ok(())
            }
        }
    }

    /// Whether no key of the record denotes a field.
    pub fn none(&self) -> bool {
        self.claimed == 0
    }

    /// The key that claimed each field, by attribute index.
    pub fn by_field(&self) -> &[Option<K>] {
        &self.by_field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_trims_folds_case_and_collapses_inner_space() {
        assert_eq!(normalise("  Lead \t  SOURCE\n"), "lead source");
        assert!(same("Lead Source", "lead source"));
        assert!(same("Lead Source", " LEAD\u{a0} source "));
        assert!(same("ÉTAPE", "étape"));
        assert!(!same("Lead Source", "LeadSource"));
        assert!(!same("Lead Source", "Lead_Source"));
        assert!(same("", "   "));
    }

    #[test]
    fn exact_spelling_first_then_the_rule() {
        let index = FieldIndex::new(["Lead Source", "region", "Source", "source"]);
        assert_eq!(index.get(b"Lead Source"), Some(0));
        assert_eq!(index.get(b"lead  source "), Some(0));
        assert_eq!(index.get(b"REGION"), Some(1));
        // Two fields with the same folded name: exact spellings keep them apart, any other
        // spelling goes to the first.
        assert_eq!(index.get(b"source"), Some(3));
        assert_eq!(index.get(b"Source"), Some(2));
        assert_eq!(index.get(b"SOURCE"), Some(2));
        assert_eq!(index.get(b"colour"), None);
        assert_eq!(index.get(b"lead sourc"), None);
        assert_eq!(index.get(b"\xffregion"), None);
        assert_eq!(
            index.expected(),
            r#""Lead Source", "region", "Source", "source""#
        );
    }

    /// Remembered misses belong to their index: a key one model does not know may be a field
    /// of the next model loaded, and asking again gives the same answer.
    #[test]
    fn unmatched_keys_are_remembered_per_index() {
        let old = FieldIndex::new(["Lead Source"]);
        let new = FieldIndex::new(["Lead Source", "Region"]);
        for _ in 0..2 {
            assert_eq!(old.get(b"REGION"), None);
            assert_eq!(old.get(b"lead  SOURCE"), Some(0));
            assert_eq!(new.get(b"REGION"), Some(1));
            assert_eq!(old.get_str("REGION"), None);
        }
        let many = FieldIndex::new(["x"]);
        for i in 0..MAX_UNMATCHED_KEYS + 10 {
            assert_eq!(many.get_str(&format!("field {i}")), None);
        }
        assert_eq!(many.get_str(" X "), Some(0));
        UNMATCHED.with_borrow(|(_, keys)| assert_eq!(keys.len(), MAX_UNMATCHED_KEYS));
    }

    #[test]
    fn a_field_is_claimed_by_one_key_per_record() {
        let mut claims = Claims::default();
        claims.start(3);
        assert!(claims.none());
        assert_eq!(claims.claim(1, "Lead Source"), Ok(()));
        assert_eq!(claims.claim(1, "Lead Source"), Ok(()), "the same key again");
        assert_eq!(claims.claim(1, "lead source"), Err("Lead Source"));
        assert!(!claims.none());
        assert_eq!(claims.by_field(), [None, Some("Lead Source"), None]);
        claims.start(3);
        assert!(claims.none());
        assert_eq!(claims.claim(1, "lead source"), Ok(()));
    }

    /// The folded hash agrees with the rule, whatever the spelling.
    #[test]
    fn names_the_rule_calls_the_same_hash_the_same() {
        for (a, b) in [
            ("Lead Source", " lead\tsource"),
            ("İstanbul", "i̇stanbul"),
            ("a b c", "A  B\n C"),
            ("Lead Source", "lead\u{b}source\u{b}"),
            ("Étape  Suivante", " étape suivante"),
        ] {
            assert!(same(a, b), "{a:?} {b:?}");
            assert_eq!(folded_hash(a), folded_hash(b), "{a:?} {b:?}");
            assert_eq!(normalise(a), normalise(b));
        }
        assert_ne!(folded_hash("Lead Source"), folded_hash("LeadSource"));
    }

    /// The stack-buffer fold is `normalise`, byte for byte, for ASCII, non-ASCII and names too
    /// long for the buffer (which fall back to `normalise` itself).
    #[test]
    fn the_fast_fold_is_the_rule() {
        let long = format!("  {}  X ", "Ab ".repeat(60));
        let names = [
            "",
            "   ",
            " Lead \t SOURCE\r\n",
            "a\u{b}b",
            "Lead  Source",
            "What is your current occupation",
            "ÉTAPE  Été",
            "İ x",
            &long,
            &long[2..130],
        ];
        for name in names {
            let mut buf = [0u8; 128];
            match fold_into(name, &mut buf) {
                Some(len) => assert_eq!(&buf[..len], normalise(name).as_bytes(), "{name:?}"),
                None => assert!(normalise(name).len() > 128, "{name:?}"),
            }
            assert_eq!(
                folded_hash(name),
                FastHash::default().hash_one(normalise(name).as_bytes())
            );
        }
    }
}
