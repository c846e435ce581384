//! The BattlEye side of the fake: the game state RCon commands see (players, bans, admins, missions,
//! lock), the answers to RCon commands in the real text formats, and the BattlEye server messages
//! for joins, leaves, kicks and chat.
//!
//! Everything here is synchronous and transport-free: [`GameState`] methods return the answer text
//! and a list of [`Action`]s (server messages to broadcast, `.rpt` lines to write, shutdown).
//! [`RconHandler`] is the seam to the network: the UDP BattlEye RCon server (see `crate::rcon_net`)
//! calls [`RconHandler::command`] for each command of a logged-in admin and broadcasts what arrives
//! on the message channel.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

/// One player as BattlEye sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// BattlEye slot (`#N`): the lowest free number, reused after a leave.
    pub slot: u32,
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    /// `-1` until the player is verified.
    pub ping: i32,
    /// 32 lower-case hex digits.
    pub guid: String,
    pub verified: bool,
    /// In role selection: the name shows ` (Lobby)` in `players`.
    pub lobby: bool,
    /// SteamID64, used by the `.rpt` line `Player <name> connected (id=<steamid>).`.
    pub steam_id: u64,
}

/// What a ban is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanTarget {
    Guid(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub target: BanTarget,
    /// `None` = permanent.
    pub minutes: Option<u64>,
    pub reason: String,
}

/// A logged-in RCon admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub id: u32,
    pub addr: SocketAddr,
}

/// A side effect of a command or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A BattlEye server message (packet type 0x02) for every logged-in admin.
    Message(String),
    /// An entry for the `.rpt` log.
    Log(String),
    /// `#shutdown`: stop the server (cleanly, unless it is told to hang).
    Shutdown,
}

/// The message and its `.rpt` twin (`BattlEye Server: <message>`).
fn be(msg: String, out: &mut Vec<Action>) {
    out.push(Action::Log(format!("BattlEye Server: {msg}")));
    out.push(Action::Message(msg));
}

