//! The argument key: an unambiguous byte encoding of a call's hashed arguments.
//!
//! Every value is written as a one-byte type tag followed by a self-delimiting body
//! (fixed-width numbers, length-prefixed byte strings, count-prefixed sequences), so the
//! encoding is prefix-free: two different argument tuples can never produce the same bytes.
//! The store keeps these bytes and compares them in full on lookup; the hash of the bytes
//! only picks the bucket. This module knows nothing about Python: the bindings walk Python
//! objects and call these writers.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::engine::buffer_hash::{digest, Digest, INLINE_LIMIT};

/// Type tags. One byte each; the value that follows is described next to each tag.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// no body
    None = 0,
    /// no body
    False = 1,
    /// no body
    True = 2,
    /// i64, little endian
    SmallInt = 3,
    /// length-prefixed two's-complement little-endian bytes (ints outside i64)
    BigInt = 4,
    /// f64 bits, so 0.0 and -0.0 differ
    Float = 5,
    /// two f64 bits: real, imaginary
    Complex = 6,
    /// length-prefixed UTF-8 (surrogates kept via surrogatepass)
    Str = 7,
    /// length-prefixed bytes
    Bytes = 8,
    /// length-prefixed bytes
    ByteArray = 9,
    /// count, then each item
    Tuple = 10,
    /// count, then each item
    List = 11,
    /// count, then (key, value) pairs in insertion order (OrderedDict)
    OrderedDict = 12,
    /// count, then the encoded (key, value) pairs sorted bytewise (dict: order ignored)
    Dict = 13,
    /// count, then the encoded items sorted bytewise
    Set = 14,
    /// count, then the encoded items sorted bytewise
    FrozenSet = 15,
    /// a class: length-prefixed `module.qualname`, then the ordinal of its body's
    /// fingerprint (0 for built-in classes)
    Type = 16,
    /// a subclass instance of a built-in kind: length-prefixed `module.qualname`, class
    /// fingerprint ordinal, the value encoded as its built-in base, then the instance's
    /// own state ([`Tag::State`])
    Subclass = 17,
    /// the output of a user `hash_funcs` entry of another type than the argument, encoded
    /// in turn (`hash_funcs` applying to it too)
    HashFunc = 18,
    /// a reference back to an enclosing container (self-referencing values): depth as u64
    BackRef = 19,
    /// `*args` of the signature: count, then each value
    VarArgs = 20,
    /// extra `**kwargs` keys: count, then sorted (name, value) pairs
    VarKwargs = 21,
    /// the instance a method is bound to, or a positional/keyword parameter slot
    Param = 22,
    /// an enum member: class `module.qualname`, member name, then its value (or
    /// [`Tag::Opaque`] when the value itself cannot be encoded)
    Enum = 23,
    /// `uuid.UUID`: class name, then the 16 bytes
    Uuid = 24,
    /// a Python function: module, qualname, its code, defaults, keyword defaults, closure
    Function = 25,
    /// a code object: bytecode, constants, names, variable names, argument counts, flags
    Code = 26,
    /// a bound method: the function, then the instance
    Method = 27,
    /// a built-in function or method descriptor: owner, qualname, then what it is bound to
    Builtin = 28,
    /// a module: its name
    Module = 29,
    /// `re.Pattern`: pattern (str or bytes), then flags
    Pattern = 30,
    /// `functools.partial`: class name, function, args, keywords
    Partial = 31,
    /// a dataclass or attrs instance: class name, class fingerprint ordinal, then its whole
    /// state ([`Tag::State`])
    Fields = 32,
    /// a pydantic model: class name, class fingerprint ordinal, then its whole state (fields,
    /// excluded ones included, private attributes, extras, which fields were set)
    Pydantic = 33,
    /// the `__reduce_ex__` output of a class that customises pickling: class name, then parts
    Reduce = 34,
    /// a value keyed by Python's own hash and equality: class name, class fingerprint
    /// ordinal, then its interned ordinal
    Interned = 35,
    /// a `unittest.mock` object, by identity: its ordinal (never reused)
    Mock = 36,
    /// a buffer exporter (memoryview, array.array, …): class, format, item size, shape, data
    Buffer = 37,
    /// a numpy array: class, dtype, shape, then data (bytes, or items for object dtypes)
    NdArray = 38,
    /// a numpy scalar: class, dtype, then its bytes
    NumpyScalar = 39,
    /// a pandas Series: class, name, dtype, index, values
    PandasSeries = 40,
    /// a pandas DataFrame: class, columns, index, then each column's dtype and values
    PandasFrame = 41,
    /// a pandas Index: class, name(s), then its content
    PandasIndex = 42,
    /// a polars DataFrame or Series: class, then its Arrow IPC serialisation
    Polars = 43,
    /// a PIL image: class, mode, size, palette, pixel data
    Image = 44,
    /// `io.StringIO` / `io.BytesIO`: class, position, content
    MemoryFile = 45,
    /// an open file: class, name, modification time, position
    File = 46,
    /// `types.MappingProxyType`: the mapping, encoded as a dict
    MappingProxy = 47,
    /// `dict.keys()`: the keys, order ignored
    DictKeys = 48,
    /// `dict.values()`: the values in order
    DictValues = 49,
    /// `dict.items()`: the pairs, order ignored
    DictItems = 50,
    /// raw data of a buffer-like value: length, then the bytes (short) or their digest
    Data = 51,
    /// a part that has no encoding of its own (an empty closure cell, an enum value that
    /// cannot be encoded): no body
    Opaque = 52,
    /// the Arrow buffers of a pandas column backed by pyarrow
    Arrow = 53,
    /// pandas Categorical values: codes, categories, orderedness
    Categorical = 54,
    /// the browser session a session-scoped entry belongs to: length-prefixed session id.
    /// Only ever the first field of a key (see [`session_prefix`]).
    Session = 55,
    /// the output of a user `hash_funcs` entry of the argument's own type, encoded in turn
    /// without `hash_funcs` (so a function returning its input's type cannot recurse)
    HashFuncSameType = 60,
    /// in an identity, a value with no encoding of its own: its class `module.qualname`,
    /// then the class fingerprint's ordinal
    ByType = 61,
    /// an instance's state (`__dict__` and slots): count, then the encoded (name, value)
    /// pairs sorted bytewise
    State = 62,
    /// a fastcache cached function: the function it wraps
    Cached = 63,
    /// a closure cell: its contents, or [`Tag::Opaque`] while it is empty
    Cell = 64,
    /// a descriptor in a class body (`property`, `classmethod`, `staticmethod`): class
    /// `module.qualname`, then the functions it holds
    Descriptor = 65,
    /// a call that fits the function's own signature but not the one it wraps
    /// (`functools.wraps` wrapper adding a parameter): the call bound to the outer one
    OuterSignature = 66,
    /// an instance of a plain class, by its class and state: only in function identities
    /// (a callable instance, the instance of a bound method), never in argument keys
    PlainInstance = 67,
    /// an instance's state whose names are all strings: count, then the (name, value)
    /// pairs in name order (the general form is [`Tag::State`])
    StateByName = 68,
}

