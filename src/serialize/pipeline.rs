//! Rendering on a background thread while the value is still being read: the reader sends
//! tape segments as it goes, and the text is ready shortly after the last one. The text
//! starts as Latin-1 and is widened to UTF-16 the first time a segment needs it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::out::{Latin1Out, Utf16Out};
use super::render::{RenderConfig, Renderer};
use super::tape::Tape;
use super::text::{RenderedText, Text};
use crate::error::{Code, Error, Result};

/// Render threads alive at once; past this, callers render the whole tape at the end.
const MAX_THREADS: usize = 4;
static LIVE: AtomicUsize = AtomicUsize::new(0);

enum Sink {
    Narrow(Renderer<Latin1Out>),
    Wide(Renderer<Utf16Out>),
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
        }
    }

    fn finish(self, complete: bool) -> Result<RenderedText> {
        Ok(match self {
            Sink::Narrow(r) => {
                let r = r.finish(complete)?;
                RenderedText {
                    text: Text::Latin1(r.out.0),
                    len: r.len,
                    utf8_len: r.utf8_len,
                    truncated: r.truncated,
                }
            }
            Sink::Wide(r) => {
                let r = r.finish(complete)?;
                RenderedText {
                    text: Text::Utf16(r.out.0),
                    len: r.len,
                    utf8_len: r.utf8_len,
                    truncated: r.truncated,
                }
            }
        })
    }
}

enum Msg {
    Segment(Tape),
    End { complete: bool },
}

/// The reader's end of a render thread.
pub struct Pipeline {
    tx: Sender<Msg>,
    handle: JoinHandle<Result<RenderedText>>,
    /// Set by the renderer when more input is useless (text cut, or an error).
    stop: Arc<AtomicBool>,
}

struct LiveGuard;

impl Drop for LiveGuard {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run(rx: Receiver<Msg>, cfg: RenderConfig, stop: Arc<AtomicBool>) -> Result<RenderedText> {
    let _live = LiveGuard;
    let mut sink = Some(Sink::Narrow(Renderer::new(&cfg, Latin1Out::default())));
    let mut failed: Option<Error> = None;
    for msg in rx {
        match msg {
            Msg::Segment(seg) => {
                if failed.is_some() {
                    continue;
                }
                if let Some(s) = sink.take() {
                    let (s, r) = s.feed(&seg);
                    sink = Some(s);
                    match r {
                        Ok(true) => {}
                        Ok(false) => stop.store(true, Ordering::SeqCst),
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            failed = Some(e);
                        }
                    }
                }
            }
            Msg::End { complete } => {
                if let Some(e) = failed {
                    return Err(e);
                }
                return match sink.take() {
                    Some(s) => s.finish(complete),
                    None => Err(Error::new(Code::Internal, "render pipeline lost its sink")),
                };
            }
        }
    }
    Err(Error::new(
        Code::Internal,
        "render pipeline ended without its last segment",
    ))
}

impl Pipeline {
    /// Starts a render thread, or returns `None` when too many are running (or the thread
    /// cannot be spawned); the caller then renders the whole tape at the end.
    pub fn start(cfg: RenderConfig) -> Option<Pipeline> {
        if LIVE.fetch_add(1, Ordering::SeqCst) >= MAX_THREADS {
            LIVE.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        match std::thread::Builder::new()
            .name("acn-render".into())
            .spawn(move || run(rx, cfg, stop2))
        {
            Ok(handle) => Some(Pipeline { tx, handle, stop }),
            Err(_) => {
                LIVE.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// Sends a segment to render.
    pub fn send(&self, seg: Tape) {
        // A send only fails if the thread is gone, which `finish` reports.
        let _ = self.tx.send(Msg::Segment(seg));
    }

    /// True once the text is cut or failed: reading more is useless.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sends the last segment and waits for the text (run this off the main thread).
    pub fn finish(self, last: Tape) -> Result<RenderedText> {
        let complete = last.complete;
        let _ = self.tx.send(Msg::Segment(last));
        let _ = self.tx.send(Msg::End { complete });
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => Err(Error::new(Code::Internal, "render thread panicked")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serialize::{render_text, tape::utf16};

    #[test]
    fn pipeline_matches_render_text_and_widens() {
        let mut whole = Tape::new();
        let mut t = Tape::new();
        let Some(p) = Pipeline::start(RenderConfig::default()) else {
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
        let last = t.take_segment();
        let mut last = last;
        last.complete = true;
        let got = p.finish(last).unwrap();
        let want = render_text(&whole, &RenderConfig::default()).unwrap();
        let (Text::Utf16(a), Text::Utf16(b)) = (&got.text, &want.text) else {
            panic!("expected UTF-16 text");
        };
        assert_eq!(a, b);
        assert_eq!(String::from_utf16(a).unwrap(), "[\"café\",\"日本\"]");
        assert_eq!(got.utf8_len, want.utf8_len);
    }
}
