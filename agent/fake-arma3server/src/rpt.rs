//! The `.rpt` log writer: header block, short/full/no timestamps, multi-line entries whose
//! continuation lines carry no timestamp, one flush per entry, and a "frozen" state for a hung server.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Local, Timelike};

/// Timestamp form of the lines (server.cfg `timeStampFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// `" 9:12:14 "`: hour space-padded, used until server.cfg is loaded.
    Short,
    /// `"2021/10/05, 08:38:52 "`.
    Full,
    /// No timestamp at all.
    None,
}

impl Stamp {
    /// Parses a server.cfg `timeStampFormat` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "short" => Some(Self::Short),
            "full" => Some(Self::Full),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// The prefix of a line written at `t`.
    pub fn prefix(self, t: &DateTime<Local>) -> String {
        match self {
            Self::Short => format!("{:>2}:{:02}:{:02} ", t.hour(), t.minute(), t.second()),
            Self::Full => t.format("%Y/%m/%d, %H:%M:%S ").to_string(),
            Self::None => String::new(),
        }
    }
}

/// The file name the real server gives its log: `arma3server_x64_YYYY-MM-DD_HH-MM-SS.rpt`.
pub fn file_name(start: &DateTime<Local>) -> String {
    format!("arma3server_x64_{}.rpt", start.format("%Y-%m-%d_%H-%M-%S"))
}

enum Sink {
    Stdout,
    File(File),
    #[cfg(test)]
    Memory(Vec<u8>),
}

struct Inner {
    sink: Sink,
    stamp: Stamp,
    eol: &'static str,
    frozen: bool,
    lines: u64,
}

impl Inner {
    fn write_all(&mut self, text: &str) {
        let r = match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|()| out.flush())
            }
            Sink::File(f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
            #[cfg(test)]
            Sink::Memory(v) => {
                v.extend_from_slice(text.as_bytes());
                Ok(())
            }
        };
        // A closed stdout (the reader went away) must not kill the server: like the real one it
        // keeps running and the output is lost.
        let _ = r;
    }
}

/// A cheap-to-clone handle to the log; every write is one complete entry, flushed at once.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Mutex<Inner>>,
    path: Option<PathBuf>,
}

impl Log {
    fn new(sink: Sink, eol: &'static str, path: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                sink,
                stamp: Stamp::Short,
                eol,
                frozen: false,
                lines: 0,
            })),
            path,
        }
    }

    /// Log to stdout (Linux behaviour).
    pub fn stdout(eol: &'static str) -> Self {
        Self::new(Sink::Stdout, eol, None)
    }

    /// Log into `<dir>/arma3server_x64_<start>.rpt` (Windows behaviour); creates `dir`.
    pub fn profiles(dir: &Path, start: &DateTime<Local>, eol: &'static str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(file_name(start));
        // Append: two starts within one second must not erase the first log.
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self::new(Sink::File(f), eol, Some(path)))
    }

    #[cfg(test)]
    fn memory() -> Self {
        Self::new(Sink::Memory(Vec::new()), "\n", None)
    }

    #[cfg(test)]
    fn contents(&self) -> String {
        match &self.lock().sink {
            Sink::Memory(v) => String::from_utf8_lossy(v).into_owned(),
            _ => String::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log file, when logging into the profiles folder.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn set_stamp(&self, stamp: Stamp) {
        self.lock().stamp = stamp;
    }

    pub fn stamp(&self) -> Stamp {
        self.lock().stamp
    }

    /// Stop all output for good (a hung server writes nothing more).
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// Number of entries written so far (header lines excluded).
    pub fn entries(&self) -> u64 {
        self.lock().lines
    }

    /// Lines without timestamp (the header block).
    pub fn raw(&self, text: &str) {
        let mut g = self.lock();
        if g.frozen {
            return;
        }
        let eol = g.eol;
        let mut buf = String::with_capacity(text.len() + 2);
        for l in text.split('\n') {
            buf.push_str(l.trim_end_matches('\r'));
            buf.push_str(eol);
        }
        g.write_all(&buf);
    }

    /// One entry stamped with the current time. Continuation lines (after `\n`) get no timestamp,
    /// like the real `Error in expression <...>` blocks.
    pub fn line(&self, text: &str) {
        self.line_at(&Local::now(), text);
    }

    pub fn line_at(&self, t: &DateTime<Local>, text: &str) {
        let mut g = self.lock();
        if g.frozen {
            return;
        }
        let eol = g.eol;
        let mut buf = g.stamp.prefix(t);
        for (i, l) in text.split('\n').enumerate() {
            if i > 0 {
                buf.push_str(eol);
            }
            buf.push_str(l.trim_end_matches('\r'));
        }
        buf.push_str(eol);
        g.write_all(&buf);
        g.lines += 1;
    }
}

/// The header block of a real log (no timestamps). `cmdline` is the full command line.
pub fn header(exe: &str, cmdline: &str, start: &DateTime<Local>) -> String {
    let bar = "=".repeat(69);
    let dir = Path::new(exe)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "{bar}\n\
         == {exe}\n\
         == {cmdline}\n\
         \n\
         Original output filename: Arma3Retail_Server_x64\n\
         Exe timestamp: 2021/09/30 12:39:26\n\
         Current time:  {now}\n\
         \n\
         Type: Public\n\
         Build: Stable\n\
         Version: 2.06.148221\n\
         \n\
         Allocator: {dir}/Dll/tbb4malloc_bi_x64.so [2017.0.0.0] [2017.0.0.0]\n\
         PhysMem: 16 GiB, VirtMem : 131072 GiB, AvailPhys : 11 GiB, AvailVirt : 131068 GiB, AvailPage : 15 GiB, PageSize : 4.0 KiB/2.0 MiB/HasLockMemory\n\
         {bar}\n",
        now = start.format("%Y/%m/%d %H:%M:%S"),
    )
}