/// The leading field of every key of one browser session in a session-scoped cache:
/// [`Tag::Session`], the id's length, the id. The argument encoding that follows is
/// prefix-free, so the whole key stays unambiguous, and one session's entries are exactly
/// the keys that start with these bytes.
pub fn session_prefix(session_id: &str) -> Vec<u8> {
    let mut w = KeyWriter::new();
    w.tag(Tag::Session);
    w.raw_bytes(session_id.as_bytes());
    w.into_bytes()
}

/// The session field a key starts with, if it is a session-scoped key.
pub fn session_of(key: &[u8]) -> Option<&[u8]> {
    if key.first() != Some(&(Tag::Session as u8)) {
        return None;
    }
    let len_bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    let end = usize::try_from(u64::from_le_bytes(len_bytes))
        .ok()?
        .checked_add(9)?;
    key.get(..end)
}

/// What a key keeps alive for as long as it exists, opaque to the engine: the bindings'
/// hold on it the values that a key names by ordinal rather than by content (objects keyed
/// by their own `__hash__`/`__eq__`), so they live exactly as long as some key names them.
/// Dropping it must not run Python (keys are dropped under cache locks).
pub type Pins = Arc<dyn Send + Sync>;

/// An encoded argument key, as the store keeps it. Equality is byte equality of the whole
/// encoding; the pins ride along and take no part in it. The bytes are shared: the copies
/// one miss needs (the in-flight table's, the flight's label, the store's) are one
/// allocation.
#[derive(Clone)]
pub struct Key {
    bytes: Arc<[u8]>,
    #[allow(dead_code, reason = "never read: held for what it keeps alive")]
    pins: Option<Pins>,
}

