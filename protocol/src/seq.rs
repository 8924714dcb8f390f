//! [`Seq`]: a list in a message, serialised without collecting it first.

use core::fmt;
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

/// A list inside a message. The device serialises lists straight from its session's memory
/// (`Slice`, or `Map`, which builds each element on the fly: no buffer, no allocation); the host
/// decodes them into a `Vec` (`Owned`, with the `alloc` feature). All three have the same
/// encoding (a postcard sequence: length, then the elements).
pub enum Seq<'a, T> {
    Slice(&'a [T]),
    Map {
        len: usize,
        get: &'a dyn Fn(usize) -> T,
    },
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<T>),
}

impl<T: Clone> Seq<'_, T> {
    pub fn len(&self) -> usize {
        match self {
            Seq::Slice(s) => s.len(),
            Seq::Map { len, .. } => *len,
            #[cfg(feature = "alloc")]
            Seq::Owned(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i` (built by `get` for `Map`).
    pub fn get(&self, i: usize) -> Option<T> {
        match self {
            Seq::Slice(s) => s.get(i).cloned(),
            Seq::Map { len, get } => (i < *len).then(|| get(i)),
            #[cfg(feature = "alloc")]
            Seq::Owned(v) => v.get(i).cloned(),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

impl<T: Serialize> Serialize for Seq<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Seq::Slice(xs) => s.collect_seq(xs.iter()),
            Seq::Map { len, get } => {
                let mut seq = s.serialize_seq(Some(*len))?;
                for i in 0..*len {
                    seq.serialize_element(&get(i))?;
                }
                seq.end()
            }
            #[cfg(feature = "alloc")]
            Seq::Owned(v) => s.collect_seq(v.iter()),
        }
    }
}

#[cfg(feature = "alloc")]
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Seq<'_, T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        alloc::vec::Vec::<T>::deserialize(d).map(Seq::Owned)
    }
}

impl<T: Clone + fmt::Debug> fmt::Debug for Seq<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Clone + PartialEq> PartialEq for Seq<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
