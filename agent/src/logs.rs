//! The log task of one server: follows the log files its adapter names (for Arma 3 the newest
//! `arma3server_x64_*.rpt` / `arma3server_*.rpt` in the profiles dir, which is also where the agent
//! writes the server's stdout), parses lines into entries with the adapter's parser (`.rpt` or a
//! declared regex), and queues them as `LogBatch` events.
//!
//! Exactly-once: every batch carries a resume token (file identity + offset after its last line).
//! A restarted agent resumes after the newest token among the events still queued and the
//! checkpoint file, which is written when the controller acknowledges a batch. Lines that were
//! queued are resent with their original sequence numbers; lines after them are read again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use languard_adapters::{LogFiles, LogParser, ParsedEntry};
use languard_proto::v1 as pb;
use languard_tail::{Checkpoint, LogSource, TailBatch, TailConfig, TailEvent, TailRecord, Tailer};
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// Makes the parser of a run of the log task.
pub type ParserFactory = Arc<dyn Fn() -> Box<dyn LogParser> + Send + Sync>;

/// Settings of the log task.
#[derive(Clone)]
pub struct LogSettings {
    /// Which files to follow.
    pub files: LogFiles,
    /// The adapter's parser.
    pub parser: ParserFactory,
    /// Lines per second above which lines are dropped and counted (0 = no limit).
    pub max_lines_per_sec: u32,
    /// Old `.rpt` files to keep (0 = never prune).
    pub keep_files: usize,
    /// Where the checkpoint file lives.
    pub checkpoint_path: PathBuf,
    /// How long a pending entry waits for continuation lines before it is sent.
    pub entry_idle: Duration,
}

