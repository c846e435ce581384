//! Starts the real binary in a temp dir and follows its stdout.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_fake-arma3server");

/// A free loopback UDP port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Fake {
    pub child: Child,
    rx: Receiver<String>,
    /// Every stdout line seen so far (line endings removed).
    pub lines: Vec<String>,
    stderr: Option<std::process::ChildStderr>,
}

impl Fake {
    pub fn start(dir: &Path, args: &[&str]) -> Fake {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let stderr = child.stderr.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let l = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Fake {
            child,
            rx,
            lines: Vec::new(),
            stderr,
        }
    }

    /// Waits until a line matching `pred` arrives; returns it.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(l) = self.lines.iter().find(|l| pred(l)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.lines.push(l.clone());
                    if hit {
                        return Some(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Collects whatever arrives during `d`.
    pub fn drain_for(&mut self, d: Duration) {
        let _ = self.wait_for(d, |_| false);
    }

    pub fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    /// Waits for the exit (kills it after `timeout`) and collects the rest of stdout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("fake server did not exit within {timeout:?}");
            }
            // Keep reading so a full pipe never blocks the child.
            while let Ok(l) = self.rx.try_recv() {
                self.lines.push(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF.
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(2)) {
            self.lines.push(l);
        }
        status
    }

    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `" 9:12:14 "` prefix.
pub fn has_short_stamp(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 9
        && (b[0] == b' ' || b[0].is_ascii_digit())
        && b[1].is_ascii_digit()
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b':'
        && b[6..8].iter().all(u8::is_ascii_digit)
        && b[8] == b' '
}

/// `"2021/10/05, 08:38:52 "` prefix.
pub fn has_full_stamp(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 21
        && b[0..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b','
        && b[11] == b' '
        && b[14] == b':'
        && b[17] == b':'
        && b[20] == b' '
}

/// Runs to completion with the given arguments (for quick refusals).
pub fn run_to_exit(dir: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
