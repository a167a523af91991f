//! The terminal's events, read on a thread of our own that can be paused while something else
//! owns the terminal (the full view, the external editor, a suspended studio, a terminal query).
//!
//! Why not crossterm's `EventStream`: its reader can only be stopped by dropping the stream,
//! and dropping it wakes crossterm's shared input poll. When that wake and a key arrive before
//! the next poll, crossterm reports the wake and drops the key's readiness (the poll is
//! edge-triggered), so the key stays unread until another one comes: "press `q` after the full
//! view and nothing happens". Here nothing is ever woken: the reader polls with a short timeout
//! and checks between polls whether it should pause.

use crossterm::event::Event;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long one poll waits for input before the reader looks at its orders again: the longest a
/// pause waits for the reader to let go of the terminal. Keys are read as soon as they arrive.
const POLL: Duration = Duration::from_millis(50);

/// After a failed read, wait this long before trying again (a broken terminal must not spin).
const AFTER_ERROR: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// Asked to stop reading; the reader answers with `Paused` once it no longer touches the
    /// terminal.
    PauseAsked,
    Paused,
    Stop,
}

struct Control {
    state: Mutex<State>,
    changed: Condvar,
}

impl Control {
    fn set(&self, state: State) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
        self.changed.notify_all();
    }
}

/// The terminal's events, in order. Dropping it stops the reader.
pub struct TerminalInput {
    rx: UnboundedReceiver<std::io::Result<Event>>,
    control: Arc<Control>,
}

impl TerminalInput {
    /// Start reading the terminal.
    pub fn start() -> TerminalInput {
        Self::start_with(crossterm_source)
    }

    /// Start reading from `source`: `poll(timeout)` says whether an event is ready, `read`
    /// takes it. (Tests give a scripted source.)
    fn start_with<S>(source: S) -> TerminalInput
    where
        S: FnMut(Duration) -> std::io::Result<Option<Event>> + Send + 'static,
    {
        let (tx, rx) = unbounded_channel();
        let control = Arc::new(Control {
            state: Mutex::new(State::Reading),
            changed: Condvar::new(),
        });
        let reader = control.clone();
        let started = std::thread::Builder::new()
            .name("terminal-input".into())
            .spawn(move || read_loop(source, &reader, &tx));
        if let Err(e) = started {
            let (tx, rx) = unbounded_channel();
            let _ = tx.send(Err(e));
            return TerminalInput { rx, control };
        }
        TerminalInput { rx, control }
    }

    /// The next event; `None` once the reader has ended.
    pub async fn next(&mut self) -> Option<std::io::Result<Event>> {
        self.rx.recv().await
    }

    /// Stop reading and return once the reader no longer touches the terminal (at most one
    /// poll's time). Events read before that are still delivered by `next`.
    pub fn pause(&self) {
        let mut state = self
            .control
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *state != State::Reading {
            return;
        }
        *state = State::PauseAsked;
        self.control.changed.notify_all();
        // Bounded: a reader stuck in a read (it never should be) must not hang the studio.
        let (_state, _) = self
            .control
            .changed
            .wait_timeout_while(state, POLL * 20, |s| *s == State::PauseAsked)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Read again after `pause`.
    pub fn resume(&self) {
        let mut state = self
            .control
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, State::Paused | State::PauseAsked) {
            *state = State::Reading;
            self.control.changed.notify_all();
        }
    }
}

impl Drop for TerminalInput {
    fn drop(&mut self) {
        self.control.set(State::Stop);
    }
}

fn crossterm_source(timeout: Duration) -> std::io::Result<Option<Event>> {
    if crossterm::event::poll(timeout)? {
        crossterm::event::read().map(Some)
    } else {
        Ok(None)
    }
}

fn read_loop<S>(mut source: S, control: &Control, tx: &UnboundedSender<std::io::Result<Event>>)
where
    S: FnMut(Duration) -> std::io::Result<Option<Event>>,
{
    loop {
        {
            let mut state = control.state.lock().unwrap_or_else(PoisonError::into_inner);
            if *state == State::PauseAsked {
                *state = State::Paused;
                control.changed.notify_all();
            }
            while *state == State::Paused {
                state = control
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if *state == State::Stop {
                return;
            }
        }
        match source(POLL) {
            Ok(Some(event)) => {
                if tx.send(Ok(event)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                if tx.send(Err(e)).is_err() {
                    return;
                }
                std::thread::sleep(AFTER_ERROR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    type Keys = Arc<Mutex<Vec<Event>>>;

    /// A source that hands out the keys put into `keys`, and counts its polls.
    fn scripted() -> (
        Keys,
        Arc<AtomicUsize>,
        impl FnMut(Duration) -> std::io::Result<Option<Event>> + Send + 'static,
    ) {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicUsize::new(0));
        let (k, p) = (keys.clone(), polls.clone());
        let source = move |timeout: Duration| {
            p.fetch_add(1, Ordering::SeqCst);
            let next = {
                let mut k = k.lock().unwrap();
                if k.is_empty() {
                    None
                } else {
                    Some(k.remove(0))
                }
            };
            if next.is_none() {
                std::thread::sleep(timeout.min(Duration::from_millis(5)));
            }
            Ok(next)
        };
        (keys, polls, source)
    }

    #[tokio::test]
    async fn keys_arrive_in_order() {
        let (keys, _, source) = scripted();
        keys.lock().unwrap().extend([key('a'), key('b')]);
        let mut input = TerminalInput::start_with(source);
        assert_eq!(input.next().await.unwrap().unwrap(), key('a'));
        assert_eq!(input.next().await.unwrap().unwrap(), key('b'));
    }

    /// While paused the reader does not poll the terminal at all (the full view or the editor
    /// reads it), and every key typed then is left for them; after `resume` keys flow again.
    #[tokio::test]
    async fn a_paused_reader_leaves_the_terminal_alone() {
        let (keys, polls, source) = scripted();
        let mut input = TerminalInput::start_with(source);
        input.pause();
        let before = polls.load(Ordering::SeqCst);
        keys.lock().unwrap().push(key('x'));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(polls.load(Ordering::SeqCst), before, "polled while paused");
        assert_eq!(
            keys.lock().unwrap().len(),
            1,
            "a key was taken while paused"
        );
        input.resume();
        assert_eq!(input.next().await.unwrap().unwrap(), key('x'));
    }

    #[tokio::test]
    async fn errors_are_reported_and_reading_goes_on() {
        let mut first = true;
        let source = move |_t: Duration| {
            if std::mem::take(&mut first) {
                Err(std::io::Error::other("broken"))
            } else {
                Ok(Some(key('k')))
            }
        };
        let mut input = TerminalInput::start_with(source);
        assert!(input.next().await.unwrap().is_err());
        assert_eq!(input.next().await.unwrap().unwrap(), key('k'));
    }
}
