//! Lines copied from a real Arma 3 2.06 server log (`data/*.rpt`, excerpts of the project fixture
//! `arma3server_x64_2021-10-05_08-38-26.rpt`, MIT, from Giddius/Antistasi_Logbook). They are replayed
//! with fresh timestamps: the original timestamp is cut off, lines without one are continuation lines
//! of the entry before them.

/// Startup output before server.cfg is loaded (short timestamps in the original).
pub const STARTUP: &str = include_str!("../data/startup.rpt");
/// Mission start and init (full timestamps; contains a multi-line `Error in expression` block).
pub const MISSION: &str = include_str!("../data/mission.rpt");
/// Mission runtime output (player/script chatter).
pub const RUNTIME: &str = include_str!("../data/runtime.rpt");
/// Built-in DLC rows of the mod table.
pub const DLC_ROWS: &str = include_str!("../data/dlc_rows.rpt");

/// Length of the timestamp prefix of `line` (with its trailing space), if it has one.
pub fn stamp_len(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let is = |i: usize, c: u8| b.get(i) == Some(&c);
    // "2021/10/05, 08:38:52 "
    if (0..4).all(digit)
        && is(4, b'/')
        && digit(5)
        && digit(6)
        && is(7, b'/')
        && digit(8)
        && digit(9)
        && is(10, b',')
        && is(11, b' ')
        && digit(12)
        && digit(13)
        && is(14, b':')
        && digit(15)
        && digit(16)
        && is(17, b':')
        && digit(18)
        && digit(19)
        && is(20, b' ')
    {
        return Some(21);
    }
    // " 8:38:26 " or "18:38:26 "
    if (is(0, b' ') || digit(0))
        && digit(1)
        && is(2, b':')
        && digit(3)
        && digit(4)
        && is(5, b':')
        && digit(6)
        && digit(7)
        && is(8, b' ')
    {
        return Some(9);
    }
    None
}

/// Splits a log excerpt into entries (timestamp removed, continuation lines joined with `\n`).
pub fn entries(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        match stamp_len(line) {
            Some(n) => out.push(line[n..].to_string()),
            None => match out.last_mut() {
                Some(last) => {
                    last.push('\n');
                    last.push_str(line);
                }
                None => out.push(line.to_string()),
            },
        }
    }
    out
}

/// Single-line entries only (for the flood, where one entry must be one line).
pub fn single_lines() -> Vec<String> {
    let mut v: Vec<String> = entries(MISSION)
        .into_iter()
        .chain(entries(RUNTIME))
        .filter(|e| !e.contains('\n'))
        .collect();
    if v.is_empty() {
        v.push("Server error: Player without identity Savvyy (id 532592899)".to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_recognised() {
        assert_eq!(stamp_len(" 8:38:26 SteamAPI"), Some(9));
        assert_eq!(stamp_len("18:38:26 x"), Some(9));
        assert_eq!(stamp_len("2021/10/05, 08:38:52 Init"), Some(21));
        assert_eq!(stamp_len("_leader = _possibleLeaders select 0;"), None);
        assert_eq!(stamp_len("a3_characters_f"), None);
        assert_eq!(stamp_len(""), None);
        assert_eq!(stamp_len("12"), None);
    }

    #[test]
    fn entries_keep_multi_line_blocks() {
        let m = entries(MISSION);
        let err = m
            .iter()
            .find(|e| e.starts_with("Error in expression <"))
            .map(String::as_str)
            .unwrap_or_default();
        assert_eq!(err.lines().count(), 3, "{err}");
        assert!(err.ends_with("_log>"));
        let s = entries(STARTUP);
        assert!(s.iter().any(|e| e.contains("\na3_characters_f")));
        assert!(s.iter().all(|e| stamp_len(e).is_none()));
        assert_eq!(entries(DLC_ROWS).len(), 13);
        assert!(single_lines().iter().all(|l| !l.contains('\n')));
    }
}
