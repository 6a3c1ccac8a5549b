//! Rendering on a background thread while the value is still being read: the reader sends
//! tape segments as it goes, and the text is ready shortly after the last one. The text
//! starts as Latin-1 and is widened to UTF-16 the first time a segment needs it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::out::{Latin1Out, Utf16Out, Utf8Out};
use super::render::{RenderConfig, Renderer};
use super::tape::Tape;
use super::text::{RenderedText, Target};
use crate::background::{beside_event_loop, cores, lower_priority};
use crate::error::{Code, Error, Result};

/// Render threads, started on first use and kept for the life of the process (starting a
/// thread per call cost about a millisecond of main-thread time here): `beside_event_loop`,
/// one on a 2-core machine. Each job stays on one thread, so its segments are rendered in
/// order.
fn threads() -> usize {
    beside_event_loop(cores())
}

enum Sink {
    Narrow(Renderer<Latin1Out>),
    Wide(Renderer<Utf16Out>),
    Utf8(Renderer<Utf8Out>),
}

impl Sink {
    fn feed(self, seg: &Tape) -> (Sink, Result<bool>) {
        match self {
            Sink::Narrow(r) if seg.max_unit >= 0x100 => {
                let wide = r.map_out(|o| Utf16Out(o.0.iter().map(|&b| u16::from(b)).collect()));
                Sink::Wide(wide).feed(seg)
            }
            Sink::Narrow(mut r) => {
                let res = r.feed(seg);
                (Sink::Narrow(r), res)
            }
            Sink::Wide(mut r) => {
                let res = r.feed(seg);
                (Sink::Wide(r), res)
            }
            Sink::Utf8(mut r) => {
                let res = r.feed(seg);
                (Sink::Utf8(r), res)
            }
        }
    }

    fn finish(self, complete: bool) -> Result<RenderedText> {
        Ok(match self {
            Sink::Narrow(r) => r.finish(complete)?.into(),
            Sink::Wide(r) => r.finish(complete)?.into(),
            Sink::Utf8(r) => r.finish(complete)?.into(),
        })
    }
}

/// What receives a job's text, called once on the render thread (or with an error on the
/// caller's thread when the render thread is gone). If it is dropped uncalled (its thread
/// died mid-job), it is called with `ERR_INTERNAL` then, so no caller waits forever.
pub struct Done(Option<Box<dyn FnOnce(Result<RenderedText>) + Send>>);

impl Done {
    pub fn new(f: impl FnOnce(Result<RenderedText>) + Send + 'static) -> Done {
        Done(Some(Box::new(f)))
    }

    fn call(mut self, r: Result<RenderedText>) {
        if let Some(f) = self.0.take() {
            f(r);
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(Error::new(Code::Internal, "the render thread failed")));
        }
    }
}

enum Msg {
    Start {
        job: u64,
        cfg: RenderConfig,
        target: Target,
        stop: Arc<AtomicBool>,
    },
    Segment {
        job: u64,
        seg: Tape,
    },
    End {
        job: u64,
        complete: bool,
        done: Done,
    },
    Abandon {
        job: u64,
    },
}

struct Job {
    sink: Option<Sink>,
    failed: Option<Error>,
    stop: Arc<AtomicBool>,
}

/// While a job is open, a render thread looks for new segments every `POLL` instead of
/// sleeping in `recv`: a sender then finds no receiver asleep and makes no futex call to wake
/// one. With one segment per 0.25 ms of reading, those wake-ups were 7% of the main thread's
/// time in a 1 MB call (notes/perf-session5.md). The reader unparks the thread once, when it
/// ends the job, so the end is not kept waiting for the next poll.
const POLL: Duration = Duration::from_micros(100);

/// A thread that has heard nothing for this long goes back to sleeping in `recv` even with a
/// job open (a reader that stopped reading must not keep it polling).
const POLL_FOR: Duration = Duration::from_millis(5);

/// One render thread: serves every job assigned to it.
fn serve(rx: Receiver<Msg>) {
    lower_priority();
    let mut jobs: HashMap<u64, Job> = HashMap::new();
    let mut last = Instant::now();
    loop {
        let msg = if jobs.is_empty() || last.elapsed() > POLL_FOR {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            }
        } else {
            match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    std::thread::park_timeout(POLL);
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
            }
        };
        last = Instant::now();
        handle(&mut jobs, msg);
    }
}