/// Quotes a command line like the real header does: the exe in quotes, arguments with spaces quoted.
pub fn command_line(exe: &str, args: &[String]) -> String {
    let mut s = format!("\"{exe}\"");
    for a in args {
        s.push(' ');
        if a.contains(' ') && !a.starts_with('"') {
            s.push('"');
            s.push_str(a);
            s.push('"');
        } else {
            s.push_str(a);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn both_timestamp_forms() {
        let t = Local.with_ymd_and_hms(2021, 10, 5, 8, 38, 52).unwrap();
        assert_eq!(Stamp::Short.prefix(&t), " 8:38:52 ");
        assert_eq!(Stamp::Full.prefix(&t), "2021/10/05, 08:38:52 ");
        assert_eq!(Stamp::None.prefix(&t), "");
        let t = Local.with_ymd_and_hms(2021, 10, 5, 18, 3, 4).unwrap();
        assert_eq!(Stamp::Short.prefix(&t), "18:03:04 ");
        assert_eq!(file_name(&t), "arma3server_x64_2021-10-05_18-03-04.rpt");
    }

    #[test]
    fn multi_line_entries_and_freeze() {
        let log = Log::memory();
        let t = Local.with_ymd_and_hms(2021, 10, 5, 8, 40, 59).unwrap();
        log.line_at(&t, "first");
        log.set_stamp(Stamp::Full);
        log.line_at(&t, "Error in expression <a\nb>\r");
        log.freeze();
        log.line_at(&t, "lost");
        assert_eq!(
            log.contents(),
            " 8:40:59 first\n2021/10/05, 08:40:59 Error in expression <a\nb>\n"
        );
        assert_eq!(log.entries(), 2);
    }

    #[test]
    fn header_shape() {
        let t = Local.with_ymd_and_hms(2021, 10, 5, 8, 38, 26).unwrap();
        let cl = command_line(
            "/srv/arma3server_x64",
            &["-port=2302".into(), "-name=a b".into()],
        );
        assert_eq!(cl, "\"/srv/arma3server_x64\" -port=2302 \"-name=a b\"");
        let h = header("/srv/arma3server_x64", &cl, &t);
        let lines: Vec<&str> = h.lines().collect();
        assert!(lines[0].starts_with("=====") && lines.last().unwrap().starts_with("====="));
        assert_eq!(lines[1], "== /srv/arma3server_x64");
        assert_eq!(lines[2], format!("== {cl}"));
        assert!(h.contains("Current time:  2021/10/05 08:38:26"));
        assert!(h.contains("Version: 2.06.148221"));
    }
}
