//! Parsers for the table-shaped answers of `players`, `bans`, `admins` and `missions`.
//!
//! The parsers never fail: header, separator and footer lines are recognised and skipped, rows
//! that cannot be parsed are counted in `skipped` and the rest of the answer is kept.

/// One row of the `players` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerRow {
    /// BattlEye slot (`#`). Not a stable identity: use the GUID for that.
    pub slot: u32,
    /// IP address as printed.
    pub ip: String,
    /// UDP port.
    pub port: u16,
    /// Ping in ms; `-1` while unknown.
    pub ping: i32,
    /// 32 hex digit BattlEye GUID, `None` when the server printed `-` or nothing.
    pub guid: Option<String>,
    /// `true` for `(OK)`, `false` for `(?)` or no GUID.
    pub verified: bool,
    /// Player name without the ` (Lobby)` suffix.
    pub name: String,
    /// The name carried the ` (Lobby)` suffix (player is in role selection).
    pub in_lobby: bool,
}

/// The parsed `players` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerList {
    /// Every row that parsed, in answer order.
    pub players: Vec<PlayerRow>,
    /// Lines that were neither header/footer nor a valid row.
    pub skipped: usize,
    /// The count from the `(N players in total)` footer, if present.
    pub reported_total: Option<u32>,
}

/// How long a ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanDuration {
    /// Minutes left.
    Minutes(u64),
    /// `perm`.
    Permanent,
    /// `-`: expired (removed at the next `loadBans`/`writeBans`).
    Expired,
}

/// One row of either table of the `bans` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRow {
    /// Ban number (what `removeBan` takes).
    pub id: u32,
    /// The GUID (GUID table) or IP address (IP table).
    pub target: String,
    /// Time left.
    pub duration: BanDuration,
    /// Reason, possibly empty.
    pub reason: String,
}

/// The parsed `bans` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanList {
    /// Rows of the `GUID Bans:` table.
    pub guid_bans: Vec<BanRow>,
    /// Rows of the `IP Bans:` table.
    pub ip_bans: Vec<BanRow>,
    /// Lines that could not be parsed.
    pub skipped: usize,
}

/// One row of the `admins` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    /// RCon admin number.
    pub id: u32,
    /// IP address.
    pub ip: String,
    /// UDP port.
    pub port: u16,
}

/// The parsed `admins` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminList {
    /// Connected RCon admins.
    pub admins: Vec<AdminRow>,
    /// Lines that could not be parsed.
    pub skipped: usize,
}

/// Splits off the first whitespace-separated token; returns it and the rest (leading blanks
/// removed).
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let (tok, rest) = s.split_at(end);
    Some((tok, rest.trim_start()))
}

fn is_separator(line: &str) -> bool {
    line.len() >= 3 && line.bytes().all(|b| b == b'-')
}

fn is_hex_guid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits `ip:port` at the last colon (so `[v6]:port` style also works).
fn split_addr(s: &str) -> Option<(String, u16)> {
    let (ip, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        return None;
    }
    Some((ip.to_owned(), port))
}

/// Parses the `footer` `(N players in total)`.
fn players_footer(line: &str) -> Option<u32> {
    let inner = line.strip_prefix('(')?.strip_suffix(" players in total)")?;
    inner.parse().ok()
}

fn parse_player_row(line: &str) -> Option<PlayerRow> {
    let (slot, rest) = token(line)?;
    let slot = slot.parse().ok()?;
    let (addr, rest) = token(rest)?;
    let (ip, port) = split_addr(addr)?;
    let (ping, rest) = token(rest)?;
    let ping = ping.parse().ok()?;
    let (guid_tok, rest) = token(rest)?;
    let (guid, verified) = if guid_tok == "-" {
        (None, false)
    } else if let Some(g) = guid_tok.strip_suffix("(OK)") {
        (Some(g), true)
    } else if let Some(g) = guid_tok.strip_suffix("(?)") {
        (Some(g), false)
    } else {
        return None;
    };
    if let Some(g) = guid
        && !is_hex_guid(g)
    {
        return None;
    }
    let mut name = rest.trim_end();
    let in_lobby = match name.strip_suffix("(Lobby)") {
        Some(n) => {
            name = n.trim_end();
            true
        }
        None => false,
    };
    if name.is_empty() {
        return None;
    }
    Some(PlayerRow {
        slot,
        ip,
        port,
        ping,
        guid: guid.map(|g| g.to_ascii_lowercase()),
        verified,
        name: name.to_owned(),
        in_lobby,
    })
}