/// One message of a render thread.
fn handle(jobs: &mut HashMap<u64, Job>, msg: Msg) {
    match msg {
        Msg::Start {
            job,
            cfg,
            target,
            stop,
        } => {
            let sink = Some(match target {
                Target::Js => Sink::Narrow(Renderer::new(&cfg, Latin1Out::default())),
                Target::Utf8 => Sink::Utf8(Renderer::new(&cfg, Utf8Out::default())),
            });
            jobs.insert(
                job,
                Job {
                    sink,
                    failed: None,
                    stop,
                },
            );
        }
        Msg::Segment { job, seg } => {
            let Some(j) = jobs.get_mut(&job) else {
                return;
            };
            if j.failed.is_some() {
                return;
            }
            if let Some(s) = j.sink.take() {
                let (s, r) = s.feed(&seg);
                j.sink = Some(s);
                match r {
                    Ok(true) => {}
                    Ok(false) => j.stop.store(true, Ordering::SeqCst),
                    Err(e) => {
                        j.stop.store(true, Ordering::SeqCst);
                        j.failed = Some(e);
                    }
                }
            }
        }
        Msg::End {
            job,
            complete,
            done,
        } => {
            let Some(j) = jobs.remove(&job) else {
                done.call(Err(Error::new(Code::Internal, "render job not found")));
                return;
            };
            let result = match (j.failed, j.sink) {
                (Some(e), _) => Err(e),
                (None, Some(s)) => s.finish(complete),
                (None, None) => Err(Error::new(Code::Internal, "render job lost its sink")),
            };
            done.call(result);
        }
        Msg::Abandon { job } => {
            jobs.remove(&job);
        }
    }
}

/// A render thread: where to send, and the thread to unpark.
struct Worker {
    tx: Mutex<Sender<Msg>>,
    thread: Thread,
}

fn pool() -> Option<&'static [Worker]> {
    static POOL: OnceLock<Vec<Worker>> = OnceLock::new();
    let p = POOL.get_or_init(|| {
        (0..threads())
            .filter_map(|i| {
                let (tx, rx) = channel();
                std::thread::Builder::new()
                    .name(format!("acn-render-{i}"))
                    .spawn(move || serve(rx))
                    .ok()
                    .map(|h| Worker {
                        tx: Mutex::new(tx),
                        thread: h.thread().clone(),
                    })
            })
            .collect()
    });
    (!p.is_empty()).then_some(p.as_slice())
}

/// The reader's end of a render job.
pub struct Pipeline {
    job: u64,
    tx: Sender<Msg>,
    thread: Thread,
    /// Set by the renderer when more input is useless (text cut, or an error).
    stop: Arc<AtomicBool>,
    ended: bool,
}