/// Entries per event.
const MAX_ENTRIES_PER_EVENT: usize = 2000;
/// Text bytes per event: well under the spool's largest record (1 MiB), with room for framing.
const MAX_BYTES_PER_EVENT: usize = 512 * 1024;
/// Longest entry text kept; longer ones (a huge multi-line entry) are cut with a visible marker.
const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// Splits entries into events of at most [`MAX_ENTRIES_PER_EVENT`] entries and about
/// [`MAX_BYTES_PER_EVENT`] bytes, so every event fits in one spool record.
fn into_chunks(entries: Vec<pb::AgentLogEntry>) -> Vec<Vec<pb::AgentLogEntry>> {
    let mut chunks = Vec::new();
    let mut cur: Vec<pb::AgentLogEntry> = Vec::new();
    let mut bytes = 0;
    for mut e in entries {
        if e.text.len() > MAX_ENTRY_BYTES {
            let mut cut = MAX_ENTRY_BYTES;
            while !e.text.is_char_boundary(cut) {
                cut -= 1;
            }
            e.text.truncate(cut);
            e.text.push_str(" [... entry cut by the agent]");
        }
        let size = e.text.len() + e.kind.len() + 32;
        if !cur.is_empty()
            && (cur.len() >= MAX_ENTRIES_PER_EVENT || bytes + size > MAX_BYTES_PER_EVENT)
        {
            chunks.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(e);
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    chunks
}

fn load_checkpoint(path: &Path) -> Option<Checkpoint> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save_checkpoint(path: &Path, c: &Checkpoint) {
    let Ok(json) = serde_json::to_vec(c) else {
        return;
    };
    let tmp = path.with_extension("tmp");
    let ok = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = ok {
        tracing::warn!(error = %e, path = %path.display(), "could not save the log checkpoint");
    }
}

struct Reader {
    server_id: i64,
    parser: Box<dyn LogParser>,
    /// Whether the parser holds an entry back.
    holding: bool,
    /// Checkpoint after the last line pushed into the assembler.
    last_line: Option<Checkpoint>,
    /// Checkpoint after the last line of the last entry that left the assembler.
    emitted: Option<Checkpoint>,
    out: Vec<pb::AgentLogEntry>,
    current_file: Option<PathBuf>,
}

impl Reader {
    fn entry(&mut self, e: ParsedEntry) {
        self.out.push(pb::AgentLogEntry {
            time: Some(prost_types::Timestamp {
                seconds: e.time.timestamp(),
                nanos: i32::try_from(e.time.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            level: e.level as i32,
            kind: e.kind,
            text: e.text,
        });
    }

    fn notice(&mut self, text: String) {
        let now = chrono::Utc::now();
        self.out.push(pb::AgentLogEntry {
            time: Some(prost_types::Timestamp {
                seconds: now.timestamp(),
                nanos: 0,
            }),
            level: pb::LogLevel::Warning as i32,
            kind: "notice".into(),
            text,
        });
    }

    fn start_file(&mut self, path: &Path) {
        self.parser.start_file(path);
        self.current_file = Some(path.to_owned());
    }

    fn flush_pending(&mut self) {
        if let Some(e) = self.parser.flush() {
            self.entry(e);
        }
        if self.holding {
            self.emitted = self.last_line;
            self.holding = false;
        }
    }

    fn take(&mut self, batch: TailBatch) {
        for rec in batch.records {
            match rec {
                TailRecord::Line(line) => {
                    if self.current_file.as_deref() != Some(&*line.file_path) {
                        self.flush_pending();
                        self.start_file(&line.file_path);
                    }
                    if let Some(e) = self.parser.push(&line.text) {
                        self.entry(e);
                        // The finished entry ended with the previous line.
                        self.emitted = self.last_line;
                    }
                    self.holding = true;
                    self.last_line = Some(line.checkpoint());
                }
                TailRecord::Event(ev) => match &ev {
                    TailEvent::Rotated { .. } => self.flush_pending(),
                    TailEvent::Dropped { .. }
                    | TailEvent::Truncated { .. }
                    | TailEvent::CheckpointMissed { .. } => {
                        self.flush_pending();
                        self.notice(ev.to_string());
                    }
                    _ => {}
                },
            }
        }
        // Lines the flood guard dropped also advance the position.
        if let Some(pos) = batch.position
            && self.assembler_is_empty()
        {
            self.emitted = Some(pos);
        }
    }

    fn assembler_is_empty(&self) -> bool {
        // After a flush nothing is pending; before the first line too.
        self.last_line.is_none() || self.emitted == self.last_line
    }
}

/// One run of the log task. Returns an error to be restarted with backoff.
pub async fn run(
    server_id: i64,
    s: LogSettings,
    outbox: Arc<Outbox>,
    cancel: CancellationToken,
) -> Result<(), String> {
    let resume = newest(
        load_checkpoint(&s.checkpoint_path),
        outbox.log_resume_token(server_id),
    );
    let source = LogSource::Directory {
        dir: s.files.dir.clone(),
        patterns: s.files.patterns.clone(),
    };
    let mut cfg = TailConfig::new(source);
    cfg.max_lines_per_sec = s.max_lines_per_sec;
    cfg.partial_line_idle = Some(Duration::from_secs(2));
    let (handle, mut rx) =
        Tailer::spawn(cfg, resume, cancel.child_token()).map_err(|e| e.to_string())?;
    let mut reader = Reader {
        server_id,
        parser: (s.parser)(),
        holding: false,
        last_line: None,
        emitted: None,
        out: Vec::new(),
        current_file: None,
    };
    let mut acks = outbox.subscribe_acks();
    // (seq, checkpoint) of batches not yet acknowledged, oldest first.
    let mut unacked: std::collections::VecDeque<(u64, Checkpoint)> = Default::default();
    let mut prune = tokio::time::interval(Duration::from_secs(600));
    let result = loop {
        let pending = !reader.assembler_is_empty();
        tokio::select! {
            _ = cancel.cancelled() => break Ok(()),
            b = rx.recv() => match b {
                Some(batch) => reader.take(batch),
                None => break Err("log tailer stopped".to_owned()),
            },
            _ = tokio::time::sleep(s.entry_idle), if pending => reader.flush_pending(),
            changed = acks.changed() => {
                if changed.is_err() {
                    break Err("outbox closed".to_owned());
                }
                let acked = *acks.borrow_and_update();
                let mut newest_acked = None;
                while unacked.front().is_some_and(|(seq, _)| *seq <= acked) {
                    newest_acked = unacked.pop_front().map(|(_, c)| c);
                }
                if let Some(c) = newest_acked {
                    save_checkpoint(&s.checkpoint_path, &c);
                }
            }
            _ = prune.tick(), if s.keep_files > 0 => {
                match handle.prune(s.keep_files) {
                    Ok(removed) if !removed.is_empty() => tracing::info!(count = removed.len(), "pruned old log files"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning log files failed"),
                }
            }
        }
        if !reader.out.is_empty() {
            let token = reader
                .emitted
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok())
                .unwrap_or_default();
            let entries = std::mem::take(&mut reader.out);
            let chunks = into_chunks(entries);
            let last = chunks.len().saturating_sub(1);
            for (i, chunk) in chunks.into_iter().enumerate() {
                let resume_token = if i == last {
                    token.clone()
                } else {
                    String::new()
                };
                let body = pb::agent_event::Body::Logs(pb::LogBatch {
                    entries: chunk,
                    resume_token,
                });
                // A full spool refuses log lines instead of dropping them: wait and retry, which
                // stops reading (the file is the buffer).
                let seq = loop {
                    if let Some(seq) = outbox.push(reader.server_id, body.clone()) {
                        break seq;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                };
                if i == last
                    && let Some(c) = reader.emitted
                {
                    unacked.push_back((seq, c));
                }
            }
        }
    };
    handle.cancel();
    result
}

/// The later of two checkpoints: the one from the queue wins when both exist, since queued
/// events are always newer than what was acknowledged.
fn newest(file: Option<Checkpoint>, queued: Option<String>) -> Option<Checkpoint> {
    queued.and_then(|t| serde_json::from_str(&t).ok()).or(file)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn entry(text: String) -> pb::AgentLogEntry {
        pb::AgentLogEntry {
            time: None,
            level: pb::LogLevel::Info as i32,
            kind: "other".into(),
            text,
        }
    }

    #[test]
    fn every_event_fits_in_a_spool_record() {
        // 3,000 lines of 1 KiB: by count alone this would be two events of ~2 MiB and ~1 MiB.
        let entries: Vec<_> = (0..3000)
            .map(|i| entry(format!("{i:04} {}", "x".repeat(1019))))
            .collect();
        let chunks = into_chunks(entries);
        assert!(chunks.len() >= 6, "{}", chunks.len());
        let mut n = 0;
        for c in &chunks {
            let body = pb::LogBatch {
                entries: c.clone(),
                resume_token: "x".repeat(200),
            };
            assert!(body.encoded_len() < 1 << 20, "{}", body.encoded_len());
            n += c.len();
        }
        assert_eq!(n, 3000, "nothing lost");
        assert!(chunks[0][0].text.starts_with("0000 "));
        // One absurd entry is cut, marked, and still fits.
        let chunks = into_chunks(vec![entry("é".repeat(400_000))]);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0][0].text.len() < MAX_ENTRY_BYTES + 64);
        assert!(chunks[0][0].text.ends_with("[... entry cut by the agent]"));
    }
}
