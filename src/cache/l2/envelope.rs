//! The value envelope stored in Redis: a 4-byte header, then the payload.
//!
//! ```text
//! byte 0..2  magic 0xAC 0x43 ("agent-core cache")
//! byte 2     version (1)
//! byte 3     flags: bits 0-1 codec (0 = none, 1 = lz4 block with a u32 LE length prefix);
//!            the other bits are reserved and must be 0
//! byte 4..   payload: UTF-8 JSON, compressed as the codec says
//! ```
//!
//! Anything else under one of our keys (no magic, another version, unknown flags, a
//! decompression failure, invalid UTF-8) decodes to [`Decoded::Corrupt`]: the tier answers a
//! miss and counts it, it never fails the caller.

use redis::{RedisWrite, ToRedisArgs};

use crate::buffer_pool;

pub const MAGIC: [u8; 2] = [0xAC, 0x43];
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 4;

const CODEC_MASK: u8 = 0b11;
const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;

/// Largest decompressed payload accepted (a corrupt length prefix must not allocate GBs).
pub const MAX_DECOMPRESSED: usize = 512 * 1024 * 1024;
/// lz4's best possible ratio is about 255:1; a prefix claiming more is corrupt.
const LZ4_MAX_RATIO: usize = 255;

/// How payloads are compressed when written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// lz4 (block format) for payloads of at least `threshold` bytes, when it saves space.
    Lz4 {
        threshold: usize,
    },
}

/// An encoded value, written into the Redis command as one argument without an extra copy
/// of an uncompressed payload.
pub struct Envelope<'a> {
    header: [u8; HEADER_LEN],
    body: std::borrow::Cow<'a, [u8]>,
}

impl Envelope<'_> {
    pub fn len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn is_compressed(&self) -> bool {
        self.header[3] & CODEC_MASK != CODEC_NONE
    }

    /// Header and body as one buffer (tests, tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.header);
        v.extend_from_slice(&self.body);
        v
    }
}

impl ToRedisArgs for Envelope<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + RedisWrite,
    {
        use std::io::Write;
        let mut w = out.writer_for_next_arg();
        // Writing into an in-memory command buffer cannot fail.
        let _ = w.write_all(&self.header);
        let _ = w.write_all(&self.body);
    }
}

fn header(codec: u8) -> [u8; HEADER_LEN] {
    [MAGIC[0], MAGIC[1], VERSION, codec]
}

/// Wraps a payload, compressing it when `compression` says so and it pays.
pub fn encode(payload: &[u8], compression: Compression) -> Envelope<'_> {
    if let Compression::Lz4 { threshold } = compression {
        if payload.len() >= threshold && payload.len() <= u32::MAX as usize {
            let packed = lz4_flex::block::compress_prepend_size(payload);
            if packed.len() < payload.len() {
                return Envelope {
                    header: header(CODEC_LZ4),
                    body: packed.into(),
                };
            }
        }
    }
    Envelope {
        header: header(CODEC_NONE),
        body: payload.into(),
    }
}

/// Why a stored value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptKind {
    BadMagic,
    BadVersion,
    BadFlags,
    Decompression,
    InvalidUtf8,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Value(String),
    Corrupt(CorruptKind),
}

/// Unwraps a stored value into its UTF-8 payload. Takes the buffer by value so that an
/// uncompressed payload is reused in place.
pub fn decode(mut raw: Vec<u8>) -> Decoded {
    if raw.len() < HEADER_LEN || raw[0..2] != MAGIC {
        return Decoded::Corrupt(CorruptKind::BadMagic);
    }
    if raw[2] != VERSION {
        return Decoded::Corrupt(CorruptKind::BadVersion);
    }
    let flags = raw[3];
    if flags & !CODEC_MASK != 0 {
        return Decoded::Corrupt(CorruptKind::BadFlags);
    }
    let bytes = match flags & CODEC_MASK {
        CODEC_NONE => {
            raw.drain(..HEADER_LEN);
            raw
        }
        CODEC_LZ4 => match decompress_lz4(&raw[HEADER_LEN..]) {
            Some(v) => v,
            None => return Decoded::Corrupt(CorruptKind::Decompression),
        },
        _ => return Decoded::Corrupt(CorruptKind::BadFlags),
    };
    if !simdutf::validate_utf8(&bytes) {
        buffer_pool::give_back(bytes);
        return Decoded::Corrupt(CorruptKind::InvalidUtf8);
    }
    // SAFETY: the bytes were just validated as UTF-8.
    Decoded::Value(unsafe { String::from_utf8_unchecked(bytes) })
}

