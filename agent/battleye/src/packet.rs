//! The BattlEye RCon wire format: encoding and decoding of single UDP datagrams.
//!
//! Every datagram is `'B' 'E'`, a CRC32 (IEEE, little-endian) computed over everything after it
//! (starting with the `0xFF`), the byte `0xFF`, then the payload whose first byte is the packet
//! type. The same type byte means different things in each direction (a client's `0x00` carries a
//! password, a server's `0x00` carries the login result), so there is one typed enum per
//! direction: [`ClientPacket`] and [`ServerPacket`].
//!
//! Decoding never panics and never allocates more than the input size; anything that does not
//! match the format is a [`PacketError`].

use thiserror::Error;

/// The largest datagram [`ServerPacket::decode`] and [`ClientPacket::decode`] accept (64 KiB).
/// Use a receive buffer of at least this size.
pub const MAX_PACKET_SIZE: usize = 64 * 1024;

/// Length of the fixed header: `'B' 'E'`, 4 CRC bytes, `0xFF`.
pub const HEADER_LEN: usize = 7;

/// Type byte of login packets.
pub const TYPE_LOGIN: u8 = 0x00;
/// Type byte of command packets and their answers.
pub const TYPE_COMMAND: u8 = 0x01;
/// Type byte of server messages and their acknowledgements.
pub const TYPE_MESSAGE: u8 = 0x02;

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// The datagram has no bytes at all.
    #[error("empty datagram")]
    Empty,
    /// The datagram ends before a complete header or packet body.
    #[error("truncated packet ({len} bytes)")]
    Truncated {
        /// Length of the datagram.
        len: usize,
    },
    /// The datagram is larger than [`MAX_PACKET_SIZE`].
    #[error("packet too large ({len} bytes, max {max})")]
    TooLarge {
        /// Length of the datagram.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The datagram does not start with `'B' 'E'`.
    #[error("bad magic (not a BattlEye RCon packet)")]
    BadMagic,
    /// The byte after the CRC is not `0xFF`.
    #[error("missing 0xFF separator after the checksum")]
    BadSeparator,
    /// The checksum does not match the content.
    #[error("bad checksum (packet says {expected:#010x}, content gives {actual:#010x})")]
    BadCrc {
        /// CRC carried by the packet.
        expected: u32,
        /// CRC computed over the content.
        actual: u32,
    },
    /// The type byte is not one of the known types.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A server login answer that is neither `0x00` nor `0x01`, or has extra bytes.
    #[error("malformed login answer")]
    BadLoginResult,
    /// A multi-part header with zero parts or an index outside the part count.
    #[error("bad multi-part header (part {index} of {total})")]
    BadMultipart {
        /// Total number of parts claimed.
        total: u8,
        /// 0-based index claimed.
        index: u8,
    },
    /// Bytes after a packet that must not carry any (message acknowledgement).
    #[error("unexpected trailing bytes")]
    TrailingBytes,
}

/// A packet sent by an RCon client to the server.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientPacket {
    /// `0x00` + password.
    Login {
        /// The RCon password (never shown by `Debug`).
        password: String,
    },
    /// `0x01` + seq + command text. An empty command is a keep-alive.
    Command {
        /// Sequence number chosen by the client.
        seq: u8,
        /// Command text.
        command: String,
    },
    /// `0x02` + seq: acknowledgement of a server message.
    MessageAck {
        /// Sequence number of the acknowledged message.
        seq: u8,
    },
}

impl std::fmt::Debug for ClientPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Login { .. } => f
                .debug_struct("Login")
                .field("password", &"<redacted>")
                .finish(),
            Self::Command { seq, command } => f
                .debug_struct("Command")
                .field("seq", seq)
                .field("command", command)
                .finish(),
            Self::MessageAck { seq } => f.debug_struct("MessageAck").field("seq", seq).finish(),
        }
    }
}

/// A packet sent by the server to an RCon client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerPacket {
    /// `0x00` + `0x01` (ok) or `0x00` (wrong password).
    LoginResult {
        /// Whether the password was accepted.
        ok: bool,
    },
    /// `0x01` + seq + text: a complete (single-packet) answer. Empty for keep-alives.
    CommandResponse {
        /// Sequence number of the command answered.
        seq: u8,
        /// The answer text (decoded lossily as UTF-8).
        text: String,
    },
    /// `0x01` + seq + `0x00` + total + index + payload: one part of a long answer.
    ///
    /// The payload stays raw bytes: a UTF-8 character may be split across two parts, so decode
    /// the text only after joining all parts.
    CommandPart {
        /// Sequence number of the command answered.
        seq: u8,
        /// Number of parts (at least 1).
        total: u8,
        /// 0-based index of this part (below `total`).
        index: u8,
        /// This part's bytes.
        payload: Vec<u8>,
    },
    /// `0x02` + seq + text: a server message the client must acknowledge.
    Message {
        /// Sequence number to acknowledge.
        seq: u8,
        /// The message text (decoded lossily as UTF-8).
        text: String,
    },
}

/// Wraps `payload` (type byte first) into a full datagram with magic, CRC and separator.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(b"BE");
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[0xFF]);
    hasher.update(payload);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.push(0xFF);
    out.extend_from_slice(payload);
    out
}

