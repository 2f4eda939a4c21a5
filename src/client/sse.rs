//! Server-sent events read from a streamed response: just what the job
//! event stream uses (`event:` and `data:` lines, comments as keep-alive).

use futures::{Stream, StreamExt};

use crate::error::{Error, Result};

/// One event of the stream.
#[derive(Debug, Default, PartialEq)]
pub struct Event {
    /// `message` when the server names none.
    pub event: String,
    pub data: String,
}

/// The events of `response`'s body, in order, until it ends.
pub fn events(response: reqwest::Response) -> impl Stream<Item = Result<Event>> {
    let chunks = response.bytes_stream();
    futures::stream::unfold(
        (chunks, Parser::default(), std::collections::VecDeque::new()),
        |(mut chunks, mut parser, mut ready)| async move {
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok(event), (chunks, parser, ready)));
                }
                match chunks.next().await {
                    Some(Ok(bytes)) => ready.extend(parser.feed(&bytes)),
                    Some(Err(source)) => {
                        let error = Error::Transport {
                            url: "the event stream".into(),
                            source,
                        };
                        return Some((Err(error), (chunks, parser, ready)));
                    }
                    None => return None,
                }
            }
        },
    )
}

/// Splits bytes into lines and lines into events, across chunk borders.
#[derive(Default)]
struct Parser {
    /// The unfinished last line.
    partial: Vec<u8>,
    current: Event,
    /// Whether `current` has had a field, so blank lines alone send nothing.
    started: bool,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut done = Vec::new();
        for &byte in bytes {
            if byte != b'\n' {
                self.partial.push(byte);
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                done.push(event);
            }
        }
        done
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            if !self.started {
                return None;
            }
            self.started = false;
            let mut event = std::mem::take(&mut self.current);
            if event.event.is_empty() {
                event.event = "message".into();
            }
            return Some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.current.event = value.to_owned(),
            "data" => {
                if self.started && !self.current.data.is_empty() {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
            }
            _ => return None,
        }
        self.started = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_keep_alives_are_read_whole() {
        let mut parser = Parser::default();
        let mut events = parser.feed(b": keep-alive\n\nevent: status\ndata: {\"a\"");
        assert!(events.is_empty());
        events.extend(parser.feed(b":1}\r\n\r\ndata: x\ndata: y\n\n"));
        assert_eq!(
            events,
            vec![
                Event {
                    event: "status".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }
}
