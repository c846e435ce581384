//! Codec round trips and every malformed-datagram case.
#![allow(clippy::unwrap_used)]

use languard_battleye::packet::{MAX_PACKET_SIZE, frame};
use languard_battleye::{ClientPacket, PacketError, ServerPacket};

fn client_samples() -> Vec<ClientPacket> {
    vec![
        ClientPacket::Login {
            password: "s3cret pässwörd".into(),
        },
        ClientPacket::Login {
            password: String::new(),
        },
        ClientPacket::Command {
            seq: 0,
            command: "players".into(),
        },
        ClientPacket::Command {
            seq: 255,
            command: String::new(),
        },
        ClientPacket::Command {
            seq: 17,
            command: "say -1 Привет".into(),
        },
        ClientPacket::MessageAck { seq: 0 },
        ClientPacket::MessageAck { seq: 255 },
    ]
}

fn server_samples() -> Vec<ServerPacket> {
    vec![
        ServerPacket::LoginResult { ok: true },
        ServerPacket::LoginResult { ok: false },
        ServerPacket::CommandResponse {
            seq: 3,
            text: String::new(),
        },
        ServerPacket::CommandResponse {
            seq: 200,
            text: "Players on server:\n(0 players in total)".into(),
        },
        ServerPacket::CommandPart {
            seq: 9,
            total: 3,
            index: 2,
            payload: vec![0xD0, 0x9C, 0x00, 0xFF],
        },
        ServerPacket::CommandPart {
            seq: 9,
            total: 1,
            index: 0,
            payload: Vec::new(),
        },
        ServerPacket::Message {
            seq: 255,
            text: "(Global) bot: Текущее время".into(),
        },
    ]
}

#[test]
fn client_round_trip() {
    for p in client_samples() {
        let bytes = p.encode();
        assert_eq!(&bytes[..2], b"BE");
        assert_eq!(ClientPacket::decode(&bytes).unwrap(), p);
    }
}

#[test]
fn server_round_trip() {
    for p in server_samples() {
        let bytes = p.encode();
        assert_eq!(ServerPacket::decode(&bytes).unwrap(), p);
    }
}

