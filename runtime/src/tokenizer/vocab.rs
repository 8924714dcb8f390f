//! The WordPiece vocabulary, zero-copy over the tables stored in the model file.
//!
//! Layout (all little-endian when stored):
//! - `strings`: every token's UTF-8 bytes, concatenated in id order;
//! - `offsets`: `V + 1` entries, token `i` is `strings[offsets[i]..offsets[i + 1]]`;
//! - `index`: an open-addressing hash table of capacity a power of two `>= max(16, 2 * V)`;
//!   a slot holds `id + 1`, or 0 when empty. The hash is 32-bit FNV-1a over the token's bytes,
//!   the first slot is `hash & (capacity - 1)`, collisions probe linearly.
//!
//! [`Vocab::from_parts`] validates everything once, so look-ups never panic and never loop
//! forever, whatever the bytes of the file.

use core::fmt;

const FNV_OFFSET: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;
/// WordPiece's continuing-subword prefix.
pub(crate) const CONTINUATION_PREFIX: &[u8] = b"##";
/// Smallest index capacity.
pub const MIN_INDEX_CAPACITY: usize = 16;

/// 32-bit FNV-1a, continued from `hash` (start with [`fnv1a_start`]).
#[inline]
pub(crate) fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The FNV-1a initial state.
#[inline]
pub(crate) const fn fnv1a_start() -> u32 {
    FNV_OFFSET
}

/// The hash table capacity [`VocabTables::build`] uses for `tokens` entries.
pub fn index_capacity(tokens: usize) -> usize {
    tokens
        .saturating_mul(2)
        .max(MIN_INDEX_CAPACITY)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
}

/// Why a vocabulary's tables were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabError {
    /// `offsets` is empty (it needs `V + 1` entries).
    NoOffsets,
    /// More tokens than ids can number.
    TooManyTokens(usize),
    /// `offsets[0]` is not 0.
    FirstOffsetNotZero(u32),
    /// `offsets[id + 1] < offsets[id]`.
    OffsetsNotMonotone { id: u32 },
    /// The last offset is not the length of `strings`.
    StringsLength {
        last_offset: u32,
        strings_len: usize,
    },
    /// Token `id` is not valid UTF-8.
    InvalidUtf8 { id: u32 },
    /// The index capacity is not a power of two at least `max(16, 2 * V)`.
    IndexCapacity { capacity: usize, tokens: usize },
    /// An index slot names an id that does not exist.
    IndexEntryOutOfRange { slot: usize, entry: u32 },
    /// The index has no empty slot.
    IndexFull,
    /// An index slot cannot be reached by looking its token up (wrong hash or probe order).
    IndexInconsistent { slot: usize },
}

impl fmt::Display for VocabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VocabError::NoOffsets => write!(f, "vocabulary offsets table is empty"),
            VocabError::TooManyTokens(n) => write!(f, "vocabulary has too many tokens ({n})"),
            VocabError::FirstOffsetNotZero(o) => {
                write!(f, "vocabulary offsets must start at 0, not {o}")
            }
            VocabError::OffsetsNotMonotone { id } => {
                write!(f, "vocabulary offsets decrease at token {id}")
            }
            VocabError::StringsLength { last_offset, strings_len } => write!(
                f,
                "vocabulary offsets end at {last_offset} but the strings are {strings_len} bytes"
            ),
            VocabError::InvalidUtf8 { id } => write!(f, "vocabulary token {id} is not UTF-8"),
            VocabError::IndexCapacity { capacity, tokens } => write!(
                f,
                "vocabulary index capacity {capacity} is not a power of two >= max(16, 2 * {tokens})"
            ),
            VocabError::IndexEntryOutOfRange { slot, entry } => {
                write!(f, "vocabulary index slot {slot} holds {entry}, past the last id")
            }
            VocabError::IndexFull => write!(f, "vocabulary index has no empty slot"),
            VocabError::IndexInconsistent { slot } => {
                write!(f, "vocabulary index slot {slot} is not where its token hashes to")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VocabError {}

/// A validated, borrowed WordPiece vocabulary.
#[derive(Clone, Copy)]
pub struct Vocab<'a> {
    strings: &'a [u8],
    offsets: &'a [u32],
    index: &'a [u32],
}

impl fmt::Debug for Vocab<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vocab")
            .field("tokens", &self.len())
            .field("string_bytes", &self.strings.len())
            .field("index_capacity", &self.index.len())
            .finish()
    }
}

