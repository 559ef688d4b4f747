//! Progress on stderr for long steps, and the user's interrupt. `main` decides whether progress
//! is shown (a TTY) and hands in the flag its signal handler sets; the library only reports
//! and, once the flag is set, stops at the next byte it reads or writes through a bar.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where progress goes: nowhere (`hidden`), or bars and step lines on stderr; and whether the
/// user asked the work to stop.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    cancel: Option<&'static AtomicBool>,
}

/// What a read or write through a bar fails with once the user interrupted the work.
#[derive(Debug)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Cancelled {}

/// Whether `e` is the error a cancelled read or write returns.
pub fn is_cancelled(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}

impl Progress {
    pub fn hidden() -> Progress {
        Progress {
            multi: None,
            cancel: None,
        }
    }

    pub fn stderr() -> Progress {
        Progress {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            cancel: None,
        }
    }

    /// The same, stopping work once `flag` is set (by main's SIGINT/SIGTERM handler).
    pub fn cancelled_by(mut self, flag: &'static AtomicBool) -> Progress {
        self.cancel = Some(flag);
        self
    }

    /// Whether the user asked the work to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// An error if the user asked the work to stop.
    pub fn check(&self) -> io::Result<()> {
        if self.cancelled() {
            Err(io::Error::other(Cancelled))
        } else {
            Ok(())
        }
    }

    /// A line the user must see even when progress is hidden (a build waiting for another).
    pub fn notice(&self, message: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(message);
            }
            None => eprintln!("{message}"),
        }
    }

    /// A line saying which step starts.
    pub fn step(&self, message: &str) {
        if let Some(m) = &self.multi {
            let _ = m.println(format!("  {message}"));
        }
    }

    /// A byte-counting bar for a step of known (or unknown) size.
    pub fn bar(&self, label: &str, total: Option<u64>) -> Bar {
        let Some(m) = &self.multi else {
            return Bar(None, self.cancel);
        };
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "  {msg:28} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "  {msg:28} {spinner} {bytes:>10} {bytes_per_sec:>12}",
                )
                .expect("valid template"),
            ),
        };
        Bar(Some(m.add(bar.with_message(label.to_owned()))), self.cancel)
    }
}

/// One progress bar; does nothing when progress is hidden. Reads and writes through it fail
/// with [`Cancelled`] once the user interrupted the work.
pub struct Bar(Option<ProgressBar>, Option<&'static AtomicBool>);

impl Bar {
    fn check(&self) -> io::Result<()> {
        if self.1.is_some_and(|f| f.load(Ordering::Relaxed)) {
            Err(io::Error::other(Cancelled))
        } else {
            Ok(())
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }

    /// Wraps a writer so that every byte written advances this bar.
    pub fn wrap_write<W: Write>(&self, inner: W) -> BarWriter<'_, W> {
        BarWriter { inner, bar: self }
    }

    /// Wraps a reader so that every byte read advances this bar.
    pub fn wrap_read<R: Read>(&self, inner: R) -> BarReader<'_, R> {
        BarReader { inner, bar: self }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

pub struct BarReader<'a, R> {
    inner: R,
    bar: &'a Bar,
}

impl<R: Read> Read for BarReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.bar.check()?;
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

pub struct BarWriter<'a, W> {
    inner: W,
    bar: &'a Bar,
}

impl<W> BarWriter<'_, W> {
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for BarWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bar.check()?;
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