impl Key {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Key {
            bytes: bytes.into(),
            pins: None,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so a map keyed by `Key` can be searched with `&[u8]`.
        self.bytes.hash(state);
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.bytes.len())
    }
}

/// The encoding of one call's arguments, before it is (maybe) stored: a hit looks it up
/// as bytes and drops it, a miss copies it into a stored [`Key`] (which shares its pins).
pub struct EncodedKey {
    buf: KeyBuf,
    pins: Option<Pins>,
}

impl EncodedKey {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn to_key(&self) -> Key {
        Key {
            bytes: Arc::from(self.buf.as_slice()),
            pins: self.pins.clone(),
        }
    }

    /// Gives the pins up without releasing them: what they hold stays alive for the rest
    /// of the process (for keys kept as long as that, such as function identities).
    pub fn leak_pins(&mut self) {
        std::mem::forget(self.pins.take());
    }
}

/// A key as a call holds it: looked up by its bytes, and turned into a stored [`Key`]
/// (keeping its pins) when the call computes and stores a value.
pub trait KeyLike {
    fn bytes(&self) -> &[u8];
    fn to_key(&self) -> Key;
}

impl KeyLike for EncodedKey {
    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn to_key(&self) -> Key {
        EncodedKey::to_key(self)
    }
}

impl KeyLike for Key {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn to_key(&self) -> Key {
        self.clone()
    }
}

/// Keys up to this many bytes are built inside the writer itself, on the stack: a call
/// with a few small arguments (ints, short strings: 9 bytes plus the text each) allocates
/// nothing for its key.
pub const KEY_INLINE: usize = 96;

/// A key's bytes while they are written: in the buffer itself up to [`KEY_INLINE`] bytes,
/// all of them on the heap beyond. Appending a few bytes while inline is a bounds check and
/// a copy (a `SmallVec` spends several times that on its general bookkeeping).
struct KeyBuf {
    len: usize,
    inline: [u8; KEY_INLINE],
    /// Every byte, once there are more than fit inline.
    heap: Option<Vec<u8>>,
}

impl Default for KeyBuf {
    fn default() -> Self {
        KeyBuf {
            len: 0,
            inline: [0; KEY_INLINE],
            heap: None,
        }
    }
}

impl KeyBuf {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.heap.is_none() {
            let end = self.len + bytes.len();
            if let Some(room) = self.inline.get_mut(self.len..end) {
                room.copy_from_slice(bytes);
                self.len = end;
                return;
            }
            self.spill(bytes.len());
        }
        if let Some(heap) = &mut self.heap {
            heap.extend_from_slice(bytes);
        }
    }

    #[cold]
    fn spill(&mut self, more: usize) {
        let mut heap = Vec::with_capacity((self.len + more).max(2 * KEY_INLINE));
        heap.extend_from_slice(&self.inline[..self.len]);
        self.heap = Some(heap);
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }

    fn truncate(&mut self, len: usize) {
        match &mut self.heap {
            Some(heap) => heap.truncate(len),
            None => self.len = self.len.min(len),
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self.heap {
            Some(heap) => heap,
            None => self.inline[..self.len].to_vec(),
        }
    }
}

impl std::ops::Deref for KeyBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Builds a key by appending tagged values.
#[derive(Default)]
pub struct KeyWriter {
    buf: KeyBuf,
}