impl Pipeline {
    /// Starts a render job on a render thread, or returns `None` if no thread could be
    /// started; the caller then renders the whole tape at the end.
    pub fn start(cfg: RenderConfig, target: Target) -> Option<Pipeline> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let job = NEXT.fetch_add(1, Ordering::Relaxed);
        let pool = pool()?;
        let worker = &pool[(job % pool.len() as u64) as usize];
        let tx = worker.tx.lock().ok()?.clone();
        let stop = Arc::new(AtomicBool::new(false));
        tx.send(Msg::Start {
            job,
            cfg,
            target,
            stop: Arc::clone(&stop),
        })
        .ok()?;
        Some(Pipeline {
            job,
            tx,
            thread: worker.thread.clone(),
            stop,
            ended: false,
        })
    }

    /// Sends a segment to render.
    pub fn send(&self, seg: Tape) {
        // A send only fails if the thread is gone, which `finish` reports.
        let _ = self.tx.send(Msg::Segment { job: self.job, seg });
    }

    /// True once the text is cut or failed: reading more is useless.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sends the last segment; the render thread calls `done` with the text. Nothing waits:
    /// the event loop hands over a finished read without waking another thread of its own
    /// priority (a libuv worker woken to wait here preempted it, measured in session 3).
    pub fn finish_then(mut self, last: Tape, done: Done) {
        let complete = last.complete;
        self.send(last);
        self.ended = true;
        if let Err(e) = self.tx.send(Msg::End {
            job: self.job,
            complete,
            done,
        }) {
            if let Msg::End { done, .. } = e.0 {
                done.call(Err(Error::new(Code::Internal, "the render thread is gone")));
            }
        }
        // It may be between two polls: the end should not wait for the next one.
        self.thread.unpark();
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.ended {
            // The read failed: the render thread forgets the job.
            let _ = self.tx.send(Msg::Abandon { job: self.job });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serialize::{render_text, tape::utf16, Text};
    use std::sync::mpsc::sync_channel;

    /// Sends the last segment and waits for the text.
    fn finish(p: Pipeline, last: Tape) -> Result<RenderedText> {
        let (tx, rx) = sync_channel(1);
        p.finish_then(
            last,
            Done::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().expect("the render thread answers")
    }

    /// Ends the tape `t` (sent in segments through `p`) as its last, complete segment; returns
    /// the pipeline's text and the text of `whole` rendered in one go.
    fn end(p: Pipeline, t: &mut Tape, whole: &Tape) -> (RenderedText, RenderedText) {
        let mut last = t.take_segment();
        last.complete = true;
        let got = finish(p, last).unwrap();
        let want = render_text(whole, &RenderConfig::default()).unwrap();
        (got, want)
    }

    #[test]
    fn done_dropped_uncalled_reports_an_internal_error() {
        let (tx, rx) = sync_channel(1);
        drop(Done::new(move |r| {
            let _ = tx.send(r);
        }));
        let Err(err) = rx.recv().expect("called on drop") else {
            panic!("expected an error");
        };
        assert_eq!(err.code, Code::Internal);
        // Called once only: after `call`, dropping does nothing more.
        let (tx, rx) = sync_channel(2);
        Done::new(move |r| {
            let _ = tx.send(r.is_ok());
        })
        .call(Err(Error::new(Code::Internal, "x")));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![false]);
    }

    #[test]
    fn a_whole_tape_as_the_only_segment_renders_like_render_text() {
        let mut t = Tape::new();
        t.begin_array();
        t.push_str(&utf16("a"));
        t.end_array();
        t.finish();
        let want = render_text(&t, &RenderConfig::default()).unwrap();
        let mut whole = t.take_segment();
        whole.complete = true;
        let p = Pipeline::start(RenderConfig::default(), Target::Js).expect("a render thread");
        let got = finish(p, whole).unwrap();
        assert_eq!(got.utf8_len, want.utf8_len);
        let (Text::Latin1(a), Text::Latin1(b)) = (&got.text, &want.text) else {
            panic!("expected Latin-1 text");
        };
        assert_eq!(a, b);
    }

    #[test]
    fn pipeline_matches_render_text_and_widens() {
        let mut whole = Tape::new();
        let mut t = Tape::new();
        let Some(p) = Pipeline::start(RenderConfig::default(), Target::Js) else {
            panic!("could not start a render thread");
        };
        for x in [&mut whole, &mut t] {
            x.begin_array();
            x.push_str(&utf16("café"));
        }
        p.send(t.take_segment());
        for x in [&mut whole, &mut t] {
            x.push_str(&utf16("日本"));
            x.end_array();
            x.finish();
        }
        let (got, want) = end(p, &mut t, &whole);
        let (Text::Utf16(a), Text::Utf16(b)) = (&got.text, &want.text) else {
            panic!("expected UTF-16 text");
        };
        assert_eq!(a, b);
        assert_eq!(String::from_utf16(a).unwrap(), "[\"café\",\"日本\"]");
        assert_eq!(got.utf8_len, want.utf8_len);
    }

    #[test]
    fn a_reader_that_pauses_past_the_polling_window_is_still_served() {
        // The render thread polls only for POLL_FOR after a message, then sleeps in `recv`:
        // segments and the end sent after a longer pause must still wake it.
        let mut whole = Tape::new();
        let mut t = Tape::new();
        let p = Pipeline::start(RenderConfig::default(), Target::Js).expect("a render thread");
        for x in [&mut whole, &mut t] {
            x.begin_array();
            x.push_str(&utf16("a"));
        }
        p.send(t.take_segment());
        std::thread::sleep(POLL_FOR * 3);
        for x in [&mut whole, &mut t] {
            x.push_str(&utf16("b"));
        }
        p.send(t.take_segment());
        std::thread::sleep(POLL_FOR * 3);
        for x in [&mut whole, &mut t] {
            x.end_array();
            x.finish();
        }
        let (got, want) = end(p, &mut t, &whole);
        let (Text::Latin1(a), Text::Latin1(b)) = (&got.text, &want.text) else {
            panic!("expected Latin-1 text");
        };
        assert_eq!(a, b);
        assert_eq!(a.as_slice(), b"[\"a\",\"b\"]");
    }
}
