//! A server-sent events parser that reads each byte once and caps the size of one event.
//!
//! It replaces eventsource-stream 0.2.3, which parses the buffered partial line again from its
//! start on every chunk (its issue #11): a completed-image event of several megabytes, arriving
//! in thousands of chunks, cost quadratic time, and a `data:` line that never ends kept a core
//! busy until the idle timeout. Here the parser remembers how far it has looked for a line end,
//! so each byte is scanned once, and an event (its data so far plus the unfinished line) larger
//! than the cap is refused as soon as it gets there.
//!
//! The format is the WHATWG one: lines end in LF, CR LF or CR; `data:` lines are joined with LF;
//! `event:` sets the type; lines starting with `:` are comments; `id:` and `retry:` are ignored
//! (the client never reconnects); a blank line ends an event, and an event without data is not
//! dispatched. An unfinished event at the end of the stream is dropped, as the spec says.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, empty when there was none.
    pub event: String,
    /// The `data:` lines joined with LF. Not yet checked to be UTF-8.
    pub data: Vec<u8>,
}

/// Why the stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// One event grew past the cap (in bytes).
    TooBig(u64),
}

/// The parser: feed it chunks, take the events it completed.
#[derive(Debug)]
pub struct Parser {
    /// Bytes not yet consumed: `buf[start..]` is the unfinished line.
    buf: Vec<u8>,
    start: usize,
    /// Where the search for the next line end resumes (`start <= scan <= buf.len()`).
    scan: usize,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    event: String,
    data: Vec<u8>,
    max_event: u64,
}

impl Parser {
    pub fn new(max_event_bytes: u64) -> Parser {
        Parser {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            after_cr: false,
            event: String::new(),
            data: Vec::new(),
            max_event: max_event_bytes,
        }
    }

    /// Add a chunk and append every event it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        // Drop consumed bytes once they are at least half the buffer: amortised linear.
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scan..]) {
            let end = self.scan + offset;
            let ending = self.buf[end];
            let mut next = end + 1;
            if ending == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The LF may come in the next chunk.
                    None => self.after_cr = true,
                }
            }
            let (line_start, line_end) = (self.start, end);
            self.start = next;
            self.scan = next;
            self.line(line_start, line_end, out);
            self.check_size()?;
        }
        self.scan = self.buf.len();
        self.check_size()
    }

    fn check_size(&self) -> Result<(), SseError> {
        let pending = (self.data.len() + (self.buf.len() - self.start)) as u64;
        if pending > self.max_event {
            return Err(SseError::TooBig(self.max_event));
        }
        Ok(())
    }

    /// Interpret `buf[from..to]`, one line without its ending.
    fn line(&mut self, from: usize, to: usize, out: &mut Vec<Event>) {
        let line = &self.buf[from..to];
        if line.is_empty() {
            if !self.data.is_empty() {
                // The data of the last line ends in the LF added below; the spec drops it.
                self.data.pop();
                out.push(Event {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    fn data(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| String::from_utf8(e.data.clone()).unwrap())
            .collect()
    }

    #[test]
    fn the_format() {
        let text = b": comment\nevent: image_generation.partial_image\ndata: {\"a\":1}\n\n\
data:two\ndata: lines\nid: 7\nretry: 10\n\n\
event: empty\n\n\
data\n\n\
data: crlf\r\n\r\n\
data: cr\r\rdata: unfinished";
        let events = parse_in(&[text]);
        assert_eq!(data(&events), ["{\"a\":1}", "two\nlines", "", "crlf", "cr"]);
        assert_eq!(events[0].event, "image_generation.partial_image");
        assert_eq!(events[1].event, "");
        // Split at every point, the same events come out.
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(parse_in(&[a, b]), events, "cut at {cut}");
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_in(&bytes), events);
    }

    #[test]
    fn an_event_over_the_cap_is_refused() {
        let mut p = Parser::new(1000);
        let mut out = Vec::new();
        p.feed(b"data: ", &mut out).unwrap();
        let mut result = Ok(());
        for _ in 0..20 {
            result = p.feed(&[b'A'; 100], &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::TooBig(1000)));
        // Many lines of one event count together.
        let mut p = Parser::new(1000);
        let line = [b"data: ".as_slice(), &[b'B'; 200], b"\n"].concat();
        let mut result = Ok(());
        for _ in 0..10 {
            result = p.feed(&line, &mut out);
        }
        assert_eq!(result, Err(SseError::TooBig(1000)));
        // Small events never add up.
        let mut p = Parser::new(1000);
        let event = [b"data: ".as_slice(), &[b'C'; 500], b"\n\n"].concat();
        for _ in 0..100 {
            p.feed(&event, &mut out).unwrap();
        }
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn a_big_event_in_small_chunks_is_linear() {
        // 8 MB in 4 KB chunks: with a parser that rescans the line this takes minutes.
        let mut body = b"event: image_generation.completed\ndata: ".to_vec();
        body.extend(std::iter::repeat_n(b'Q', 8 << 20));
        body.extend_from_slice(b"\n\n");
        let start = std::time::Instant::now();
        let mut p = Parser::new(16 << 20);
        let mut out = Vec::new();
        for c in body.chunks(4096) {
            p.feed(c, &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data.len(), 8 << 20);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
