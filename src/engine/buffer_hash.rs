//! Content digests of large byte buffers, for argument keys that must not carry the bytes.
//!
//! A key keeps small values verbatim; a buffer of [`INLINE_LIMIT`] bytes or more is written as
//! its length plus a 128-bit digest from this module. The digest is XXH3-128 under a secret of
//! 192 random bytes drawn once per process.
//!
//! Why XXH3-128 and not a keyed cryptographic hash: speed. The target is a hit within 1.5×
//! of copying the buffer once. On the 2-core reference machine
//! (`cargo bench --bench buffer_hash --features compare-blake3`, 100 MB), XXH3 (portable
//! SSE2 build) takes 1.6–1.7× a `memcpy`; keyed BLAKE3 with its run-time SIMD choice
//! (AVX-512 there) takes 2.0–2.4× on one thread, and its rayon mode no less on two shared
//! cores — besides adding a thread pool that a forked child could not use. So XXH3 stays,
//! and the bound below is what is claimed.
//!
//! Collision bound: keys also hold the length and type, so only equal-length buffers of one
//! type can meet. For data that does not depend on the secret, XXH3-128 under a uniformly
//! random secret behaves as a 128-bit random function: two different buffers get one digest
//! with probability about 2⁻¹²⁸, and among `n` distinct large buffers a process hashes the
//! chance that any two share a digest is at most about `n² / 2¹²⁹` (10⁹ buffers: ~1.5·10⁻²¹).
//! XXH3 is not a cryptographic MAC: nothing is claimed against someone who crafts buffers
//! while watching which calls hit. The secret never leaves the process and is fresh in every
//! process, so collisions cannot be computed in advance. Users who key untrusted large
//! arguments can make the key exact up to a cryptographic hash with `hash_funcs` (a short
//! digest output is kept verbatim). This replaces Streamlit's sampling, where any two inputs
//! equal on the sample collide with certainty.
//!
//! Everything here is plain Rust: the bindings hand in slices (or a strided view) and decide
//! whether to detach from the interpreter while the digest is computed.

use std::sync::OnceLock;

use xxhash_rust::xxh3::{xxh3_128_with_secret, Xxh3};

/// Buffers shorter than this are kept verbatim in the key. 4 KiB: below it, copying the bytes
/// costs less than the hash (XXH3 runs ~0.4 µs on 4 KiB) and key comparison stays exact with
/// no probabilistic argument at all; above it, a key of 8 + 16 bytes instead of kilobytes
/// keeps the store small and lookups cheap.
pub const INLINE_LIMIT: usize = 4096;

/// Buffers of this size or more are hashed with the interpreter detached. 256 KiB takes
/// ~40 µs to hash, over a hundred times the cost of a detach/attach round trip, so other
/// threads get to run Python while a large argument is hashed; smaller ones are not worth it.
pub const DETACH_LIMIT: usize = 256 * 1024;

/// Size of the bounded scratch block used to gather a strided buffer in logical order.
const GATHER_BLOCK: usize = 64 * 1024;

/// A 128-bit digest, little endian.
pub type Digest = [u8; 16];

/// XXH3's default secret size; the secret is random, so any length ≥ 136 works.
const SECRET_SIZE: usize = 192;

fn secret() -> &'static [u8; SECRET_SIZE] {
    static SECRET: OnceLock<[u8; SECRET_SIZE]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut secret = [0u8; SECRET_SIZE];
        if getrandom::fill(&mut secret).is_err() {
            // No OS randomness (a sandbox without getrandom): fall back to std's per-process
            // random hasher keys, which come from the same source when it works and from
            // address-space randomness otherwise. Digests stay correct; only the secrecy
            // argument of the module comment weakens.
            use std::hash::{BuildHasher, Hasher};
            let state = std::collections::hash_map::RandomState::new();
            for (i, chunk) in secret.chunks_mut(8).enumerate() {
                let mut h = state.build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        secret
    })
}

/// The digest of a contiguous buffer.
pub fn digest(bytes: &[u8]) -> Digest {
    xxh3_128_with_secret(bytes, secret()).to_le_bytes()
}

/// An incremental digest: feeding the same bytes in any chunking gives [`digest`] of their
/// concatenation (XXH3's streaming and one-shot forms agree).
pub struct Digester(Box<Xxh3>);

impl Digester {
    pub fn new() -> Self {
        Digester(Box::new(Xxh3::with_secret(*secret())))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(&self) -> Digest {
        self.0.digest128().to_le_bytes()
    }
}

impl Default for Digester {
    fn default() -> Self {
        Self::new()
    }
}

/// An N-dimensional strided view of memory owned elsewhere (a Python buffer export), read in
/// logical C order: the bytes of element `[0, …, 0]`, then the last index fastest.
pub struct StridedView<'a> {
    ptr: *const u8,
    shape: &'a [usize],
    strides: &'a [isize],
    item_size: usize,
}

// SAFETY: the view only reads memory that its creator guarantees (see `StridedView::new`)
// stays allocated and readable for `'a`, from whichever thread reads it; it owns nothing.
unsafe impl Send for StridedView<'_> {}

