//! Progress on stderr for long steps. `main` decides whether it is shown (a TTY); the library
//! only reports, so tests and scripts see nothing.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{Read, Write};

/// Where progress goes: nowhere (`hidden`), or bars and step lines on stderr.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn hidden() -> Progress {
        Progress { multi: None }
    }

    pub fn stderr() -> Progress {
        Progress {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
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
            return Bar(None);
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
        Bar(Some(m.add(bar.with_message(label.to_owned()))))
    }
}

/// One progress bar; does nothing when progress is hidden.
pub struct Bar(Option<ProgressBar>);

impl Bar {
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
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