impl KeyWriter {
    pub fn new() -> Self {
        KeyWriter::default()
    }

    pub fn finish(self) -> EncodedKey {
        self.finish_pinned(None)
    }

    /// The key, keeping `pins` alive as long as it (or a [`Key`] made from it) exists.
    pub fn finish_pinned(self, pins: Option<Pins>) -> EncodedKey {
        EncodedKey {
            buf: self.buf,
            pins,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes are written so far: a mark for [`Self::cut_off`].
    pub fn written(&self) -> usize {
        self.buf.len()
    }

    /// Takes out the bytes written since `mark` (from [`Self::written`]).
    pub fn cut_off(&mut self, mark: usize) -> Vec<u8> {
        let cut = self.buf.as_slice()[mark..].to_vec();
        self.buf.truncate(mark);
        cut
    }

    /// The bytes written so far; used to encode an item on its own (for sorting set members).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf.into_vec()
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.buf.put(bytes);
    }

    /// A tag and an 8-byte body, in one append.
    #[inline]
    fn tag_and(&mut self, tag: Tag, body: [u8; 8]) {
        let mut both = [tag as u8; 9];
        both[1..].copy_from_slice(&body);
        self.put(&both);
    }

    pub fn tag(&mut self, tag: Tag) {
        self.put(&[tag as u8]);
    }

    /// Lengths and counts are always 8 bytes: simple, and never ambiguous.
    pub fn len(&mut self, n: usize) {
        self.put(&(n as u64).to_le_bytes());
    }

    pub fn small_int(&mut self, v: i64) {
        self.tag_and(Tag::SmallInt, v.to_le_bytes());
    }

    pub fn float(&mut self, v: f64) {
        self.tag_and(Tag::Float, v.to_bits().to_le_bytes());
    }

    pub fn complex(&mut self, re: f64, im: f64) {
        self.tag(Tag::Complex);
        self.put(&re.to_bits().to_le_bytes());
        self.put(&im.to_bits().to_le_bytes());
    }

    /// A tag followed by a byte string: its length, then the bytes themselves when shorter
    /// than [`INLINE_LIMIT`], else their 128-bit [`digest`]. The length decides which form
    /// follows, so the encoding stays prefix-free; a caller that computed the digest itself
    /// (detached from the interpreter, or over a strided view) uses [`Self::tagged_digest`]
    /// and gets the same bytes.
    pub fn tagged_bytes(&mut self, tag: Tag, bytes: &[u8]) {
        if bytes.len() < INLINE_LIMIT {
            self.tag_and(tag, (bytes.len() as u64).to_le_bytes());
            self.put(bytes);
        } else {
            self.tagged_digest(tag, bytes.len(), &digest(bytes));
        }
    }

    /// The long form of [`Self::tagged_bytes`], for a body of `len >= INLINE_LIMIT` bytes
    /// whose digest is already known.
    pub fn tagged_digest(&mut self, tag: Tag, len: usize, digest: &Digest) {
        debug_assert!(len >= INLINE_LIMIT);
        self.tag(tag);
        self.len(len);
        self.put(digest);
    }

    /// Appends bytes produced by another writer (an item encoded on its own).
    pub fn extend(&mut self, encoded: &[u8]) {
        self.put(encoded);
    }

    pub fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    /// A length-prefixed byte string without a tag (names inside a tagged structure), always
    /// verbatim: for short, bounded strings such as class names.
    pub fn raw_bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.put(bytes);
    }

    /// A tag and count, for sequences whose items follow.
    pub fn sequence(&mut self, tag: Tag, count: usize) {
        self.tag(tag);
        self.len(count);
    }

    /// A tag, a count, then pre-encoded items sorted bytewise, for containers whose
    /// iteration order must not matter (set, frozenset, dict). Each item is itself
    /// self-delimiting, so concatenating the sorted items stays unambiguous.
    pub fn unordered(&mut self, tag: Tag, mut items: Vec<Vec<u8>>) {
        items.sort_unstable();
        self.sequence(tag, items.len());
        for item in &items {
            self.put(item);
        }
    }

