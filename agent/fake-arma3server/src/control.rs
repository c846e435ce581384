//! The runtime control file: tests append command lines to it while the server runs.
//!
//! Polled every 100 ms. Only lines appended after the server started count (content present at
//! start is skipped, so a leftover file from an earlier run does not replay). A partial last line
//! waits for its newline. A file that shrinks (truncated or replaced) is read again from the start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::args::CrashSignal;

pub const POLL: Duration = Duration::from_millis(100);

/// One control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `join <name>`: a player joins (the name may contain spaces).
    Join(String),
    /// `leave <name>`: a player leaves.
    Leave(String),
    /// `chat <name> <text>` or `chat <name with spaces>: <text>`: global chat.
    Chat { name: String, text: String },
    /// `crash [code]`: exit at once with the code (default `-fakeExitCode`, else 1).
    Crash(Option<i32>),
    /// `signal <SEGV|ABRT|KILL>`: raise the signal on itself.
    Signal(CrashSignal),
    /// `hang`: freeze: no more output, no RCon answers, SIGTERM ignored; only SIGKILL ends it.
    Hang,
    /// `log <text>`: write an entry (`\n` in the text starts a continuation line).
    Log(String),
    /// `shutdown`: like RCon `#shutdown` (ignored under `-fakeHang`).
    Shutdown,
    /// `exit`: clean exit now, even under `-fakeHang`.
    Exit,
}

/// Parses one line. `Ok(None)` for blank and `#` comment lines.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim_end_matches(['\r', '\n']).trim_start();
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let need = |what: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{word}: missing {what}"))
        } else {
            Ok(rest.to_string())
        }
    };
    let cmd = match word.to_ascii_lowercase().as_str() {
        "join" => Command::Join(need("player name")?),
        "leave" => Command::Leave(need("player name")?),
        "chat" => {
            let rest = need("player name and text")?;
            let (name, text) = match rest.split_once(": ") {
                Some((n, t)) => (n.trim(), t),
                None => rest.split_once(' ').unwrap_or((rest.as_str(), "")),
            };
            Command::Chat {
                name: name.to_string(),
                text: text.trim().to_string(),
            }
        }
        "crash" => {
            if rest.is_empty() {
                Command::Crash(None)
            } else {
                match rest.parse::<i32>() {
                    Ok(c) if (0..=255).contains(&c) => Command::Crash(Some(c)),
                    _ => return Err(format!("crash: bad exit code {rest:?}")),
                }
            }
        }
        "signal" => Command::Signal(
            CrashSignal::parse(rest).ok_or_else(|| format!("signal: unknown signal {rest:?}"))?,
        ),
        "hang" => Command::Hang,
        "log" => Command::Log(rest.replace("\\n", "\n")),
        "shutdown" => Command::Shutdown,
        "exit" => Command::Exit,
        _ => return Err(format!("unknown control command {word:?}")),
    };
    Ok(Some(cmd))
}

/// Follows the control file.
pub struct Watcher {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Watcher {
    /// Starts at the current end of the file (or at 0 if it does not exist yet).
    pub fn new(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last call; returns the complete new lines.
    pub fn poll(&mut self) -> Vec<String> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(n) = f.take(len - self.offset).read_to_end(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse("join Free Style\n").unwrap(),
            Some(Command::Join("Free Style".into()))
        );
        assert_eq!(
            parse("LEAVE Bob").unwrap(),
            Some(Command::Leave("Bob".into()))
        );
        assert_eq!(
            parse("chat Bob hello there").unwrap(),
            Some(Command::Chat {
                name: "Bob".into(),
                text: "hello there".into()
            })
        );
        assert_eq!(
            parse("chat Free Style: hi: you").unwrap(),
            Some(Command::Chat {
                name: "Free Style".into(),
                text: "hi: you".into()
            })
        );
        assert_eq!(parse("crash").unwrap(), Some(Command::Crash(None)));
        assert_eq!(parse("crash 7").unwrap(), Some(Command::Crash(Some(7))));
        assert_eq!(
            parse("signal abrt").unwrap(),
            Some(Command::Signal(CrashSignal::Abrt))
        );
        assert_eq!(parse("hang").unwrap(), Some(Command::Hang));
        assert_eq!(
            parse("log a\\nb").unwrap(),
            Some(Command::Log("a\nb".into()))
        );
        assert_eq!(parse("shutdown").unwrap(), Some(Command::Shutdown));
        assert_eq!(parse("exit\r\n").unwrap(), Some(Command::Exit));
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(parse("# note").unwrap(), None);
        for bad in [
            "join",
            "crash x",
            "crash 999",
            "signal HUP",
            "dance",
            "chat",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn follows_appends_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fake-control.txt");
        std::fs::write(&p, "crash 3\n").unwrap();
        let mut w = Watcher::new(&p);
        assert!(w.poll().is_empty(), "old content is skipped");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"join A\njoin B").unwrap();
        assert_eq!(w.poll(), vec!["join A\n".to_string()]);
        f.write_all(b"\n").unwrap();
        assert_eq!(w.poll(), vec!["join B\n".to_string()]);
        std::fs::write(&p, "leave A\n").unwrap();
        assert_eq!(w.poll(), vec!["leave A\n".to_string()]);
        let mut missing = Watcher::new(&dir.path().join("nope"));
        assert!(missing.poll().is_empty());
    }
}