#[test]
fn exact_wire_bytes() {
    // Keep-alive with seq 0 as documented: 'B' 'E' crc 0xFF 0x01 0x00.
    let bytes = ClientPacket::Command {
        seq: 0,
        command: String::new(),
    }
    .encode();
    let crc = crc32fast::hash(&[0xFF, 0x01, 0x00]).to_le_bytes();
    assert_eq!(
        bytes,
        [b'B', b'E', crc[0], crc[1], crc[2], crc[3], 0xFF, 0x01, 0x00]
    );
    // Multi-part header layout.
    let bytes = ServerPacket::CommandPart {
        seq: 5,
        total: 2,
        index: 1,
        payload: b"ab".to_vec(),
    }
    .encode();
    assert_eq!(&bytes[7..], [0x01, 5, 0x00, 2, 1, b'a', b'b']);
    // Login answers.
    assert_eq!(
        &ServerPacket::LoginResult { ok: true }.encode()[7..],
        [0x00, 0x01]
    );
    assert_eq!(
        &ServerPacket::LoginResult { ok: false }.encode()[7..],
        [0x00, 0x00]
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let bytes = frame(&[0x02, 7, b'h', 0xFF, b'i']);
    assert_eq!(
        ServerPacket::decode(&bytes).unwrap(),
        ServerPacket::Message {
            seq: 7,
            text: "h\u{FFFD}i".into()
        }
    );
}

#[test]
fn empty() {
    assert_eq!(ServerPacket::decode(&[]), Err(PacketError::Empty));
    assert_eq!(ClientPacket::decode(&[]), Err(PacketError::Empty));
}

#[test]
fn bad_magic() {
    let mut bytes = ServerPacket::LoginResult { ok: true }.encode();
    bytes[0] = b'X';
    assert_eq!(ServerPacket::decode(&bytes), Err(PacketError::BadMagic));
    assert_eq!(ServerPacket::decode(b"X"), Err(PacketError::BadMagic));
    assert_eq!(ServerPacket::decode(b"Bx"), Err(PacketError::BadMagic));
    assert_eq!(
        ClientPacket::decode(b"GET / HTTP/1.1\r\n"),
        Err(PacketError::BadMagic)
    );
}

#[test]
fn bad_crc() {
    let mut bytes = ServerPacket::CommandResponse {
        seq: 1,
        text: "hello".into(),
    }
    .encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    assert!(matches!(
        ServerPacket::decode(&bytes),
        Err(PacketError::BadCrc { .. })
    ));
    let mut bytes = ClientPacket::MessageAck { seq: 1 }.encode();
    bytes[2] ^= 1;
    assert!(matches!(
        ClientPacket::decode(&bytes),
        Err(PacketError::BadCrc { .. })
    ));
}

#[test]
fn bad_separator() {
    let mut bytes = ServerPacket::LoginResult { ok: true }.encode();
    bytes[6] = 0xFE;
    assert_eq!(ServerPacket::decode(&bytes), Err(PacketError::BadSeparator));
}

#[test]
fn truncated() {
    let bytes = ServerPacket::CommandResponse {
        seq: 1,
        text: "hello".into(),
    }
    .encode();
    // Every prefix shorter than the header is truncated (or an incomplete magic).
    for n in 1..7 {
        assert_eq!(
            ServerPacket::decode(&bytes[..n]),
            Err(PacketError::Truncated { len: n }),
            "prefix {n}"
        );
    }
    // Header without payload (valid CRC over just 0xFF).
    assert_eq!(
        ServerPacket::decode(&frame(&[])),
        Err(PacketError::Truncated { len: 7 })
    );
    // Type byte without sequence number.
    assert!(matches!(
        ServerPacket::decode(&frame(&[0x01])),
        Err(PacketError::Truncated { .. })
    ));
    assert!(matches!(
        ServerPacket::decode(&frame(&[0x02])),
        Err(PacketError::Truncated { .. })
    ));
    assert!(matches!(
        ServerPacket::decode(&frame(&[0x00])),
        Err(PacketError::Truncated { .. })
    ));
    assert!(matches!(
        ClientPacket::decode(&frame(&[0x01])),
        Err(PacketError::Truncated { .. })
    ));
    // Multi-part marker without count/index.
    assert!(matches!(
        ServerPacket::decode(&frame(&[0x01, 4, 0x00, 2])),
        Err(PacketError::Truncated { .. })
    ));
    // A prefix with a cut payload fails the CRC instead.
    assert!(matches!(
        ServerPacket::decode(&bytes[..bytes.len() - 1]),
        Err(PacketError::BadCrc { .. })
    ));
}

#[test]
fn too_large() {
    let text = "x".repeat(MAX_PACKET_SIZE);
    let bytes = ServerPacket::Message { seq: 1, text }.encode();
    assert!(bytes.len() > MAX_PACKET_SIZE);
    assert_eq!(
        ServerPacket::decode(&bytes),
        Err(PacketError::TooLarge {
            len: bytes.len(),
            max: MAX_PACKET_SIZE
        })
    );
    // Exactly at the limit is fine.
    let text = "x".repeat(MAX_PACKET_SIZE - 9);
    let bytes = ServerPacket::Message { seq: 1, text }.encode();
    assert_eq!(bytes.len(), MAX_PACKET_SIZE);
    assert!(ServerPacket::decode(&bytes).is_ok());
}

#[test]
fn unknown_type() {
    assert_eq!(
        ServerPacket::decode(&frame(&[0x03, 1, 2])),
        Err(PacketError::UnknownType(0x03))
    );
    assert_eq!(
        ClientPacket::decode(&frame(&[0xFF])),
        Err(PacketError::UnknownType(0xFF))
    );
}

#[test]
fn bad_login_result_and_multipart_header() {
    assert_eq!(
        ServerPacket::decode(&frame(&[0x00, 0x02])),
        Err(PacketError::BadLoginResult)
    );
    assert_eq!(
        ServerPacket::decode(&frame(&[0x00, 0x01, 0x01])),
        Err(PacketError::BadLoginResult)
    );
    assert_eq!(
        ServerPacket::decode(&frame(&[0x01, 4, 0x00, 0, 0, b'x'])),
        Err(PacketError::BadMultipart { total: 0, index: 0 })
    );
    assert_eq!(
        ServerPacket::decode(&frame(&[0x01, 4, 0x00, 2, 2, b'x'])),
        Err(PacketError::BadMultipart { total: 2, index: 2 })
    );
    assert_eq!(
        ClientPacket::decode(&frame(&[0x02, 4, 5])),
        Err(PacketError::TrailingBytes)
    );
}

#[test]
fn errors_display() {
    let e = PacketError::BadCrc {
        expected: 1,
        actual: 2,
    };
    assert!(e.to_string().contains("checksum"));
}
