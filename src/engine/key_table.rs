//! A map from stored keys to values whose caller may hash a key once and use that hash
//! for several tables: the in-flight table shares the store's hasher, so a miss hashes
//! its key once for the store lookup, the in-flight insert and remove, and the store
//! write.

use ahash::RandomState;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::engine::key::Key;

pub struct KeyTable<V> {
    table: HashTable<(Key, V)>,
    hasher: RandomState,
}

impl<V> KeyTable<V> {
    /// An empty table hashing with `hasher` (the hashes handed to the `_hashed` methods
    /// must come from the same one).
    pub fn with_hasher(hasher: RandomState) -> Self {
        KeyTable {
            table: HashTable::new(),
            hasher,
        }
    }

    /// The hash the `_hashed` methods take for `key`.
    #[inline]
    pub fn hash_of(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        // An empty table (the usual case) is answered without hashing.
        if self.table.is_empty() {
            return None;
        }
        self.get_hashed(key, self.hash_of(key))
    }

    pub fn get_hashed(&self, key: &[u8], hash: u64) -> Option<&V> {
        self.table
            .find(hash, |(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.table.is_empty() {
            return None;
        }
        let hash = self.hash_of(key);
        self.table
            .find_mut(hash, |(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v)
    }

    /// Inserts `value` under `key`, handing back the value it replaced (the table keeps
    /// its first copy of the key, as a standard map does).
    pub fn insert(&mut self, key: Key, value: V) -> Option<V> {
        let hash = self.hash_of(&key);
        self.insert_hashed(hash, key, value)
    }

    /// [`Self::insert`] with the key's hash from [`Self::hash_of`].
    pub fn insert_hashed(&mut self, hash: u64, key: Key, value: V) -> Option<V> {
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |(k, _)| *k == key,
            |(k, _)| hasher.hash_one(k.as_bytes()),
        ) {
            Entry::Occupied(mut found) => Some(std::mem::replace(&mut found.get_mut().1, value)),
            Entry::Vacant(vacant) => {
                vacant.insert((key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Takes `key` out with the table's copy of it.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Key, V)> {
        if self.table.is_empty() {
            return None;
        }
        self.remove_entry_hashed(key, self.hash_of(key))
    }

    /// [`Self::remove_entry`] with the key's hash from [`Self::hash_of`].
    pub fn remove_entry_hashed(&mut self, key: &[u8], hash: u64) -> Option<(Key, V)> {
        match self.table.find_entry(hash, |(k, _)| k.as_bytes() == key) {
            Ok(found) => Some(found.remove().0),
            Err(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.table.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable<u32> {
        KeyTable::with_hasher(RandomState::new())
    }

    #[test]
    fn finds_what_was_inserted_by_bytes_and_by_hash() {
        let mut t = table();
        assert_eq!(t.insert(Key::from_bytes(b"a"), 1), None);
        let hash = t.hash_of(b"b");
        assert_eq!(t.insert_hashed(hash, Key::from_bytes(b"b"), 2), None);
        assert_eq!(t.get(b"a"), Some(&1));
        assert_eq!(t.get_hashed(b"b", hash), Some(&2));
        assert!(t.contains_key(b"b"));
        assert!(!t.contains_key(b"c"));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn insert_replaces_the_value_of_an_existing_key() {
        let mut t = table();
        t.insert(Key::from_bytes(b"a"), 1);
        assert_eq!(t.insert(Key::from_bytes(b"a"), 5), Some(1));
        assert_eq!(t.get(b"a"), Some(&5));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn remove_takes_out_only_the_key_named() {
        let mut t = table();
        t.insert(Key::from_bytes(b"a"), 1);
        t.insert(Key::from_bytes(b"b"), 2);
        let hash = t.hash_of(b"a");
        let (key, value) = t.remove_entry_hashed(b"a", hash).expect("stored");
        assert_eq!((key.as_bytes(), value), (&b"a"[..], 1));
        assert_eq!(t.remove(b"a"), None);
        assert_eq!(t.remove(b"b"), Some(2));
        assert!(t.is_empty());
        assert_eq!(t.get_mut(b"b"), None);
    }

    #[test]
    fn the_store_and_the_table_agree_on_a_hash_when_they_share_a_hasher() {
        let hasher = RandomState::new();
        let t: KeyTable<u32> = KeyTable::with_hasher(hasher.clone());
        assert_eq!(t.hash_of(b"key"), hasher.hash_one(Key::from_bytes(b"key")));
    }

    #[test]
    fn many_keys_survive_growth() {
        let mut t = table();
        for n in 0u32..1000 {
            t.insert(Key::from_bytes(&n.to_le_bytes()), n);
        }
        for n in 0u32..1000 {
            assert_eq!(t.get(&n.to_le_bytes()), Some(&n));
        }
        assert_eq!(t.iter().count(), 1000);
    }
}