/// 64-bit FNV-1a, for deterministic per-name GUIDs, SteamIDs and ports.
fn fnv(seed: u64, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A stable fake BE GUID for a name (32 lower-case hex digits).
pub fn guid_for(name: &str) -> String {
    format!("{:016x}{:016x}", fnv(1, name), fnv(2, name))
}

/// A stable fake SteamID64 for a name.
pub fn steam_id_for(name: &str) -> u64 {
    76_561_197_960_265_728 + fnv(3, name) % 1_000_000_000
}

fn is_guid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The game state behind RCon.
#[derive(Debug, Clone, Default)]
pub struct GameState {
    pub players: Vec<Player>,
    /// GUID and IP bans share one numbering (the `#` in `bans`, used by `removeBan`).
    pub bans: Vec<Ban>,
    pub admins: Vec<Admin>,
    pub missions: Vec<String>,
    pub locked: bool,
    next_admin: u32,
}

impl GameState {
    pub fn new(missions: Vec<String>) -> Self {
        Self {
            missions,
            ..Self::default()
        }
    }

    pub fn player_by_name(&self, name: &str) -> Option<&Player> {
        self.players.iter().find(|p| p.name == name)
    }

    fn player_by_slot(&self, slot: u32) -> Option<&Player> {
        self.players.iter().find(|p| p.slot == slot)
    }

    fn free_slot(&self) -> u32 {
        (0..)
            .find(|s| self.players.iter().all(|p| p.slot != *s))
            .unwrap_or(0)
    }

    // ----- admins -----

    /// An admin logged in: returns its number and the `RCon admin #N (ip:port) logged in` message.
    pub fn admin_login(&mut self, addr: SocketAddr) -> (u32, Vec<Action>) {
        let id = self.next_admin;
        self.next_admin = self.next_admin.wrapping_add(1);
        self.admins.push(Admin { id, addr });
        let mut out = Vec::new();
        be(format!("RCon admin #{id} ({addr}) logged in"), &mut out);
        (id, out)
    }

    pub fn admin_logout(&mut self, addr: SocketAddr) {
        self.admins.retain(|a| a.addr != addr);
    }

    // ----- scripted player events -----

    /// A player starts connecting. Returns its slot and the actions, or `Err(reason)` when refused
    /// (name already on the server, server locked).
    pub fn join(&mut self, name: &str, port: u16) -> Result<(u32, Vec<Action>), String> {
        if name.is_empty() {
            return Err("empty player name".into());
        }
        if self.player_by_name(name).is_some() {
            return Err(format!("player {name} is already on the server"));
        }
        if self.locked {
            return Err(format!("server is locked, {name} cannot join"));
        }
        let slot = self.free_slot();
        let guid = guid_for(name);
        let p = Player {
            slot,
            name: name.to_string(),
            ip: Ipv4Addr::LOCALHOST,
            port,
            ping: -1,
            guid: guid.clone(),
            verified: false,
            lobby: true,
            steam_id: steam_id_for(name),
        };
        let mut out = vec![Action::Log(format!("Player {name} connecting."))];
        be(
            format!("Player #{slot} {name} ({}:{}) connected", p.ip, p.port),
            &mut out,
        );
        out.push(Action::Log(format!(
            "Player {name} connected (id={}).",
            p.steam_id
        )));
        be(format!("Player #{slot} {name} - BE GUID: {guid}"), &mut out);
        self.players.push(p);
        // A banned GUID is kicked right away.
        if let Some(ban) = self
            .bans
            .iter()
            .find(|b| b.target == BanTarget::Guid(guid.clone()))
        {
            let reason = format!("Admin Ban ({})", ban.reason);
            out.extend(self.kick_slot(slot, &reason));
        }
        Ok((slot, out))
    }

    /// BattlEye verified the player's GUID; the ping becomes known.
    pub fn verify(&mut self, name: &str, ping: i32) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(p) = self.players.iter_mut().find(|p| p.name == name) {
            p.verified = true;
            p.ping = ping;
            be(
                format!(
                    "Verified GUID ({}) of player #{} {}",
                    p.guid, p.slot, p.name
                ),
                &mut out,
            );
        }
        out
    }

    /// The player picked a role and left the lobby.
    pub fn enter_game(&mut self, name: &str) {
        if let Some(p) = self.players.iter_mut().find(|p| p.name == name) {
            p.lobby = false;
        }
    }

    /// The player leaves by itself.
    pub fn leave(&mut self, name: &str) -> Result<Vec<Action>, String> {
        let Some(i) = self.players.iter().position(|p| p.name == name) else {
            return Err(format!("no player {name} on the server"));
        };
        let p = self.players.remove(i);
        let mut out = Vec::new();
        be(
            format!("Player #{} {} disconnected", p.slot, p.name),
            &mut out,
        );
        out.push(Action::Log(format!("Player {} disconnected.", p.name)));
        Ok(out)
    }

    /// Player chat on the global channel.
    pub fn chat(&self, name: &str, text: &str) -> Result<Vec<Action>, String> {
        if self.player_by_name(name).is_none() {
            return Err(format!("no player {name} on the server"));
        }
        let mut out = Vec::new();
        be(format!("(Global) {name}: {text}"), &mut out);
        Ok(out)
    }

    /// Kick: the BattlEye kick message, then the disconnect (one departure).
    fn kick_slot(&mut self, slot: u32, reason: &str) -> Vec<Action> {
        let Some(i) = self.players.iter().position(|p| p.slot == slot) else {
            return Vec::new();
        };
        let p = self.players.remove(i);
        let mut out = Vec::new();
        be(
            format!(
                "Player #{} {} ({}) has been kicked by BattlEye: {reason}",
                p.slot, p.name, p.guid
            ),
            &mut out,
        );
        out.push(Action::Log(format!(
            "Player {} kicked off by BattlEye: {reason}",
            p.name
        )));
        be(
            format!("Player #{} {} disconnected", p.slot, p.name),
            &mut out,
        );
        out.push(Action::Log(format!("Player {} disconnected.", p.name)));
        out
    }

    // ----- RCon commands -----

    /// Answers one RCon command of admin `admin`. Returns the answer text (may be empty: the real
    /// server answers most commands with an empty acknowledgement) and the side effects.
    pub fn command(&mut self, admin: u32, cmd: &str) -> (String, Vec<Action>) {
        let cmd = cmd.trim();
        let (word, rest) = match cmd.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (cmd, ""),
        };
        match word.to_ascii_lowercase().as_str() {
            // Empty command: the keep-alive.
            "" => (String::new(), Vec::new()),
            "players" => (self.players_text(), Vec::new()),
            "bans" => (self.bans_text(), Vec::new()),
            "admins" => (self.admins_text(), Vec::new()),
            "missions" => (self.missions_text(), Vec::new()),
            "loadbans" | "loadscripts" | "loadevents" | "writebans" => (String::new(), Vec::new()),
            "say" => self.say(admin, rest),
            "kick" => self.kick_cmd(rest),
            "ban" => self.ban_cmd(rest),
            "addban" => self.add_ban(rest),
            "removeban" => self.remove_ban(rest),
            "#lock" => {
                self.locked = true;
                (String::new(), Vec::new())
            }
            "#unlock" => {
                self.locked = false;
                (String::new(), Vec::new())
            }
            "#shutdown" => (String::new(), vec![Action::Shutdown]),
            // Accepted and ignored by the fake.
            "#restart" | "#reassign" | "#mission" | "#init" | "#monitor" | "maxping" => {
                (String::new(), Vec::new())
            }
            _ => ("Unknown command".to_string(), Vec::new()),
        }
    }

    /// The `players` answer, in the real column layout.
    pub fn players_text(&self) -> String {
        let mut s = String::from(
            "Players on server:\n[#] [IP Address]:[Port] [Ping] [GUID] [Name]\n--------------------------------------------------\n",
        );
        let mut ps: Vec<&Player> = self.players.iter().collect();
        ps.sort_by_key(|p| p.slot);
        for p in &ps {
            let guid = format!("{}({})", p.guid, if p.verified { "OK" } else { "?" });
            let lobby = if p.lobby { " (Lobby)" } else { "" };
            let _ = writeln!(
                s,
                "{:<4}{:<22}{:<5}{:<36} {}{}",
                p.slot,
                format!("{}:{}", p.ip, p.port),
                p.ping,
                guid,
                p.name,
                lobby
            );
        }
        let _ = write!(s, "({} players in total)", ps.len());
        s
    }

    fn minutes(m: Option<u64>) -> String {
        m.map_or_else(|| "perm".to_string(), |m| m.to_string())
    }

    pub fn bans_text(&self) -> String {
        let mut s = String::from(
            "GUID Bans:\n[#] [GUID] [Minutes left] [Reason]\n----------------------------------------\n",
        );
        for (i, b) in self.bans.iter().enumerate() {
            if let BanTarget::Guid(g) = &b.target {
                let row = format!("{i:<3}{g} {:<6} {}", Self::minutes(b.minutes), b.reason);
                s.push_str(row.trim_end());
                s.push('\n');
            }
        }
        s.push_str(
            "\nIP Bans:\n[#] [IP Address] [Minutes left] [Reason]\n----------------------------------------------\n",
        );
        for (i, b) in self.bans.iter().enumerate() {
            if let BanTarget::Ip(ip) = &b.target {
                let row = format!(
                    "{i} {:<16}{:<10}{}",
                    ip.to_string(),
                    Self::minutes(b.minutes),
                    b.reason
                );
                s.push_str(row.trim_end());
                s.push('\n');
            }
        }
        s
    }

    pub fn admins_text(&self) -> String {
        let mut s = String::from(
            "Connected RCon admins:\n[#] [IP Address]:[Port]\n-----------------------------",
        );
        for a in &self.admins {
            let _ = write!(s, "\n{} {}", a.id, a.addr);
        }
        s
    }

    pub fn missions_text(&self) -> String {
        let mut s = String::from("Missions on server:");
        for m in &self.missions {
            s.push('\n');
            s.push_str(m);
        }
        s
    }

    fn say(&mut self, admin: u32, rest: &str) -> (String, Vec<Action>) {
        let (target, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let text = text.trim();
        let Ok(target) = target.parse::<i64>() else {
            return ("Invalid player ID".into(), Vec::new());
        };
        let mut out = Vec::new();
        if target < 0 {
            be(format!("RCon admin #{admin}: (Global) {text}"), &mut out);
        } else {
            let Some(p) = u32::try_from(target)
                .ok()
                .and_then(|t| self.player_by_slot(t))
            else {
                return ("Invalid player ID".into(), Vec::new());
            };
            // Only admins see the private line, like the real server.
            out.push(Action::Message(format!(
                "RCon admin #{admin}: (To {}) {text}",
                p.name
            )));
        }
        (String::new(), out)
    }

    fn slot_arg(s: &str) -> Option<u32> {
        s.parse().ok()
    }

    fn kick_cmd(&mut self, rest: &str) -> (String, Vec<Action>) {
        let (slot, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match Self::slot_arg(slot).filter(|s| self.player_by_slot(*s).is_some()) {
            Some(slot) => {
                let reason = format!("Admin Kick ({})", reason.trim());
                (String::new(), self.kick_slot(slot, &reason))
            }
            None => ("Invalid player ID".into(), Vec::new()),
        }
    }

    /// `[minutes] [reason]`: minutes `0`/`-1`/absent = permanent.
    fn minutes_and_reason(rest: &str) -> (Option<u64>, String) {
        let rest = rest.trim();
        let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match first.parse::<i64>() {
            Ok(m) if m > 0 => (u64::try_from(m).ok(), tail.trim().to_string()),
            Ok(_) => (None, tail.trim().to_string()),
            Err(_) => (None, rest.to_string()),
        }
    }

    fn ban_cmd(&mut self, rest: &str) -> (String, Vec<Action>) {
        let (slot, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let Some(p) = Self::slot_arg(slot)
            .and_then(|s| self.player_by_slot(s))
            .cloned()
        else {
            return ("Invalid player ID".into(), Vec::new());
        };
        let (minutes, reason) = Self::minutes_and_reason(tail);
        self.bans.push(Ban {
            target: BanTarget::Guid(p.guid.clone()),
            minutes,
            reason: reason.clone(),
        });
        (
            String::new(),
            self.kick_slot(p.slot, &format!("Admin Ban ({reason})")),
        )
    }

    fn add_ban(&mut self, rest: &str) -> (String, Vec<Action>) {
        let (what, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let target = if is_guid(what) {
            BanTarget::Guid(what.to_ascii_lowercase())
        } else if let Ok(ip) = what.parse::<IpAddr>() {
            BanTarget::Ip(ip)
        } else {
            return ("Invalid GUID or IP".into(), Vec::new());
        };
        let (minutes, reason) = Self::minutes_and_reason(tail);
        self.bans.push(Ban {
            target,
            minutes,
            reason,
        });
        (String::new(), Vec::new())
    }

    fn remove_ban(&mut self, rest: &str) -> (String, Vec<Action>) {
        match rest.trim().parse::<usize>() {
            Ok(i) if i < self.bans.len() => {
                self.bans.remove(i);
                (String::new(), Vec::new())
            }
            _ => ("Invalid ban ID".into(), Vec::new()),
        }
    }
}

/// The seam between the game state and the network: cheap to clone, shared by the RCon server task
/// (commands, admin logins) and the rest of the fake (scripted players).
#[derive(Clone)]
pub struct RconHandler {
    state: Arc<Mutex<GameState>>,
    actions: mpsc::UnboundedSender<Action>,
    hung: Arc<AtomicBool>,
}

impl RconHandler {
    /// `actions` receives every side effect (server messages, log lines, shutdown) in order.
    pub fn new(state: GameState, actions: mpsc::UnboundedSender<Action>) -> Self {
        Self {
            state: Arc::new(Mutex::new(state)),
            actions,
            hung: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, GameState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends side effects to the action consumer.
    pub fn emit(&self, actions: Vec<Action>) {
        for a in actions {
            // The consumer lives as long as the server; a send after it is gone is moot.
            let _ = self.actions.send(a);
        }
    }

    /// A hung server answers nothing.
    pub fn set_hung(&self) {
        self.hung.store(true, Ordering::SeqCst);
    }

    pub fn is_hung(&self) -> bool {
        self.hung.load(Ordering::SeqCst)
    }

    /// One command from a logged-in admin. `None`: no answer at all (hung server).
    pub fn command(&self, admin: u32, cmd: &str) -> Option<String> {
        if self.is_hung() {
            return None;
        }
        let (reply, actions) = self.state().command(admin, cmd);
        self.emit(actions);
        Some(reply)
    }

    /// An admin logged in; returns its number.
    pub fn admin_login(&self, addr: SocketAddr) -> u32 {
        let (id, actions) = self.state().admin_login(addr);
        self.emit(actions);
        id
    }

    pub fn admin_logout(&self, addr: SocketAddr) {
        self.state().admin_logout(addr);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The fixture's answers, for exact-format checks.
    const FIXTURE: &str = include_str!("../data/rcon_responses.txt");

    fn fixture_block(source_contains: &str) -> String {
        let start = FIXTURE.find(source_contains).unwrap();
        let after = &FIXTURE[start..];
        let body = &after[after.find('\n').unwrap() + 1..];
        let end = body.find("\n###").unwrap_or(body.len());
        body[..end].trim_end_matches('\n').to_string()
    }

    fn msgs(a: &[Action]) -> Vec<String> {
        a.iter()
            .filter_map(|a| match a {
                Action::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn logs(a: &[Action]) -> Vec<String> {
        a.iter()
            .filter_map(|a| match a {
                Action::Log(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn players_format_matches_real_answers() {
        let mut g = GameState::default();
        g.players.push(Player {
            slot: 8,
            name: "Max".into(),
            ip: "111.222.200.50".parse().unwrap(),
            port: 2304,
            ping: -1,
            guid: "73c5e50a7860475f49db400000000000".into(),
            verified: false,
            lobby: true,
            steam_id: 1,
        });
        assert_eq!(g.players_text(), fixture_block("(unverified GUID"));
        g.players[0].ping = 62;
        g.players[0].verified = true;
        g.players[0].guid = "73c5e50a7860475f0000000000000000".into();
        assert_eq!(g.players_text(), fixture_block("(verified GUID, in lobby)"));
        let empty = GameState::default();
        assert_eq!(
            empty.players_text(),
            fixture_block("empty server right after login")
        );
    }

    #[test]
    fn players_format_matches_many_rows() {
        // The 16-player capture (its row 0 has an odd extra space: not compared).
        let block = fixture_block("tym32167/arma3beclient src/Arma3BE.Server/Mocks");
        let mut g = GameState::default();
        for row in block.lines().skip(3).filter(|l| !l.starts_with('(')) {
            let f: Vec<&str> = row.split_whitespace().collect();
            let (ip, port) = f[1].split_once(':').unwrap();
            let guid = &f[3][..32];
            let name = row[row.find("(OK) ").unwrap() + 5..].to_string();
            g.players.push(Player {
                slot: f[0].parse().unwrap(),
                name,
                ip: ip.parse().unwrap(),
                port: port.parse().unwrap(),
                ping: f[2].parse().unwrap(),
                guid: guid.into(),
                verified: true,
                lobby: false,
                steam_id: 0,
            });
        }
        let ours = g.players_text();
        assert_eq!(ours.lines().count(), block.lines().count());
        for (a, b) in ours.lines().zip(block.lines()) {
            if a.starts_with("0 ") {
                continue;
            }
            assert_eq!(a, b);
        }
        assert!(ours.contains(
            "10  37.232.159.82:2354    105  20446897121fafa82c1069ed07820f27(OK) Максим"
        ));
        assert!(ours.ends_with("(16 players in total)"));
    }

    #[test]
    fn other_tables() {
        let mut g = GameState::new(vec![
            "RF_Liberators_0_0_7.Sara.pbo".into(),
            "RF_partisan_rhs_0_8_5.Takistan.pbo".into(),
        ]);
        assert_eq!(
            g.missions_text(),
            "Missions on server:\nRF_Liberators_0_0_7.Sara.pbo\nRF_partisan_rhs_0_8_5.Takistan.pbo"
        );
        g.admin_login("46.149.73.255:58606".parse().unwrap());
        g.admin_login("31.8.2.185:19880".parse().unwrap());
        let admins = fixture_block("`admins` response");
        assert!(admins.starts_with(&g.admins_text()), "{}", g.admins_text());
        let (_, a) = g.command(0, "addBan 11111111111122222222222223333333 163901 cheater");
        assert!(a.is_empty());
        g.command(0, "addBan 127.0.0.1 0 local connections disabled");
        g.command(0, "addBan 8.8.8.8 163901");
        let bans = g.bans_text();
        assert!(bans.contains("\n0  11111111111122222222222223333333 163901 cheater\n"));
        assert!(bans.contains("\n1 127.0.0.1       perm      local connections disabled\n"));
        assert!(bans.contains("\n2 8.8.8.8         163901\n"));
        assert!(bans.starts_with("GUID Bans:\n[#] [GUID] [Minutes left] [Reason]\n"));
        g.command(0, "removeBan 0");
        assert_eq!(g.bans.len(), 2);
        assert_eq!(g.command(0, "removeBan 9").0, "Invalid ban ID");
        assert_eq!(g.command(0, "addBan nothex").0, "Invalid GUID or IP");
    }

    #[test]
    fn join_verify_leave_messages() {
        let mut g = GameState::default();
        let (slot, a) = g.join("Callum", 2304).unwrap();
        assert_eq!(slot, 0);
        let guid = guid_for("Callum");
        assert_eq!(
            msgs(&a),
            vec![
                "Player #0 Callum (127.0.0.1:2304) connected".to_string(),
                format!("Player #0 Callum - BE GUID: {guid}"),
            ]
        );
        assert!(logs(&a).contains(&format!(
            "Player Callum connected (id={}).",
            steam_id_for("Callum")
        )));
        assert!(g.players_text().contains("-1   "));
        assert!(g.players_text().contains("(?)  Callum (Lobby)"));
        let v = g.verify("Callum", 42);
        assert_eq!(
            msgs(&v),
            vec![format!("Verified GUID ({guid}) of player #0 Callum")]
        );
        g.enter_game("Callum");
        assert!(g.players_text().contains("42   "));
        assert!(
            g.players_text()
                .ends_with("(OK) Callum\n(1 players in total)")
        );
        assert!(g.join("Callum", 1).is_err());
        let (s2, _) = g.join("Free Style", 2305).unwrap();
        assert_eq!(s2, 1);
        let c = g.chat("Free Style", "hello: there").unwrap();
        assert_eq!(
            msgs(&c),
            vec!["(Global) Free Style: hello: there".to_string()]
        );
        assert_eq!(
            logs(&c),
            vec!["BattlEye Server: (Global) Free Style: hello: there".to_string()]
        );
        let l = g.leave("Callum").unwrap();
        assert_eq!(msgs(&l), vec!["Player #0 Callum disconnected".to_string()]);
        assert_eq!(logs(&l).last().unwrap(), "Player Callum disconnected.");
        assert!(g.leave("Callum").is_err());
        assert!(g.chat("Nobody", "x").is_err());
        // Slot 0 is free again.
        assert_eq!(g.join("Third", 1).unwrap().0, 0);
        assert_eq!(guid_for("Callum").len(), 32);
        assert!(is_guid(&guid_for("Максим")));
    }

    #[test]
    fn kick_ban_say_lock_shutdown() {
        let mut g = GameState::default();
        g.join("Bob (the builder)", 2304).unwrap();
        g.join("Eve", 2305).unwrap();
        let (r, a) = g.command(3, "say -1 Server restarting in 5 minutes");
        assert_eq!(r, "");
        assert_eq!(
            msgs(&a),
            vec!["RCon admin #3: (Global) Server restarting in 5 minutes".to_string()]
        );
        let (_, a) = g.command(3, "say 1 private note");
        assert_eq!(
            msgs(&a),
            vec!["RCon admin #3: (To Eve) private note".to_string()]
        );
        assert_eq!(g.command(3, "say 7 x").0, "Invalid player ID");
        let (_, a) = g.command(0, "kick 0");
        let guid = guid_for("Bob (the builder)");
        assert_eq!(
            msgs(&a),
            vec![
                format!(
                    "Player #0 Bob (the builder) ({guid}) has been kicked by BattlEye: Admin Kick ()"
                ),
                "Player #0 Bob (the builder) disconnected".to_string(),
            ]
        );
        assert_eq!(g.command(0, "kick 0").0, "Invalid player ID");
        assert_eq!(g.command(0, "kick x").0, "Invalid player ID");
        let (_, a) = g.command(0, "ban 1 0 Sabotage");
        assert!(msgs(&a)[0].ends_with("has been kicked by BattlEye: Admin Ban (Sabotage)"));
        assert_eq!(g.bans[0].minutes, None);
        assert!(g.players.is_empty());
        // A banned player is kicked on join.
        let (_, a) = g.join("Eve", 2306).unwrap();
        assert!(msgs(&a).iter().any(|m| m.contains("Admin Ban (Sabotage)")));
        assert!(g.players.is_empty());
        g.command(0, "#lock");
        assert!(g.join("Late", 1).is_err());
        g.command(0, "#UNLOCK");
        assert!(g.join("Late", 1).is_ok());
        assert_eq!(g.command(0, "#shutdown").1, vec![Action::Shutdown]);
        assert_eq!(g.command(0, "frobnicate").0, "Unknown command");
        assert_eq!(g.command(0, "").0, "");
    }

    #[test]
    fn handler_routes_actions_and_hangs() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let h = RconHandler::new(GameState::default(), tx);
        let id = h.admin_login("127.0.0.1:40000".parse().unwrap());
        assert_eq!(id, 0);
        assert_eq!(
            rx.try_recv().unwrap(),
            Action::Log("BattlEye Server: RCon admin #0 (127.0.0.1:40000) logged in".into())
        );
        assert_eq!(
            rx.try_recv().unwrap(),
            Action::Message("RCon admin #0 (127.0.0.1:40000) logged in".into())
        );
        assert_eq!(h.command(0, "#shutdown"), Some(String::new()));
        assert_eq!(rx.try_recv().unwrap(), Action::Shutdown);
        h.set_hung();
        assert_eq!(h.command(0, "players"), None);
    }
}