/// Parses the answer to `players`.
pub fn parse_players(text: &str) -> PlayerList {
    let mut out = PlayerList::default();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty()
            || trimmed == "Players on server:"
            || trimmed.starts_with("[#]")
            || is_separator(trimmed)
        {
            continue;
        }
        if let Some(n) = players_footer(trimmed) {
            out.reported_total = Some(n);
            continue;
        }
        match parse_player_row(line) {
            Some(row) => out.players.push(row),
            None => out.skipped += 1,
        }
    }
    out
}

fn parse_duration(s: &str) -> Option<BanDuration> {
    match s {
        "perm" => Some(BanDuration::Permanent),
        "-" => Some(BanDuration::Expired),
        n => n.parse().ok().map(BanDuration::Minutes),
    }
}

fn parse_ban_row(line: &str, ip_table: bool) -> Option<BanRow> {
    let (id, rest) = token(line)?;
    let id = id.parse().ok()?;
    let (target, rest) = token(rest)?;
    let valid = if ip_table {
        target.parse::<std::net::IpAddr>().is_ok()
    } else {
        is_hex_guid(target)
    };
    if !valid {
        return None;
    }
    let (duration, reason) = token(rest)?;
    let duration = parse_duration(duration)?;
    Some(BanRow {
        id,
        target: target.to_owned(),
        duration,
        reason: reason.trim_end().to_owned(),
    })
}

/// Parses the answer to `bans` (a `GUID Bans:` table, then an `IP Bans:` table).
pub fn parse_bans(text: &str) -> BanList {
    #[derive(PartialEq)]
    enum Table {
        None,
        Guid,
        Ip,
    }
    let mut out = BanList::default();
    let mut table = Table::None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("[#]") || is_separator(line) {
            continue;
        }
        if line == "GUID Bans:" {
            table = Table::Guid;
            continue;
        }
        if line == "IP Bans:" {
            table = Table::Ip;
            continue;
        }
        let row = match table {
            Table::Guid => parse_ban_row(line, false),
            Table::Ip => parse_ban_row(line, true),
            Table::None => None,
        };
        match (row, &table) {
            (Some(r), Table::Guid) => out.guid_bans.push(r),
            (Some(r), _) => out.ip_bans.push(r),
            (None, _) => out.skipped += 1,
        }
    }
    out
}

/// Parses the answer to `admins`.
pub fn parse_admins(text: &str) -> AdminList {
    let mut out = AdminList::default();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty()
            || line == "Connected RCon admins:"
            || line.starts_with("[#]")
            || is_separator(line)
        {
            continue;
        }
        let row = token(line).and_then(|(id, rest)| {
            let id = id.parse().ok()?;
            let (addr, rest) = token(rest)?;
            if !rest.is_empty() {
                return None;
            }
            let (ip, port) = split_addr(addr)?;
            Some(AdminRow { id, ip, port })
        });
        match row {
            Some(r) => out.admins.push(r),
            None => out.skipped += 1,
        }
    }
    out
}

/// Parses the answer to `missions`: one mission file name per line after the
/// `Missions on server:` title.
pub fn parse_missions(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Missions on server:")
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_with_dash_guid_and_ipv6() {
        let list = parse_players("3 [::1]:2304 10 - Some Body\n");
        assert_eq!(list.skipped, 0);
        let row = &list.players[0];
        assert_eq!(row.ip, "::1");
        assert_eq!(row.guid, None);
        assert!(!row.verified);
        assert_eq!(row.name, "Some Body");
    }

    #[test]
    fn junk_rows_are_counted() {
        let list = parse_players(
            "Players on server:\nfoo\n1 1.2.3.4:99999 1 - x\n2 1.2.3.4:5 1 zz(OK) y\n(0 players in total)\n",
        );
        assert!(list.players.is_empty());
        assert_eq!(list.skipped, 3);
        assert_eq!(list.reported_total, Some(0));
    }
}
