//! On-disk encoding of segment headers and records (see the crate docs for the layout).

use super::Class;

/// Segment file header: magic, format version, lane, reserved.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"LGSPOOL\0";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;

/// Record header: magic, length, seq, class, reserved, CRC32.
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"LGR1";
pub(crate) const RECORD_HEADER_LEN: usize = 24;

pub(crate) fn encode_segment_header(lane: u8) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12] = lane;
    h
}

/// True when `bytes` starts with a segment header of this format for `lane`.
pub(crate) fn segment_header_ok(bytes: &[u8], lane: u8) -> bool {
    bytes.len() >= SEGMENT_HEADER_LEN as usize
        && &bytes[..8] == SEGMENT_MAGIC
        && bytes[8..12] == FORMAT_VERSION.to_le_bytes()
        && bytes[12] == lane
}

fn crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[4..20]);
    h.update(payload);
    h.finalize()
}

/// Appends one encoded record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, seq: u64, class: Class, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX); // callers bound the length first
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&RECORD_MAGIC);
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&seq.to_le_bytes());
    h[16] = class as u8;
    let c = crc(&h, payload);
    h[20..24].copy_from_slice(&c.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
}

/// One record decoded in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub seq: u64,
    pub class: Class,
    pub payload: &'a [u8],
}

impl RawRecord<'_> {
    pub(crate) fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Fewer bytes than the header or the length it announces: a torn tail (or a read that
    /// needs more bytes).
    Incomplete { needed: usize },
    /// Bad magic, class, reserved bytes, oversized length or CRC mismatch.
    Corrupt,
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Decodes the record at the start of `buf`. Never panics on any input.
pub(crate) fn decode_record(buf: &[u8], max_payload: u32) -> Result<RawRecord<'_>, DecodeError> {
    if buf.len() < RECORD_HEADER_LEN {
        // A prefix of a header can still be checked against the magic so that garbage is not
        // mistaken for a torn record.
        let n = buf.len().min(4);
        if buf[..n] != RECORD_MAGIC[..n] {
            return Err(DecodeError::Corrupt);
        }
        return Err(DecodeError::Incomplete {
            needed: RECORD_HEADER_LEN,
        });
    }
    let h = &buf[..RECORD_HEADER_LEN];
    if h[..4] != RECORD_MAGIC || h[17..20] != [0, 0, 0] {
        return Err(DecodeError::Corrupt);
    }
    let len = le_u32(&h[4..8]);
    if len > max_payload {
        return Err(DecodeError::Corrupt);
    }
    let Some(class) = Class::from_u8(h[16]) else {
        return Err(DecodeError::Corrupt);
    };
    let total = RECORD_HEADER_LEN + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Incomplete { needed: total });
    }
    let payload = &buf[RECORD_HEADER_LEN..total];
    if le_u32(&h[20..24]) != crc(h, payload) {
        return Err(DecodeError::Corrupt);
    }
    Ok(RawRecord {
        seq: le_u64(&h[8..16]),
        class,
        payload,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let mut v = Vec::new();
        encode_record(&mut v, 42, Class::Log, b"hello");
        let r = decode_record(&v, 1024).unwrap();
        assert_eq!((r.seq, r.class, r.payload), (42, Class::Log, &b"hello"[..]));
        assert_eq!(r.encoded_len(), v.len());
        for cut in 0..v.len() {
            assert!(matches!(
                decode_record(&v[..cut], 1024),
                Err(DecodeError::Incomplete { .. })
            ));
        }
        for i in 0..v.len() {
            let mut w = v.clone();
            w[i] ^= 0x10;
            assert!(decode_record(&w, 1024).is_err(), "flip at {i} not detected");
        }
        assert!(matches!(decode_record(&v, 4), Err(DecodeError::Corrupt)));
        // Pseudo-random garbage never panics.
        let mut x: u32 = 12345;
        let junk: Vec<u8> = (0..4096)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        for i in 0..junk.len() {
            let _ = decode_record(&junk[i..], u32::MAX);
        }
    }
}
