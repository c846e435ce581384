//! Splitting a byte stream into lines: partial lines, CRLF, overlong lines, lossy decoding.

/// Cuts a byte stream into lines.
///
/// Holds at most `max` bytes of the line being assembled; bytes beyond are counted, not kept,
/// so a 10 MB line without a newline costs `max` bytes of memory.
#[derive(Debug)]
pub(crate) struct LineAssembler {
    max: usize,
    buf: Vec<u8>,
    /// Bytes of the current line beyond `max`, dropped.
    dropped: u64,
    /// The last dropped byte was `\r` (so it was a line ending, not content).
    dropped_cr: bool,
}

/// A line cut from the stream, borrowed for the callback.
pub(crate) struct RawLine<'a> {
    /// The kept bytes, without `\n` and without a final `\r`.
    pub bytes: &'a [u8],
    /// Content bytes dropped because the line was longer than the cap.
    pub dropped: u64,
    /// File offset just after the line (after its `\n`, or after the last byte of a flushed
    /// partial line).
    pub offset_after: u64,
}

impl LineAssembler {
    pub(crate) fn new(max: usize) -> Self {
        LineAssembler {
            max,
            buf: Vec::new(),
            dropped: 0,
            dropped_cr: false,
        }
    }

    /// Whether bytes of an unfinished line are held.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.dropped > 0
    }

    /// Forgets the unfinished line (after a truncation).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.dropped = 0;
        self.dropped_cr = false;
    }

    /// Feeds `chunk`, which starts at file offset `start`; calls `emit` for each complete line.
    pub(crate) fn feed(&mut self, chunk: &[u8], start: u64, mut emit: impl FnMut(RawLine<'_>)) {
        let mut pos = 0usize;
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let seg = &rest[..i];
                    let offset_after = start + (pos + i + 1) as u64;
                    if !self.has_partial() && seg.len() <= self.max {
                        // Fast path: the whole line is inside this chunk.
                        emit(RawLine {
                            bytes: strip_cr(seg),
                            dropped: 0,
                            offset_after,
                        });
                    } else {
                        self.push(seg);
                        self.emit_held(offset_after, &mut emit);
                    }
                    pos += i + 1;
                }
                None => {
                    self.push(rest);
                    pos = chunk.len();
                }
            }
        }
    }

    /// Emits the unfinished line as it is (idle timeout, or its file is finished).
    pub(crate) fn flush_partial(&mut self, offset_after: u64, mut emit: impl FnMut(RawLine<'_>)) {
        if self.has_partial() {
            self.emit_held(offset_after, &mut emit);
        }
    }

    fn push(&mut self, seg: &[u8]) {
        if seg.is_empty() {
            return;
        }
        let room = self.max.saturating_sub(self.buf.len());
        let keep = room.min(seg.len());
        self.buf.extend_from_slice(&seg[..keep]);
        let drop = seg.len() - keep;
        if drop > 0 {
            self.dropped += drop as u64;
            self.dropped_cr = seg.last() == Some(&b'\r');
        }
    }

    fn emit_held(&mut self, offset_after: u64, emit: &mut impl FnMut(RawLine<'_>)) {
        let mut dropped = self.dropped;
        if dropped > 0 && self.dropped_cr {
            dropped -= 1;
        }
        let bytes = if dropped == 0 && self.dropped == 0 {
            strip_cr(&self.buf)
        } else {
            &self.buf[..]
        };
        emit(RawLine {
            bytes,
            dropped,
            offset_after,
        });
        self.reset();
    }
}

fn strip_cr(b: &[u8]) -> &[u8] {
    match b.split_last() {
        Some((b'\r', rest)) => rest,
        _ => b,
    }
}

/// Decodes a line lossily (invalid UTF-8 becomes U+FFFD) and appends the truncation marker.
pub(crate) fn decode(bytes: &[u8], dropped: u64) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if dropped > 0 {
        use std::fmt::Write as _;
        let _ = write!(s, " [... line truncated, {dropped} bytes dropped]");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<(String, u64)>, LineAssembler) {
        let mut a = LineAssembler::new(max);
        let mut out = Vec::new();
        let mut off = 0u64;
        for c in chunks {
            a.feed(c, off, |l| {
                out.push((decode(l.bytes, l.dropped), l.offset_after))
            });
            off += c.len() as u64;
        }
        (out, a)
    }

    #[test]
    fn splits_and_strips_crlf() {
        let (out, a) = run(100, &[b"ab\r\ncd\n\ne"]);
        assert_eq!(
            out,
            vec![("ab".into(), 4), ("cd".into(), 7), ("".into(), 8)]
        );
        assert!(a.has_partial());
    }

    #[test]
    fn joins_across_chunks_including_split_utf8() {
        let (out, _) = run(100, &[b"h\xc3", b"\xa9llo\r", b"\nx\n"]);
        assert_eq!(out, vec![("héllo".into(), 8), ("x".into(), 10)]);
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let (out, _) = run(100, &[b"a\xff\xfeb\n"]);
        assert_eq!(out, vec![("a\u{fffd}\u{fffd}b".into(), 5)]);
    }

    #[test]
    fn caps_long_lines() {
        let (out, a) = run(4, &[b"abcdefgh", b"ij\r\nok\n"]);
        assert_eq!(
            out,
            vec![
                ("abcd [... line truncated, 6 bytes dropped]".into(), 12),
                ("ok".into(), 15)
            ]
        );
        assert!(!a.has_partial());
        assert!(a.buf.capacity() < 64);
        // Exactly at the cap: not truncated, and a CR beyond the cap is not content.
        let (out, _) = run(4, &[b"abcd\r\n"]);
        assert_eq!(out, vec![("abcd".into(), 6)]);
    }

    #[test]
    fn ten_megabyte_line_keeps_memory_at_the_cap() {
        let max = 64 * 1024;
        let mut a = LineAssembler::new(max);
        let chunk = vec![b'y'; 64 * 1024];
        let mut n = 0;
        for i in 0..160u64 {
            a.feed(&chunk, i * chunk.len() as u64, |_| n += 1);
            assert!(a.buf.capacity() <= 2 * max);
        }
        assert_eq!(n, 0);
        let mut got = None;
        a.feed(b"\nz\n", 160 * 64 * 1024, |l| {
            got.get_or_insert((l.bytes.len(), l.dropped, l.offset_after));
        });
        assert_eq!(
            got,
            Some((max, 160 * 64 * 1024 - max as u64, 160 * 64 * 1024 + 1))
        );
    }

    #[test]
    fn flushes_partial() {
        let mut a = LineAssembler::new(100);
        a.feed(b"abc", 10, |_| panic!("no line yet"));
        let mut got = None;
        a.flush_partial(13, |l| {
            got = Some((decode(l.bytes, l.dropped), l.offset_after))
        });
        assert_eq!(got, Some(("abc".into(), 13)));
        assert!(!a.has_partial());
    }
}
