//! Logs: to standard error, as text (colour only on a terminal) or one JSON object per
//! line (`NEWSDESK_LOG_FORMAT=json`).
//!
//! The server writes a line per request. Written straight to standard error, each line
//! is a system call on the request's own thread; `serve` therefore appends its lines to
//! [`LogBuffer`], which a thread of its own writes out every 25 ms (or sooner, at
//! 256 KiB) in one write. The order of lines is kept and none is dropped: when the
//! writer falls 1 MiB behind, logging waits for it.

use crate::config::LogFormat;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Starts logging with this filter (`RUST_LOG`) and format. `batched` hands lines to a
/// writer thread (for `serve`); keep the guard until the end of `main`: dropping it
/// writes what is left.
pub fn init(filter: EnvFilter, format: LogFormat, batched: bool) -> Option<FlushGuard> {
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let (writer, guard) = if batched {
        let (buffer, guard) = LogBuffer::start(std::io::stderr());
        (Writer::Batched(buffer), Some(guard))
    } else {
        (Writer::Direct, None)
    };
    match format {
        // One JSON object per line, the event's fields at the top level.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .init(),
        LogFormat::Text => builder.with_ansi(ansi).with_writer(writer).init(),
    }
    guard
}

/// Where log lines go.
#[derive(Clone)]
enum Writer {
    Direct,
    Batched(Arc<LogBuffer>),
}

impl<'a> MakeWriter<'a> for Writer {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        match self {
            Self::Direct => LineWriter::Direct(std::io::stderr()),
            Self::Batched(buffer) => LineWriter::Batched(buffer),
        }
    }
}

pub enum LineWriter<'a> {
    Direct(std::io::Stderr),
    Batched(&'a LogBuffer),
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Direct(stderr) => stderr.write(buf),
            Self::Batched(buffer) => {
                buffer.push(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Direct(stderr) => stderr.flush(),
            Self::Batched(_) => Ok(()),
        }
    }
}

/// How far the writer thread may fall behind before logging waits for it.
const MAX_PENDING: usize = 1 << 20;
/// Pending bytes that wake the writer before its next look.
const WAKE_AT: usize = 256 * 1024;
/// How often the writer looks for lines: the most a line waits on a quiet server.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(25);

/// Lines waiting for the writer thread.
pub struct LogBuffer {
    state: Mutex<Pending>,
    /// Told when lines arrive or logging ends.
    arrived: Condvar,
    /// Told when the writer has taken the pending lines.
    taken: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

impl LogBuffer {
    /// The buffer and its writer thread, writing to `out`.
    pub fn start(out: impl Write + Send + 'static) -> (Arc<Self>, FlushGuard) {
        let buffer = Arc::new(Self {
            state: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
            taken: Condvar::new(),
        });
        let worker = buffer.clone();
        let thread = std::thread::Builder::new()
            .name("newsdesk-log".into())
            .spawn(move || worker.write_out(out))
            .ok();
        if thread.is_none() {
            // No thread: nobody would empty the buffer. Logging goes on without it.
            buffer.lock().closed = true;
        }
        (buffer.clone(), FlushGuard { buffer, thread })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            let _ = std::io::stderr().write_all(line);
            return;
        }
        while state.bytes.len() > MAX_PENDING && !state.closed {
            state = self.taken.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.bytes.extend_from_slice(line);
        // The writer looks every `WRITE_EVERY` anyway; waking it for each line would
        // cost a switch of threads per request.
        let full = state.bytes.len() >= WAKE_AT;
        drop(state);
        if full {
            self.arrived.notify_one();
        }
    }

    /// The writer thread: takes everything pending and writes it in one go, until
    /// logging ends and nothing is left.
    fn write_out(&self, mut out: impl Write) {
        let mut batch = Vec::new();
        loop {
            let mut state = self.lock();
            if state.bytes.len() < WAKE_AT && !state.closed {
                state = self
                    .arrived
                    .wait_timeout(state, WRITE_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if state.bytes.is_empty() && !state.closed {
                continue;
            }
            if state.bytes.is_empty() {
                return;
            }
            std::mem::swap(&mut state.bytes, &mut batch);
            drop(state);
            self.taken.notify_all();
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
            // A burst can leave a large buffer behind; give back what is well over
            // the usual.
            batch.shrink_to(64 * 1024);
        }
    }
}

/// Writes what is left when dropped.
pub struct FlushGuard {
    buffer: Arc<LogBuffer>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.buffer.lock().closed = true;
        self.buffer.arrived.notify_all();
        self.buffer.taken.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_from_many_threads_and_all_by_the_guard() {
        let out = Shared::default();
        let (buffer, guard) = LogBuffer::start(out.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let buffer = buffer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        // Lines longer than the limit allows in one go, now and then.
                        let pad = if i % 5000 == 0 { 300_000 } else { 10 };
                        buffer.push(format!("{t} {i} {}\n", "x".repeat(pad)).as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            let t: usize = words.next().unwrap().parse().unwrap();
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines in order, none lost");
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }
}
