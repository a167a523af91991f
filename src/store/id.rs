//! Generation ids. Stored as UUIDv7 bytes, so keys sort by creation time and newest-first paging
//! is a reverse range scan. Shown to people with the random half first, so that a few characters
//! tell two ids apart and can be typed as a git-style abbreviation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

/// Bytes of the UUID in the order they are shown: the random tail, then the time head.
const SHOWN_ORDER: [usize; 16] = [9, 10, 11, 12, 13, 14, 15, 8, 7, 6, 0, 1, 2, 3, 4, 5];

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Uuid);

impl Id {
    /// A fresh id for now.
    pub fn new() -> Id {
        Id(Uuid::now_v7())
    }

    pub fn from_uuid(u: Uuid) -> Id {
        Id(u)
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }

    /// The store key: time-ordered big-endian bytes.
    pub fn key(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    pub fn from_key(key: &[u8]) -> Option<Id> {
        Uuid::from_slice(key).ok().map(Id)
    }

    /// The first characters, as shown in lists.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }

    /// Parse the shown form (32 hex digits) or a plain UUID.
    pub fn parse(s: &str) -> Option<Id> {
        let s = s.trim();
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            let shown = hex::decode(s).ok()?;
            let mut bytes = [0u8; 16];
            for (pos, &src) in SHOWN_ORDER.iter().enumerate() {
                bytes[src] = *shown.get(pos)?;
            }
            return Some(Id(Uuid::from_bytes(bytes)));
        }
        Uuid::parse_str(s).ok().map(Id)
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.as_bytes();
        for &i in &SHOWN_ORDER {
            write!(f, "{:02x}", b[i])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not an easel id: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_sort_by_time_but_show_random_first() {
        let a = Id::new();
        let b = Id::new();
        assert!(a < b);
        assert!(a.key() < b.key());
        assert_eq!(a.to_string().len(), 32);
        // Consecutive ids share their time prefix but (almost surely) not their shown prefix.
        assert_ne!(a.short(), b.short());
        assert_eq!(Id::parse(&a.to_string()), Some(a));
        assert_eq!(Id::parse(&a.uuid().to_string()), Some(a));
        assert_eq!(Id::from_key(&a.key()), Some(a));
        assert_eq!(Id::parse("zz"), None);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in any::<[u8; 16]>()) {
            let id = Id::from_uuid(Uuid::from_bytes(bytes));
            prop_assert_eq!(Id::parse(&id.to_string()), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), id);
        }
    }
}