fn decompress_lz4(body: &[u8]) -> Option<Vec<u8>> {
    let prefix: [u8; 4] = body.get(..4)?.try_into().ok()?;
    let claimed = u32::from_le_bytes(prefix) as usize;
    let limit = MAX_DECOMPRESSED.min(body.len().saturating_mul(LZ4_MAX_RATIO));
    if claimed > limit {
        return None;
    }
    // Into a reused buffer (`buffer_pool`): its pages are in memory already and it is not
    // zeroed first. It goes back to the pool once converted for V8 (`text.rs`).
    let mut out = buffer_pool::take::<u8>(claimed);
    match lz4_flex::block::decompress_into(&body[4..], &mut out) {
        Ok(n) if n == claimed => Some(out),
        _ => {
            buffer_pool::give_back(out);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(n: usize) -> String {
        let mut s = String::from("[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#"{{"role":"user","content":"message number {i} about caching — ünïcode","id":{i}}}"#
            ));
        }
        s.push(']');
        s
    }

    #[test]
    fn round_trips_uncompressed() {
        let v = json(3);
        let e = encode(v.as_bytes(), Compression::None);
        assert!(!e.is_compressed());
        let raw = e.to_vec();
        assert_eq!(&raw[..4], &[0xAC, 0x43, 1, 0]);
        assert_eq!(decode(raw), Decoded::Value(v));
    }

    /// Decompression goes into reused buffers: values of other sizes decoded one after
    /// another must each come back exactly (a reused buffer still holds the previous one).
    #[test]
    fn lz4_round_trips_in_reused_buffers() {
        for n in [60, 600, 3000, 600, 60, 3000, 200] {
            let v = json(n);
            let e = encode(v.as_bytes(), Compression::Lz4 { threshold: 1024 });
            assert!(e.is_compressed());
            assert_eq!(decode(e.to_vec()), Decoded::Value(v));
        }
    }

    #[test]
    fn round_trips_lz4_above_threshold_only() {
        let v = json(200);
        let e = encode(v.as_bytes(), Compression::Lz4 { threshold: 1024 });
        assert!(e.is_compressed());
        assert!(e.len() < v.len());
        assert_eq!(decode(e.to_vec()), Decoded::Value(v));
        let small = json(1);
        let e = encode(small.as_bytes(), Compression::Lz4 { threshold: 1024 });
        assert!(!e.is_compressed());
    }

    #[test]
    fn incompressible_payload_is_stored_plain() {
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: String = (0..4096).map(|_| rng.alphanumeric()).collect();
        let e = encode(noise.as_bytes(), Compression::Lz4 { threshold: 16 });
        assert!(!e.is_compressed());
        assert_eq!(decode(e.to_vec()), Decoded::Value(noise));
    }

    #[test]
    fn foreign_and_corrupt_values_are_refused() {
        assert_eq!(
            decode(b"{\"a\":1}".to_vec()),
            Decoded::Corrupt(CorruptKind::BadMagic)
        );
        assert_eq!(decode(vec![]), Decoded::Corrupt(CorruptKind::BadMagic));
        assert_eq!(
            decode(vec![0xAC, 0x43, 1]),
            Decoded::Corrupt(CorruptKind::BadMagic)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 2, 0, b'1']),
            Decoded::Corrupt(CorruptKind::BadVersion)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 0x80, b'1']),
            Decoded::Corrupt(CorruptKind::BadFlags)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 3, b'1']),
            Decoded::Corrupt(CorruptKind::BadFlags)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 0, 0xFF, 0xFE]),
            Decoded::Corrupt(CorruptKind::InvalidUtf8)
        );
        // lz4 with garbage body, and with a length prefix claiming 4 GiB.
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 1, 10, 0, 0, 0, 0xFF, 0xFF]),
            Decoded::Corrupt(CorruptKind::Decompression)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]),
            Decoded::Corrupt(CorruptKind::Decompression)
        );
        assert_eq!(
            decode(vec![0xAC, 0x43, 1, 1, 1]),
            Decoded::Corrupt(CorruptKind::Decompression)
        );
    }

    /// A length prefix that does not match what the block holds (longer or shorter) is
    /// refused: a reused buffer must never pass its old tail off as the value.
    #[test]
    fn lz4_length_prefix_must_match() {
        let v = json(100);
        let raw = encode(v.as_bytes(), Compression::Lz4 { threshold: 0 }).to_vec();
        let prefix = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
        for claimed in [prefix + 1, prefix + 100, prefix - 1] {
            let mut r = raw.clone();
            r[4..8].copy_from_slice(&claimed.to_le_bytes());
            assert_eq!(decode(r), Decoded::Corrupt(CorruptKind::Decompression));
        }
    }

    #[test]
    fn truncated_lz4_never_panics() {
        let v = json(100);
        let raw = encode(v.as_bytes(), Compression::Lz4 { threshold: 0 }).to_vec();
        for cut in 0..raw.len() {
            let _ = decode(raw[..cut].to_vec());
        }
        // Every single-byte flip either decodes to something or is refused; none panics.
        for i in HEADER_LEN..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 0x5A;
            let _ = decode(r);
        }
    }
}