impl<'a> Vocab<'a> {
    /// Checks the tables (see the module docs for the layout) and wraps them.
    pub fn from_parts(
        strings: &'a [u8],
        offsets: &'a [u32],
        index: &'a [u32],
    ) -> Result<Self, VocabError> {
        let tokens = offsets.len().checked_sub(1).ok_or(VocabError::NoOffsets)?;
        // Ids are u32 and slots store id + 1.
        if tokens >= u32::MAX as usize {
            return Err(VocabError::TooManyTokens(tokens));
        }
        match offsets.first() {
            Some(&0) => {}
            Some(&o) => return Err(VocabError::FirstOffsetNotZero(o)),
            None => return Err(VocabError::NoOffsets),
        }
        for (id, pair) in offsets.windows(2).enumerate() {
            if let [a, b] = *pair {
                if b < a {
                    return Err(VocabError::OffsetsNotMonotone { id: id as u32 });
                }
            }
        }
        let last = offsets.last().copied().unwrap_or(0);
        if last as usize != strings.len() {
            return Err(VocabError::StringsLength {
                last_offset: last,
                strings_len: strings.len(),
            });
        }
        for (id, pair) in offsets.windows(2).enumerate() {
            if let [a, b] = *pair {
                let bytes = strings.get(a as usize..b as usize).unwrap_or(&[]);
                if core::str::from_utf8(bytes).is_err() {
                    return Err(VocabError::InvalidUtf8 { id: id as u32 });
                }
            }
        }
        let capacity = index.len();
        if !capacity.is_power_of_two() || capacity < MIN_INDEX_CAPACITY || capacity / 2 < tokens {
            return Err(VocabError::IndexCapacity { capacity, tokens });
        }
        let mut empty = false;
        for (slot, &entry) in index.iter().enumerate() {
            if entry == 0 {
                empty = true;
            } else if entry as usize > tokens {
                return Err(VocabError::IndexEntryOutOfRange { slot, entry });
            }
        }
        if !empty {
            return Err(VocabError::IndexFull);
        }
        let vocab = Vocab {
            strings,
            offsets,
            index,
        };
        for (slot, &entry) in index.iter().enumerate() {
            if entry == 0 {
                continue;
            }
            let bytes = vocab.token_bytes(entry - 1);
            if vocab.find_slot(fnv1a(fnv1a_start(), bytes), false, bytes) != Some(slot) {
                return Err(VocabError::IndexInconsistent { slot });
            }
        }
        Ok(vocab)
    }

    /// Number of tokens (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The token with this id.
    pub fn token(&self, id: u32) -> Option<&'a str> {
        let i = id as usize;
        let start = *self.offsets.get(i)? as usize;
        let end = *self.offsets.get(i.checked_add(1)?)? as usize;
        core::str::from_utf8(self.strings.get(start..end)?).ok()
    }

    fn token_bytes(&self, id: u32) -> &'a [u8] {
        let i = id as usize;
        match (self.offsets.get(i), self.offsets.get(i.wrapping_add(1))) {
            (Some(&a), Some(&b)) => self.strings.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The id of `token` (the last id if the vocabulary lists it twice).
    pub fn lookup(&self, token: &str) -> Option<u32> {
        let bytes = token.as_bytes();
        self.find(fnv1a(fnv1a_start(), bytes), false, bytes)
    }

    /// The id of `"##" + piece`, without building that string.
    pub fn lookup_continuation(&self, piece: &str) -> Option<u32> {
        let bytes = piece.as_bytes();
        let hash = fnv1a(fnv1a(fnv1a_start(), CONTINUATION_PREFIX), bytes);
        self.find(hash, true, bytes)
    }

    /// Looks up `piece` (prefixed with `##` if `continuation`) whose FNV-1a hash, prefix
    /// included, is `hash`.
    #[inline]
    pub(crate) fn find(&self, hash: u32, continuation: bool, piece: &[u8]) -> Option<u32> {
        let slot = self.find_slot(hash, continuation, piece)?;
        self.index.get(slot).map(|&e| e.wrapping_sub(1))
    }

    fn find_slot(&self, hash: u32, continuation: bool, piece: &[u8]) -> Option<usize> {
        let mask = self.index.len().checked_sub(1)?;
        let mut slot = hash as usize & mask;
        for _ in 0..self.index.len() {
            let entry = *self.index.get(slot)?;
            if entry == 0 {
                return None;
            }
            let token = self.token_bytes(entry - 1);
            let matches = if continuation {
                token.len() == piece.len() + CONTINUATION_PREFIX.len()
                    && token.starts_with(CONTINUATION_PREFIX)
                    && token.get(CONTINUATION_PREFIX.len()..) == Some(piece)
            } else {
                token == piece
            };
            if matches {
                return Some(slot);
            }
            slot = (slot + 1) & mask;
        }
        None
    }

    /// The raw tables, as [`Vocab::from_parts`] takes them.
    pub fn parts(&self) -> (&'a [u8], &'a [u32], &'a [u32]) {
        (self.strings, self.offsets, self.index)
    }
}

