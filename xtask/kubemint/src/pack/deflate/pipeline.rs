//! An ordered, bounded parallel map: the producer pushes jobs in order, worker threads (each
//! with its own [`Deflater`]) turn them into results, and the sink receives the results in the
//! order of their jobs. At most [`WINDOW_PER_THREAD`] jobs per thread are in flight (pushed and
//! not yet handed to the sink), so memory stays bounded however long the stream is. With one
//! thread nothing is spawned: each job runs in the producer's thread as it is pushed.
//!
//! Which thread ran a job never shows in the result, since `work` is a pure function of the job
//! (a reset compressor, see [`Deflater::chunk`]).

use super::{Deflater, Threads};
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

/// Jobs in flight per thread: enough to keep every thread busy while the producer reads and
/// the sink writes.
pub const WINDOW_PER_THREAD: usize = 4;

/// The work done for each job, on whichever thread.
pub type Work<'w, J, R> = &'w (dyn Fn(&mut Deflater, J) -> R + Sync);

/// What the producer pushes jobs into.
pub struct Feeder<'a, J, R, E> {
    mode: Mode<'a, J, R>,
    sink: &'a mut dyn FnMut(R) -> Result<(), E>,
}

enum Mode<'a, J, R> {
    Inline {
        work: Work<'a, J, R>,
        deflater: Box<Deflater>,
    },
    Threads(Ordered<J, R>),
}

struct Ordered<J, R> {
    jobs: SyncSender<(u64, J)>,
    results: Receiver<(u64, R)>,
    pending: BTreeMap<u64, R>,
    sent: u64,
    done: u64,
    window: u64,
}

impl<J, R, E: From<io::Error>> Feeder<'_, J, R, E> {
    /// Queues `job`; when the window is full, first waits for the oldest result and hands it
    /// (and any that follow it) to the sink.
    pub fn push(&mut self, job: J) -> Result<(), E> {
        match &mut self.mode {
            Mode::Inline { work, deflater } => (self.sink)(work(deflater, job)),
            Mode::Threads(o) => {
                while o.sent - o.done >= o.window {
                    o.receive(&mut *self.sink)?;
                }
                o.jobs.send((o.sent, job)).map_err(|_| stopped())?;
                o.sent += 1;
                Ok(())
            }
        }
    }

    /// Waits for every job pushed so far and hands its result to the sink.
    fn drain(&mut self) -> Result<(), E> {
        if let Mode::Threads(o) = &mut self.mode {
            while o.done < o.sent {
                o.receive(&mut *self.sink)?;
            }
        }
        Ok(())
    }
}

impl<J, R> Ordered<J, R> {
    /// Takes one result, then hands every result that is next in order to the sink.
    fn receive<E: From<io::Error>>(
        &mut self,
        sink: &mut dyn FnMut(R) -> Result<(), E>,
    ) -> Result<(), E> {
        let (i, r) = self.results.recv().map_err(|_| stopped())?;
        self.pending.insert(i, r);
        while let Some(r) = self.pending.remove(&self.done) {
            self.done += 1;
            sink(r)?;
        }
        Ok(())
    }
}

/// A worker that panicked closed its channel; the scope re-raises the panic after this error.
fn stopped() -> io::Error {
    io::Error::other("a compression thread stopped")
}

/// Runs `produce`, which pushes jobs into a [`Feeder`]; `work` runs each job on one of
/// `threads` threads; `sink` gets the results in job order. Returns what `produce` returns,
/// once every result has reached the sink. On an error, the jobs still in flight are dropped.
pub fn run<J: Send, R: Send, E: From<io::Error>, T>(
    threads: Threads,
    work: Work<'_, J, R>,
    sink: &mut dyn FnMut(R) -> Result<(), E>,
    produce: impl FnOnce(&mut Feeder<'_, J, R, E>) -> Result<T, E>,
) -> Result<T, E> {
    let n = threads.get();
    if n == 1 {
        let mut feeder = Feeder {
            mode: Mode::Inline {
                work,
                deflater: Box::default(),
            },
            sink,
        };
        return produce(&mut feeder);
    }
    let window = n * WINDOW_PER_THREAD;
    let (jobs, job_rx) = sync_channel::<(u64, J)>(window);
    let job_rx = Mutex::new(job_rx);
    let (result_tx, results) = channel::<(u64, R)>();
    std::thread::scope(|s| {
        for _ in 0..n {
            let result_tx = result_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || {
                let mut deflater = Deflater::new();
                loop {
                    // The lock is held while waiting, so one idle worker waits in `recv` and
                    // the others for the lock; a sender dropped ends them all.
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok((i, job)) = next else { break };
                    if result_tx.send((i, work(&mut deflater, job))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        let mut feeder = Feeder {
            mode: Mode::Threads(Ordered {
                jobs,
                results,
                pending: BTreeMap::new(),
                sent: 0,
                done: 0,
                window: window as u64,
            }),
            sink,
        };
        let out = produce(&mut feeder).and_then(|t| feeder.drain().map(|()| t));
        // Dropping the feeder drops the job sender: the workers finish and the scope ends.
        drop(feeder);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_in_order_and_the_window_bounds_what_is_in_flight() {
        for n in [1, 2, 4, 7] {
            let in_flight = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let work = |_: &mut Deflater, j: u32| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later jobs finish sooner, so results arrive out of order.
                std::thread::sleep(std::time::Duration::from_micros(u64::from(50 - j % 50)));
                j * 2
            };
            let mut got = Vec::new();
            let mut sink = |r: u32| -> io::Result<()> {
                in_flight.fetch_sub(1, Ordering::SeqCst);
                got.push(r);
                Ok(())
            };
            let out = run(Threads::new(n), &work, &mut sink, |f| {
                (0..500).try_for_each(|j| f.push(j))?;
                Ok::<_, io::Error>("done")
            })
            .unwrap();
            assert_eq!(out, "done");
            assert_eq!(got, (0..500).map(|j| j * 2).collect::<Vec<_>>());
            assert!(peak.load(Ordering::SeqCst) <= n * WINDOW_PER_THREAD, "{n}");
        }
    }

    #[test]
    fn an_error_from_the_sink_or_the_producer_stops_the_run() {
        for n in [1, 3] {
            let work = |_: &mut Deflater, j: u32| j;
            let mut sink = |r: u32| {
                if r == 100 {
                    Err(io::Error::other("sink says no"))
                } else {
                    Ok(())
                }
            };
            let err = run(Threads::new(n), &work, &mut sink, |f| {
                (0..1000).try_for_each(|j| f.push(j))
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "sink says no");
            let mut sink = |_: u32| Ok(());
            let err = run(Threads::new(n), &work, &mut sink, |f| {
                f.push(1)?;
                Err::<(), _>(io::Error::other("producer says no"))
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "producer says no");
        }
    }
}