    pub fn back_ref(&mut self, depth: usize) {
        self.tag(Tag::BackRef);
        self.len(depth);
    }

    /// Starts a session-scoped key: [`session_prefix`] written before the arguments.
    pub fn session(&mut self, session_id: &str) {
        self.tag(Tag::Session);
        self.raw_bytes(session_id.as_bytes());
    }
}

/// How much of a key [`describe`] shows before it stops with `…`.
const DESCRIBE_LIMIT: usize = 80;

/// The arguments a key encodes, written for an error message: `1, 'a', (2, None)`. Values
/// of the common kinds (None, booleans, numbers, strings, bytes, tuples, lists, `*args`)
/// are shown; the first of any other kind, or anything past about 80 characters, ends the
/// text with `…`. Never fails: a key it cannot read is shown as `…`.
pub fn describe(key: &[u8]) -> String {
    // A session-scoped key's session is not an argument.
    let start = session_of(key).map_or(0, <[u8]>::len);
    let mut reader = KeyReader {
        bytes: key,
        pos: start,
    };
    let mut parts = Vec::new();
    let mut length = 0;
    while reader.pos < key.len() {
        match reader.value(0) {
            Some(text) if length + text.len() <= DESCRIBE_LIMIT => {
                length += text.len() + 2;
                parts.push(text);
            }
            _ => {
                parts.push("…".to_owned());
                break;
            }
        }
    }
    parts.join(", ")
}

