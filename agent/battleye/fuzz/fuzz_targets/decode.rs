//! Any datagram: decoding never panics, and whatever decodes re-encodes to the same value.
#![no_main]

use languard_battleye::{ClientPacket, ServerPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ServerPacket::decode(data) {
        assert_eq!(ServerPacket::decode(&p.encode()).ok(), Some(p));
    }
    if let Ok(p) = ClientPacket::decode(data) {
        assert_eq!(ClientPacket::decode(&p.encode()).ok(), Some(p));
    }
    // Also reach the payload decoder past the CRC check.
    let framed = languard_battleye::packet::frame(data);
    if let Ok(p) = ServerPacket::decode(&framed) {
        assert_eq!(ServerPacket::decode(&p.encode()).ok(), Some(p));
    }
    if let Ok(p) = ClientPacket::decode(&framed) {
        assert_eq!(ClientPacket::decode(&p.encode()).ok(), Some(p));
    }
});