/// Owned vocabulary tables, built from a token list (e.g. the lines of `vocab.txt`).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabTables {
    pub strings: Vec<u8>,
    pub offsets: Vec<u32>,
    pub index: Vec<u32>,
}

#[cfg(feature = "std")]
impl VocabTables {
    /// Lays out `tokens` (id = position). A token listed twice maps to its LAST id in the index,
    /// as when Hugging Face loads `vocab.txt`.
    ///
    /// # Panics
    /// If there are `u32::MAX` or more tokens, or more than 4 GiB of token text.
    pub fn build(tokens: &[&str]) -> VocabTables {
        assert!(
            tokens.len() < u32::MAX as usize,
            "too many vocabulary tokens"
        );
        let mut strings = Vec::new();
        let mut offsets = Vec::with_capacity(tokens.len() + 1);
        offsets.push(0u32);
        for t in tokens {
            strings.extend_from_slice(t.as_bytes());
            offsets.push(u32::try_from(strings.len()).expect("vocabulary text over 4 GiB"));
        }
        let capacity = index_capacity(tokens.len());
        let mut index = vec![0u32; capacity];
        let mask = capacity - 1;
        for (id, t) in tokens.iter().enumerate() {
            let bytes = t.as_bytes();
            let mut slot = fnv1a(fnv1a_start(), bytes) as usize & mask;
            loop {
                let entry = index[slot];
                if entry == 0 || tokens[entry as usize - 1].as_bytes() == bytes {
                    index[slot] = id as u32 + 1;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        VocabTables {
            strings,
            offsets,
            index,
        }
    }

    /// Builds from the text of a `vocab.txt`: one token per line, split on `\n` only, the empty
    /// piece after a final `\n` dropped. For files without `\r` this is exactly `transformers`'
    /// `load_vocab` (`readlines()` + `rstrip("\n")`).
    pub fn from_vocab_txt(text: &str) -> VocabTables {
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        Self::build(&lines)
    }

    /// Borrows the tables as a validated [`Vocab`].
    pub fn vocab(&self) -> Result<Vocab<'_>, VocabError> {
        Vocab::from_parts(&self.strings, &self.offsets, &self.index)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn tables(tokens: &[&str]) -> VocabTables {
        VocabTables::build(tokens)
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(fnv1a_start(), b""), 0x811C_9DC5);
        assert_eq!(fnv1a(fnv1a_start(), b"a"), 0xE40C_292C);
        assert_eq!(fnv1a(fnv1a_start(), b"foobar"), 0xBF9C_F968);
    }

    #[test]
    fn lookup_and_continuation() {
        let t = tables(&["[PAD]", "hello", "##llo", "he", "##", "", "h\u{e9}"]);
        let v = t.vocab().unwrap();
        assert_eq!(v.len(), 7);
        assert!(!v.is_empty());
        assert_eq!(v.lookup("hello"), Some(1));
        assert_eq!(v.lookup("##llo"), Some(2));
        assert_eq!(v.lookup_continuation("llo"), Some(2));
        assert_eq!(v.lookup_continuation("hello"), None);
        assert_eq!(v.lookup_continuation(""), Some(4));
        assert_eq!(v.lookup("##"), Some(4));
        assert_eq!(v.lookup(""), Some(5));
        assert_eq!(v.lookup("h\u{e9}"), Some(6));
        assert_eq!(v.lookup("h"), None);
        assert_eq!(v.lookup("llo"), None);
        assert_eq!(v.token(1), Some("hello"));
        assert_eq!(v.token(6), Some("h\u{e9}"));
        assert_eq!(v.token(7), None);
        assert_eq!(v.token(u32::MAX), None);
        assert_eq!(t.index.len(), 16);
    }

    #[test]
    fn duplicates_last_wins() {
        let t = tables(&["a", "b", "a", "c", "b"]);
        let v = t.vocab().unwrap();
        assert_eq!(v.lookup("a"), Some(2));
        assert_eq!(v.lookup("b"), Some(4));
        assert_eq!(v.lookup("c"), Some(3));
        assert_eq!(v.token(0), Some("a"));
        assert_eq!(t.index.iter().filter(|&&e| e != 0).count(), 3);
    }

    #[test]
    fn many_tokens_with_collisions() {
        let owned: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
        let refs: Vec<&str> = owned.iter().map(|s| s.as_str()).collect();
        let t = tables(&refs);
        assert_eq!(t.index.len(), 16384);
        let v = t.vocab().unwrap();
        for (i, s) in refs.iter().enumerate() {
            assert_eq!(v.lookup(s), Some(i as u32));
        }
        assert_eq!(v.lookup("t5000"), None);
    }

    #[test]
    fn empty_vocab() {
        let t = tables(&[]);
        let v = t.vocab().unwrap();
        assert!(v.is_empty());
        assert_eq!(v.lookup(""), None);
        assert_eq!(v.token(0), None);
    }

    #[test]
    fn from_vocab_txt_lines() {
        let t = VocabTables::from_vocab_txt("[PAD]\n[UNK]\nhello\n##s\n");
        let v = t.vocab().unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v.lookup_continuation("s"), Some(3));
    }

    #[test]
    fn corrupt_tables_are_rejected() {
        let good = tables(&["a", "bc", "d\u{e9}"]);
        let (s, o, i) = (&good.strings[..], &good.offsets[..], &good.index[..]);
        assert!(Vocab::from_parts(s, o, i).is_ok());

        assert_eq!(
            Vocab::from_parts(s, &[], i).unwrap_err(),
            VocabError::NoOffsets
        );
        assert_eq!(
            Vocab::from_parts(s, &[1, 1, 3, 6], i).unwrap_err(),
            VocabError::FirstOffsetNotZero(1)
        );
        assert_eq!(
            Vocab::from_parts(s, &[0, 3, 2, 6], i).unwrap_err(),
            VocabError::OffsetsNotMonotone { id: 1 }
        );
        assert!(matches!(
            Vocab::from_parts(s, &[0, 1, 3, 7], i).unwrap_err(),
            VocabError::StringsLength { .. }
        ));
        assert!(matches!(
            Vocab::from_parts(&s[..5], o, i).unwrap_err(),
            VocabError::StringsLength { .. }
        ));
        // Splitting inside 'é'.
        assert_eq!(
            Vocab::from_parts(s, &[0, 1, 3, 5, 6], &[0; 16]).unwrap_err(),
            VocabError::InvalidUtf8 { id: 2 }
        );
        let mut bad_utf8 = good.strings.clone();
        bad_utf8[0] = 0xFF;
        assert_eq!(
            Vocab::from_parts(&bad_utf8, o, i).unwrap_err(),
            VocabError::InvalidUtf8 { id: 0 }
        );
        assert!(matches!(
            Vocab::from_parts(s, o, &i[..8]).unwrap_err(),
            VocabError::IndexCapacity { .. }
        ));
        assert!(matches!(
            Vocab::from_parts(s, o, &[0; 24]).unwrap_err(),
            VocabError::IndexCapacity { .. }
        ));
        assert!(matches!(
            Vocab::from_parts(s, o, &[]).unwrap_err(),
            VocabError::IndexCapacity { .. }
        ));
        let mut out_of_range = good.index.clone();
        let slot = out_of_range.iter().position(|&e| e != 0).unwrap();
        out_of_range[slot] = 4;
        assert_eq!(
            Vocab::from_parts(s, o, &out_of_range).unwrap_err(),
            VocabError::IndexEntryOutOfRange { slot, entry: 4 }
        );
        assert_eq!(
            Vocab::from_parts(s, o, &[1; 16]).unwrap_err(),
            VocabError::IndexFull
        );
        // A slot moved away from where its hash points (with an empty slot in between).
        let mut moved = vec![0u32; 16];
        let h = fnv1a(fnv1a_start(), b"a") as usize & 15;
        moved[(h + 8) & 15] = 1;
        assert_eq!(
            Vocab::from_parts(s, o, &moved).unwrap_err(),
            VocabError::IndexInconsistent { slot: (h + 8) & 15 }
        );
        // An index that lists nothing is consistent (every look-up just misses).
        let v = Vocab::from_parts(s, o, &[0; 16]).unwrap();
        assert_eq!(v.lookup("a"), None);
        assert_eq!(v.token(1), Some("bc"));
        // Errors display.
        let msg = format!("{}", VocabError::IndexFull);
        assert!(msg.contains("empty slot"));
    }
}
