//! Log lines and ingest progress on stderr, as plain text or JSON.

use std::time::Instant;

use crate::LogFormat;

/// Log lines and progress on stderr: plain lines with a live progress line
/// on a terminal, plain lines with a progress line every few seconds
/// otherwise, or one JSON object per line.
pub struct Reporter {
    format: LogFormat,
    live: bool,
    start: Instant,
    state: std::sync::Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// Per table: rows read, rows to read, done.
    tables: std::collections::BTreeMap<&'static str, (u64, Option<u64>, bool)>,
    /// Seconds since start when progress was last shown.
    shown: f64,
    /// A live line is on screen.
    line: bool,
}

impl Reporter {
    pub fn new(format: LogFormat) -> Reporter {
        use std::io::IsTerminal;
        Reporter {
            format,
            live: matches!(format, LogFormat::Plain) && std::io::stderr().is_terminal(),
            start: Instant::now(),
            state: std::sync::Mutex::new(ProgressState::default()),
        }
    }

    fn line(&self, stage: &str, message: &str, state: &mut ProgressState) {
        let t = self.start.elapsed().as_secs_f64();
        if state.line {
            eprint!("\r\x1b[2K");
            state.line = false;
        }
        match self.format {
            LogFormat::Plain => eprintln!("[{t:>7.2}s] {stage}: {message}"),
            LogFormat::Json => eprintln!(
                "{}",
                serde_json::json!({"t": t, "stage": stage, "message": message})
            ),
        }
    }

    /// A log line.
    pub fn event(&self, stage: &str, message: &str) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.line(stage, message, &mut state);
    }

    /// Progress of an ingest: a live line on a terminal (redrawn at most ten
    /// times a second), otherwise a line per finished table and a summary
    /// line every five seconds.
    pub fn progress(&self, p: &safetyscope_core::store::Progress) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .tables
            .insert(p.table, (p.rows_read, p.rows_total, p.done));
        let t = self.start.elapsed().as_secs_f64();
        if p.done {
            let message = format!("{}: {} rows read", p.table, p.rows_read);
            self.line("ingest", &message, &mut state);
        }
        let every = if self.live { 0.1 } else { 5.0 };
        if t - state.shown < every {
            return;
        }
        state.shown = t;
        let parts: Vec<String> = state
            .tables
            .iter()
            .filter(|(_, (_, _, done))| !done)
            .map(|(name, (read, total, _))| match total {
                Some(n) if *n > 0 && *read > 0 => {
                    let share = *read as f64 / *n as f64;
                    let eta = t * (1.0 - share) / share;
                    format!("{name} {read}/{n} ({:.0} %, ETA {eta:.0} s)", share * 100.0)
                }
                _ => format!("{name} {read}"),
            })
            .collect();
        if parts.is_empty() {
            return;
        }
        let message = format!("reading {}", parts.join(" · "));
        if self.live {
            eprint!("\r\x1b[2K[{t:>7.2}s] ingest: {message}");
            state.line = true;
        } else {
            self.line("ingest", &message, &mut state);
        }
    }
}