impl<'a> StridedView<'a> {
    /// # Safety
    /// For every index within `shape`, the `item_size` bytes at
    /// `ptr + Σ index[i] * strides[i]` must be readable for the whole lifetime `'a` (a Python
    /// buffer export guarantees this until it is released). `shape` and `strides` have equal
    /// lengths.
    pub unsafe fn new(
        ptr: *const u8,
        shape: &'a [usize],
        strides: &'a [isize],
        item_size: usize,
    ) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        StridedView {
            ptr,
            shape,
            strides,
            item_size,
        }
    }

    /// Number of bytes in logical order.
    pub fn len_bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.item_size
    }

    /// Feeds the bytes in logical C order to `sink`, in runs as long as the layout allows.
    pub fn for_each_run(&self, mut sink: impl FnMut(&[u8])) {
        if self.len_bytes() == 0 {
            return;
        }
        let ndim = self.shape.len();
        // The innermost dimensions that are laid out contiguously form one run each.
        let mut run_dims = 0;
        let mut run_len = self.item_size;
        for d in (0..ndim).rev() {
            if self.strides[d] == run_len as isize {
                run_len *= self.shape[d];
                run_dims += 1;
            } else {
                break;
            }
        }
        let outer = ndim - run_dims;
        if outer == 0 {
            // SAFETY: the whole view is one contiguous run of readable bytes (`new`).
            sink(unsafe { std::slice::from_raw_parts(self.ptr, run_len) });
            return;
        }
        // When no dimension is contiguous, the innermost one is walked item by item.
        let (walk_dims, inner_count, inner_stride, piece) = if run_dims == 0 {
            (
                ndim - 1,
                self.shape[ndim - 1],
                self.strides[ndim - 1],
                self.item_size,
            )
        } else {
            (outer, 1, 0, run_len)
        };
        let mut index = vec![0usize; walk_dims];
        loop {
            let mut offset: isize = 0;
            for (i, &ix) in index.iter().enumerate() {
                offset += ix as isize * self.strides[i];
            }
            for k in 0..inner_count {
                let at = offset + k as isize * inner_stride;
                // SAFETY: `index` and `k` stay within `shape`, so `at` addresses an element
                // (or a contiguous run of them) that `new`'s caller guarantees is readable.
                sink(unsafe { std::slice::from_raw_parts(self.ptr.offset(at), piece) });
            }
            // Odometer over the walked dimensions, last fastest.
            let mut d = walk_dims;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < self.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }

    /// The bytes in logical order, copied out (for small views kept verbatim in a key).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len_bytes());
        self.for_each_run(|run| out.extend_from_slice(run));
        out
    }

    /// The digest of the bytes in logical order, equal to [`digest`] of [`Self::to_vec`].
    /// Short pieces are gathered into a bounded block first, so a column of a row-major matrix
    /// costs about a copy, never a hasher call per element, and memory stays bounded.
    pub fn digest(&self) -> Digest {
        let mut digester = Digester::new();
        let mut block: Vec<u8> = Vec::with_capacity(GATHER_BLOCK);
        self.for_each_run(|run| {
            if run.len() >= GATHER_BLOCK {
                if !block.is_empty() {
                    digester.update(&block);
                    block.clear();
                }
                digester.update(run);
                return;
            }
            if block.len() + run.len() > GATHER_BLOCK {
                digester.update(&block);
                block.clear();
            }
            block.extend_from_slice(run);
        });
        if !block.is_empty() {
            digester.update(&block);
        }
        digester.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect()
    }

    #[test]
    fn streaming_agrees_with_one_shot_for_any_chunking() {
        for n in [0, 1, 100, 240, 241, 4096, 70_000, 300_001] {
            let data = sample(n);
            let whole = digest(&data);
            for chunk in [1, 7, 64, 4096, 65_536] {
                let mut d = Digester::new();
                for piece in data.chunks(chunk) {
                    d.update(piece);
                }
                assert_eq!(d.finish(), whole, "n={n} chunk={chunk}");
            }
        }
    }

    #[test]
    fn one_differing_byte_changes_the_digest() {
        let a = sample(1 << 20);
        let mut b = a.clone();
        b[987_654] ^= 1;
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn contiguous_view_is_one_run() {
        let data = sample(6 * 8);
        let shape = [2, 3];
        let strides = [24, 8];
        let view = unsafe { StridedView::new(data.as_ptr(), &shape, &strides, 8) };
        assert_eq!(view.to_vec(), data);
        assert_eq!(view.digest(), digest(&data));
    }

    #[test]
    fn transposed_view_reads_in_logical_order() {
        // A 3x2 matrix of u16 stored row-major, viewed transposed (2x3).
        let stored: Vec<u16> = vec![1, 2, 3, 4, 5, 6];
        let bytes: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = [2, 3];
        let strides = [2, 4];
        let view = unsafe { StridedView::new(bytes.as_ptr(), &shape, &strides, 2) };
        let logical: Vec<u8> = [1u16, 3, 5, 2, 4, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(view.to_vec(), logical);
        assert_eq!(view.digest(), digest(&logical));
    }

    #[test]
    fn negative_and_sliced_strides() {
        // Every other element, backwards: [9, 7, 5, 3, 1] of 0..10 (u8).
        let data: Vec<u8> = (0..10).collect();
        let shape = [5];
        let strides = [-2];
        let view = unsafe { StridedView::new(data.as_ptr().add(9), &shape, &strides, 1) };
        assert_eq!(view.to_vec(), vec![9, 7, 5, 3, 1]);
    }

    #[test]
    fn large_strided_digest_matches_contiguous_copy() {
        // Rows of 1000 u8 with a 1500-byte pitch: runs shorter than the gather block.
        let rows = 300;
        let data = sample(rows * 1500);
        let shape = [rows, 1000];
        let strides = [1500, 1];
        let view = unsafe { StridedView::new(data.as_ptr(), &shape, &strides, 1) };
        let copy = view.to_vec();
        assert_eq!(copy.len(), rows * 1000);
        assert_eq!(view.digest(), digest(&copy));
    }

    #[test]
    fn empty_view_has_no_bytes() {
        let data = [0u8; 4];
        let shape = [0, 3];
        let strides = [12, 4];
        let view = unsafe { StridedView::new(data.as_ptr(), &shape, &strides, 4) };
        assert!(view.to_vec().is_empty());
        assert_eq!(view.digest(), digest(&[]));
    }
}
