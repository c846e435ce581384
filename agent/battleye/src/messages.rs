//! Parser for server messages (packet type `0x02`): player events, chat, admin chat.
//!
//! [`parse`] never fails: anything it does not recognise (BE master chatter, config notices,
//! future formats) becomes [`Message::Other`] with the full text.

/// A parsed server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `RCon admin #N (ip:port) logged in`. The first one after our own login is usually ours.
    RconAdminLogin {
        /// RCon admin number.
        id: u32,
        /// Admin's IP address.
        ip: String,
        /// Admin's UDP port.
        port: u16,
    },
    /// `Player #N Name (ip:port) connected`.
    PlayerConnected {
        /// BattlEye slot.
        slot: u32,
        /// Player name.
        name: String,
        /// Player's IP address.
        ip: String,
        /// Player's UDP port.
        port: u16,
    },
    /// `Player #N Name - BE GUID: <guid>` or the older `Player #N Name - GUID: <guid> (unverified)`.
    PlayerGuid {
        /// BattlEye slot.
        slot: u32,
        /// Player name.
        name: String,
        /// 32 hex digit GUID, lower case.
        guid: String,
        /// `false` when the message says `(unverified)`, `true` otherwise (the `BE GUID` form
        /// carries no verification marker and no `Verified GUID` message follows it).
        verified: bool,
    },
    /// `Verified GUID (<guid>) of player #N Name`.
    GuidVerified {
        /// BattlEye slot.
        slot: u32,
        /// Player name.
        name: String,
        /// 32 hex digit GUID, lower case.
        guid: String,
    },
    /// `Player #N Name disconnected`.
    PlayerDisconnected {
        /// BattlEye slot.
        slot: u32,
        /// Player name.
        name: String,
    },
    /// `Player #N Name (<guid>|-) has been kicked by BattlEye: <reason>`. Usually followed by a
    /// [`Message::PlayerDisconnected`] for the same player: that is one departure, not two.
    PlayerKicked {
        /// BattlEye slot.
        slot: u32,
        /// Player name.
        name: String,
        /// GUID, `None` when printed as `-`.
        guid: Option<String>,
        /// Kick reason as printed (e.g. `Admin Kick (...)`, `Client not responding`).
        reason: String,
    },
    /// Player chat: `(<Channel>) Name: text`.
    Chat {
        /// Channel name (`Global`, `Side`, `Command`, `Group`, `Vehicle`, `Direct`, `Unknown`, ...).
        channel: String,
        /// Sender name.
        name: String,
        /// Message text.
        text: String,
    },
    /// RCon admin chat: `RCon admin #N: (Global) text` or `RCon admin #N: (To Name) text`.
    AdminChat {
        /// RCon admin number.
        admin_id: u32,
        /// Where the message went.
        target: ChatTarget,
        /// Message text.
        text: String,
    },
    /// Anything else (BE master chatter, config notices, unknown formats), verbatim.
    Other(String),
}

/// Destination of an admin chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// A channel, e.g. `Global`.
    Channel(String),
    /// A private message `(To Name)`.
    Player(String),
}

fn parse_u32_prefix(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let (digits, rest) = s.split_at(end);
    Some((digits.parse().ok()?, rest))
}

fn is_hex_guid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn split_addr(s: &str) -> Option<(String, u16)> {
    let (ip, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().ok()?;
    Some((ip.to_owned(), port))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn parse_rcon_admin(rest: &str) -> Option<Message> {
    let (id, rest) = parse_u32_prefix(rest)?;
    if let Some(chat) = rest.strip_prefix(": (") {
        let (target, text) = chat.split_once(") ")?;
        let target = match target.strip_prefix("To ") {
            Some(name) => ChatTarget::Player(non_empty(name)?),
            None => ChatTarget::Channel(non_empty(target)?),
        };
        return Some(Message::AdminChat {
            admin_id: id,
            target,
            text: text.to_owned(),
        });
    }
    let addr = rest.strip_prefix(" (")?.strip_suffix(") logged in")?;
    let (ip, port) = split_addr(addr)?;
    Some(Message::RconAdminLogin { id, ip, port })
}

fn parse_verified(rest: &str) -> Option<Message> {
    let (guid, rest) = rest.split_once(") of player #")?;
    if !is_hex_guid(guid) {
        return None;
    }
    let (slot, rest) = parse_u32_prefix(rest)?;
    let name = non_empty(rest.strip_prefix(' ')?)?;
    Some(Message::GuidVerified {
        slot,
        name,
        guid: guid.to_ascii_lowercase(),
    })
}

fn parse_player(rest: &str) -> Option<Message> {
    let (slot, rest) = parse_u32_prefix(rest)?;
    let rest = rest.strip_prefix(' ')?;

    if let Some((who, reason)) = rest.split_once(" has been kicked by BattlEye: ") {
        let (name, guid) = who.rsplit_once(" (")?;
        let guid = guid.strip_suffix(')')?;
        let guid = match guid {
            "-" => None,
            g if is_hex_guid(g) => Some(g.to_ascii_lowercase()),
            _ => return None,
        };
        return Some(Message::PlayerKicked {
            slot,
            name: non_empty(name)?,
            guid,
            reason: reason.to_owned(),
        });
    }
    if let Some(who) = rest.strip_suffix(") connected")
        && let Some((name, addr)) = who.rsplit_once(" (")
        && let (Some((ip, port)), Some(name)) = (split_addr(addr), non_empty(name))
    {
        return Some(Message::PlayerConnected {
            slot,
            name,
            ip,
            port,
        });
    }
    let guid_form = rest
        .rsplit_once(" - BE GUID: ")
        .or_else(|| rest.rsplit_once(" - GUID: "));
    if let Some((name, guid)) = guid_form {
        let (guid, verified) = match guid.strip_suffix(" (unverified)") {
            Some(g) => (g, false),
            None => (guid, true),
        };
        if is_hex_guid(guid) {
            return Some(Message::PlayerGuid {
                slot,
                name: non_empty(name)?,
                guid: guid.to_ascii_lowercase(),
                verified,
            });
        }
    }
    if let Some(name) = rest.strip_suffix(" disconnected") {
        return Some(Message::PlayerDisconnected {
            slot,
            name: non_empty(name)?,
        });
    }
    None
}

fn parse_chat(rest: &str) -> Option<Message> {
    let (channel, rest) = rest.split_once(") ")?;
    if channel.is_empty()
        || channel.len() > 24
        || !channel.chars().all(|c| c.is_alphanumeric() || c == ' ')
    {
        return None;
    }
    let (name, text) = rest.split_once(": ")?;
    Some(Message::Chat {
        channel: channel.to_owned(),
        name: non_empty(name)?,
        text: text.to_owned(),
    })
}

/// Parses one server message. Never fails; unknown text becomes [`Message::Other`].
pub fn parse(text: &str) -> Message {
    let line = text.trim_end_matches(['\r', '\n']);
    let parsed = if let Some(rest) = line.strip_prefix("RCon admin #") {
        parse_rcon_admin(rest)
    } else if let Some(rest) = line.strip_prefix("Verified GUID (") {
        parse_verified(rest)
    } else if let Some(rest) = line.strip_prefix("Player #") {
        parse_player(rest)
    } else if let Some(rest) = line.strip_prefix('(') {
        parse_chat(rest)
    } else {
        None
    };
    parsed.unwrap_or_else(|| Message::Other(text.to_owned()))
}