/// Checks magic, size, separator and CRC; returns the payload (type byte first, never empty).
pub fn unframe(datagram: &[u8]) -> Result<&[u8], PacketError> {
    if datagram.is_empty() {
        return Err(PacketError::Empty);
    }
    if datagram.len() > MAX_PACKET_SIZE {
        return Err(PacketError::TooLarge {
            len: datagram.len(),
            max: MAX_PACKET_SIZE,
        });
    }
    let magic_len = datagram.len().min(2);
    if datagram.get(..magic_len) != b"BE".get(..magic_len) {
        return Err(PacketError::BadMagic);
    }
    let Some((header, payload)) = datagram.split_at_checked(HEADER_LEN) else {
        return Err(PacketError::Truncated {
            len: datagram.len(),
        });
    };
    if header[6] != 0xFF {
        return Err(PacketError::BadSeparator);
    }
    let expected = u32::from_le_bytes([header[2], header[3], header[4], header[5]]);
    let actual = crc32fast::hash(&datagram[6..]);
    if expected != actual {
        return Err(PacketError::BadCrc { expected, actual });
    }
    if payload.is_empty() {
        return Err(PacketError::Truncated {
            len: datagram.len(),
        });
    }
    Ok(payload)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl ClientPacket {
    /// Encodes the packet into one datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        match self {
            Self::Login { password } => {
                payload.push(TYPE_LOGIN);
                payload.extend_from_slice(password.as_bytes());
            }
            Self::Command { seq, command } => {
                payload.push(TYPE_COMMAND);
                payload.push(*seq);
                payload.extend_from_slice(command.as_bytes());
            }
            Self::MessageAck { seq } => {
                payload.push(TYPE_MESSAGE);
                payload.push(*seq);
            }
        }
        frame(&payload)
    }

    /// Decodes one datagram sent by a client.
    pub fn decode(datagram: &[u8]) -> Result<Self, PacketError> {
        let payload = unframe(datagram)?;
        let len = datagram.len();
        match payload {
            [TYPE_LOGIN, password @ ..] => Ok(Self::Login {
                password: lossy(password),
            }),
            [TYPE_COMMAND, seq, command @ ..] => Ok(Self::Command {
                seq: *seq,
                command: lossy(command),
            }),
            [TYPE_MESSAGE, seq] => Ok(Self::MessageAck { seq: *seq }),
            [TYPE_MESSAGE, _, _, ..] => Err(PacketError::TrailingBytes),
            [TYPE_COMMAND] | [TYPE_MESSAGE] => Err(PacketError::Truncated { len }),
            [other, ..] => Err(PacketError::UnknownType(*other)),
            [] => Err(PacketError::Truncated { len }),
        }
    }
}

impl ServerPacket {
    /// Encodes the packet into one datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        match self {
            Self::LoginResult { ok } => {
                payload.push(TYPE_LOGIN);
                payload.push(u8::from(*ok));
            }
            Self::CommandResponse { seq, text } => {
                payload.push(TYPE_COMMAND);
                payload.push(*seq);
                payload.extend_from_slice(text.as_bytes());
            }
            Self::CommandPart {
                seq,
                total,
                index,
                payload: part,
            } => {
                payload.extend_from_slice(&[TYPE_COMMAND, *seq, 0x00, *total, *index]);
                payload.extend_from_slice(part);
            }
            Self::Message { seq, text } => {
                payload.push(TYPE_MESSAGE);
                payload.push(*seq);
                payload.extend_from_slice(text.as_bytes());
            }
        }
        frame(&payload)
    }

    /// Decodes one datagram sent by a server.
    ///
    /// A command answer whose text starts with a `0x00` byte is a multi-part answer; it must carry
    /// the part count and index after it.
    pub fn decode(datagram: &[u8]) -> Result<Self, PacketError> {
        let payload = unframe(datagram)?;
        let len = datagram.len();
        match payload {
            [TYPE_LOGIN, 0x01] => Ok(Self::LoginResult { ok: true }),
            [TYPE_LOGIN, 0x00] => Ok(Self::LoginResult { ok: false }),
            [TYPE_LOGIN] => Err(PacketError::Truncated { len }),
            [TYPE_LOGIN, ..] => Err(PacketError::BadLoginResult),
            [TYPE_COMMAND, seq, 0x00, total, index, part @ ..] => {
                if *total == 0 || index >= total {
                    return Err(PacketError::BadMultipart {
                        total: *total,
                        index: *index,
                    });
                }
                Ok(Self::CommandPart {
                    seq: *seq,
                    total: *total,
                    index: *index,
                    payload: part.to_vec(),
                })
            }
            [TYPE_COMMAND, _, 0x00, ..] => Err(PacketError::Truncated { len }),
            [TYPE_COMMAND, seq, text @ ..] => Ok(Self::CommandResponse {
                seq: *seq,
                text: lossy(text),
            }),
            [TYPE_MESSAGE, seq, text @ ..] => Ok(Self::Message {
                seq: *seq,
                text: lossy(text),
            }),
            [TYPE_COMMAND] | [TYPE_MESSAGE] => Err(PacketError::Truncated { len }),
            [other, ..] => Err(PacketError::UnknownType(*other)),
            [] => Err(PacketError::Truncated { len }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_login_bytes() {
        // Reference: CRC32 of 0xFF 0x00 "password" computed independently.
        let bytes = ClientPacket::Login {
            password: "password".into(),
        }
        .encode();
        assert_eq!(&bytes[..2], b"BE");
        assert_eq!(bytes[6], 0xFF);
        assert_eq!(&bytes[7..], b"\x00password");
        let crc = crc32fast::hash(b"\xFF\x00password");
        assert_eq!(&bytes[2..6], &crc.to_le_bytes());
    }

    #[test]
    fn debug_hides_password() {
        let p = ClientPacket::Login {
            password: "hunter2".into(),
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