/// `chars` in single quotes, as Python's `repr` writes a string (`prefix` "b" for bytes,
/// whose chars are the byte values): quotes and backslashes escaped, anything not
/// printable as `\xNN` / `\uNNNN`.
fn quoted(chars: impl Iterator<Item = char>, prefix: &str) -> String {
    let mut out = format!("{prefix}'");
    for c in chars {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || (!prefix.is_empty() && !c.is_ascii()) => {
                let code = u32::from(c);
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Reads back what [`KeyWriter`] wrote, for [`describe`] only.
struct KeyReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl KeyReader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A length-prefixed body as [`KeyWriter::tagged_bytes`] wrote it; `None` for a long
    /// one, of which only a digest was kept.
    fn body(&mut self) -> Option<Option<&[u8]>> {
        let len = usize::try_from(self.u64()?).ok()?;
        if len < INLINE_LIMIT {
            Some(Some(self.take(len)?))
        } else {
            self.take(std::mem::size_of::<Digest>())?;
            Some(None)
        }
    }

    fn items(&mut self, depth: usize) -> Option<Vec<String>> {
        let count = self.u64()?;
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Some(items)
    }

    fn value(&mut self, depth: usize) -> Option<String> {
        if depth > 8 {
            return None;
        }
        let tag = *self.take(1)?.first()?;
        let text = match tag {
            t if t == Tag::None as u8 => "None".to_owned(),
            t if t == Tag::False as u8 => "False".to_owned(),
            t if t == Tag::True as u8 => "True".to_owned(),
            t if t == Tag::SmallInt as u8 => {
                i64::from_le_bytes(self.take(8)?.try_into().ok()?).to_string()
            }
            t if t == Tag::Float as u8 => {
                let value = f64::from_bits(self.u64()?);
                format!("{value:?}")
            }
            t if t == Tag::Str as u8 => match self.body()? {
                Some(text) => quoted(String::from_utf8_lossy(text).chars(), ""),
                None => "'…'".to_owned(),
            },
            t if t == Tag::Bytes as u8 || t == Tag::ByteArray as u8 => match self.body()? {
                Some(bytes) => quoted(bytes.iter().map(|&b| char::from(b)), "b"),
                None => "b'…'".to_owned(),
            },
            t if t == Tag::Tuple as u8 => match self.items(depth)?.as_slice() {
                [one] => format!("({one},)"),
                items => format!("({})", items.join(", ")),
            },
            t if t == Tag::List as u8 => format!("[{}]", self.items(depth)?.join(", ")),
            t if t == Tag::VarArgs as u8 => {
                let items = self.items(depth)?;
                if items.is_empty() {
                    return self.value_or_end(depth);
                }
                items.join(", ")
            }
            _ => return None,
        };
        Some(text)
    }

    /// After an empty `*args`: the next value, or nothing at the end of the key.
    fn value_or_end(&mut self, depth: usize) -> Option<String> {
        if self.pos == self.bytes.len() {
            return Some(String::new());
        }
        self.value(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(build: impl FnOnce(&mut KeyWriter)) -> Key {
        let mut w = KeyWriter::new();
        build(&mut w);
        w.finish().to_key()
    }

    fn string(w: &mut KeyWriter, s: &str) {
        w.tagged_bytes(Tag::Str, s.as_bytes());
    }

    #[test]
    fn concatenated_strings_do_not_collide_with_one_string() {
        // Streamlit #16559: ("doc1", "acme") vs ("doc1str:bstr:acme", None)
        let two = key(|w| {
            string(w, "doc1");
            string(w, "acme");
        });
        let one = key(|w| {
            string(w, "doc1str:bstr:acme");
            w.tag(Tag::None);
        });
        assert_ne!(two, one);
    }

    #[test]
    fn split_points_are_visible() {
        let a = key(|w| {
            string(w, "ab");
            string(w, "c");
        });
        let b = key(|w| {
            string(w, "a");
            string(w, "bc");
        });
        assert_ne!(a, b);
    }

    #[test]
    fn type_tags_separate_equal_looking_values() {
        let int_one = key(|w| w.small_int(1));
        let float_one = key(|w| w.float(1.0));
        let str_one = key(|w| string(w, "1"));
        let bytes_one = key(|w| w.tagged_bytes(Tag::Bytes, b"1"));
        let true_ = key(|w| w.tag(Tag::True));
        let all = [&int_one, &float_one, &str_one, &bytes_one, &true_];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn signed_zeros_differ() {
        assert_ne!(key(|w| w.float(0.0)), key(|w| w.float(-0.0)));
    }

    #[test]
    fn unordered_containers_ignore_insertion_order() {
        let items = |order: &[&str]| {
            order
                .iter()
                .map(|s| {
                    let mut w = KeyWriter::new();
                    string(&mut w, s);
                    w.into_bytes()
                })
                .collect::<Vec<_>>()
        };
        let a = key(|w| w.unordered(Tag::Set, items(&["x", "y", "z"])));
        let b = key(|w| w.unordered(Tag::Set, items(&["z", "x", "y"])));
        let c = key(|w| w.unordered(Tag::FrozenSet, items(&["z", "x", "y"])));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn long_byte_strings_are_digested_and_still_distinct() {
        let a = vec![7u8; INLINE_LIMIT * 4];
        let mut b = a.clone();
        b[INLINE_LIMIT * 3 + 5] = 8;
        let ka = key(|w| w.tagged_bytes(Tag::Bytes, &a));
        let kb = key(|w| w.tagged_bytes(Tag::Bytes, &b));
        assert_ne!(ka, kb);
        assert_eq!(ka.as_bytes().len(), 1 + 8 + 16);
        assert_eq!(ka, key(|w| w.tagged_bytes(Tag::Bytes, &a.clone())));
        // The same bytes as another type stay apart.
        assert_ne!(ka, key(|w| w.tagged_bytes(Tag::ByteArray, &a)));
    }

    #[test]
    fn short_and_long_forms_never_meet() {
        // A short string that spells out a long one's (length, digest) form is still a
        // different key: the length prefix tells the forms apart.
        let long = vec![1u8; INLINE_LIMIT];
        let long_key = key(|w| w.tagged_bytes(Tag::Bytes, &long));
        let mut spoof = Vec::new();
        spoof.extend_from_slice(&(INLINE_LIMIT as u64).to_le_bytes());
        spoof.extend_from_slice(&digest(&long));
        let short_key = key(|w| w.tagged_bytes(Tag::Bytes, &spoof[8..]));
        assert_ne!(long_key, short_key);
    }

    #[test]
    fn nesting_is_unambiguous() {
        // ((1,), 2) vs ((1, 2),)
        let a = key(|w| {
            w.sequence(Tag::Tuple, 2);
            w.sequence(Tag::Tuple, 1);
            w.small_int(1);
            w.small_int(2);
        });
        let b = key(|w| {
            w.sequence(Tag::Tuple, 1);
            w.sequence(Tag::Tuple, 2);
            w.small_int(1);
            w.small_int(2);
        });
        assert_ne!(a, b);
    }

    #[test]
    fn describe_shows_common_values_and_stops_at_others() {
        let k = key(|w| {
            w.small_int(-3);
            string(w, "it's");
            w.sequence(Tag::Tuple, 1);
            w.tag(Tag::None);
            w.sequence(Tag::List, 2);
            w.float(1.5);
            w.tag(Tag::True);
            w.tagged_bytes(Tag::Bytes, b"ab");
        });
        assert_eq!(describe(&k), "-3, 'it\\'s', (None,), [1.5, True], b'ab'");
        let k = key(|w| {
            string(w, "a\nb\u{1}é");
            w.tagged_bytes(Tag::Bytes, &[0, 255, b'\\']);
        });
        assert_eq!(describe(&k), "'a\\nb\\x01é', b'\\x00\\xff\\\\'");
        let k = key(|w| {
            w.small_int(1);
            w.tagged_bytes(Tag::Type, b"mod.Class");
            w.small_int(2);
        });
        assert_eq!(describe(&k), "1, …");
        let long = "x".repeat(INLINE_LIMIT);
        let k = key(|w| string(w, &long));
        assert_eq!(describe(&k), "'…'");
        let k = key(|w| string(w, &"y".repeat(100)));
        assert_eq!(describe(&k), "…");
        assert_eq!(
            describe(&[Tag::SmallInt as u8, 1, 2]),
            "…",
            "a truncated key"
        );
        assert_eq!(describe(&[]), "");
    }

    #[test]
    fn session_keys_start_with_their_session_and_never_with_another() {
        let in_session = |id: &str| {
            key(|w| {
                w.session(id);
                string(w, "args");
            })
        };
        let a = in_session("a");
        let ab = in_session("ab");
        assert!(a.starts_with(&session_prefix("a")));
        assert_eq!(session_of(&a), Some(&session_prefix("a")[..]));
        // "a" is a byte-prefix of "ab", but the length field keeps the sessions apart.
        assert!(!ab.starts_with(&session_prefix("a")));
        assert_eq!(session_of(&ab), Some(&session_prefix("ab")[..]));
        assert_ne!(a, ab);
    }

    #[test]
    fn keys_without_a_session_field_have_no_session() {
        assert_eq!(session_of(&key(|w| string(w, "x"))), None);
        assert_eq!(session_of(&[]), None);
        // A truncated field (never written by fastcache) is not mistaken for a session.
        assert_eq!(session_of(&[Tag::Session as u8, 9, 0]), None);
        let mut short = session_prefix("abc");
        short.pop();
        assert_eq!(session_of(&short), None);
    }

    #[test]
    fn describing_a_session_key_shows_only_its_arguments() {
        let in_session = key(|w| {
            w.session("a-session");
            w.small_int(1);
        });
        let plain = key(|w| w.small_int(1));
        assert_eq!(describe(&in_session), describe(&plain));
    }

    /// Counts its drops, standing in for the bindings' pins.
    struct DropCounter(Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn pins_live_until_the_last_key_made_from_the_encoding_is_gone() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut w = KeyWriter::new();
        string(&mut w, "x");
        let pins: Pins = Arc::new(DropCounter(Arc::clone(&drops)));
        let encoded = w.finish_pinned(Some(pins));
        let stored = encoded.to_key();
        let copy = stored.clone();
        drop(encoded);
        drop(stored);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(copy);
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn pins_take_no_part_in_equality() {
        let plain = key(|w| string(w, "x"));
        let mut w = KeyWriter::new();
        string(&mut w, "x");
        let pinned = w.finish_pinned(Some(Arc::new(()))).to_key();
        assert_eq!(plain, pinned);
    }
}
