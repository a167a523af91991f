//! Frames on the socket: a 4-byte big-endian length, then that many bytes of JSON. The framing
//! is tokio-util's `LengthDelimitedCodec` with a size cap; nothing here parses lengths itself.

use super::ServiceError;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{LengthDelimitedCodec, LengthDelimitedCodecError};

/// The codec for one direction of a connection, refusing frames longer than `max` bytes (when
/// decoding, as soon as the length prefix is read, before any body is buffered).
pub fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max)
        .new_codec()
}

/// A message as one frame's bytes. Over `max` is an error the caller can show.
pub fn encode<T: Serialize>(value: &T, max: usize) -> Result<Bytes, ServiceError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ServiceError::Garbled {
        detail: format!("could not encode a message: {e}"),
    })?;
    if bytes.len() > max {
        return Err(ServiceError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(Bytes::from(bytes))
}

/// A frame's bytes as a message.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(frame)
}

/// True when a read failed because the peer announced a frame over the cap.
pub fn is_too_large(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<LengthDelimitedCodecError>().is_some())
}

/// The frozen part of a first frame: its `type` and top-level `protocol`, read loosely so that
/// a peer of any version can be told about a mismatch (see [`super::protocol`]).
#[derive(Debug, serde::Deserialize)]
pub struct FirstFrame {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub protocol: Option<serde_json::Value>,
}

impl FirstFrame {
    pub fn read(frame: &[u8]) -> Option<FirstFrame> {
        serde_json::from_slice(frame).ok()
    }

    /// The protocol number, if it is one (a huge or negative number reads as `u32::MAX`, so it
    /// still mismatches rather than passing as ours).
    pub fn protocol(&self) -> Option<u32> {
        let v = self.protocol.as_ref()?;
        if let Some(n) = v.as_u64() {
            return Some(u32::try_from(n).unwrap_or(u32::MAX));
        }
        v.is_number().then_some(u32::MAX)
    }
}

/// The writing half of a connection that sends with `MSG_NOSIGNAL`: writing to a peer that has
/// gone is an error (`EPIPE`) for this connection, never a SIGPIPE. The headless commands —
/// the service among them — set SIGPIPE back to its default so that `easel history list | head`
/// ends quietly; with plain writes, a client gone before its answer killed the service, and a
/// client whose service had died was killed instead of reconnecting.
pub struct SocketWriter(tokio::net::unix::OwnedWriteHalf);

impl SocketWriter {
    pub fn new(half: tokio::net::unix::OwnedWriteHalf) -> SocketWriter {
        SocketWriter(half)
    }
}

fn send_nosignal(fd: std::os::fd::BorrowedFd<'_>, buf: &[u8]) -> std::io::Result<usize> {
    rustix::net::send(fd, buf, rustix::net::SendFlags::NOSIGNAL).map_err(std::io::Error::from)
}

impl tokio::io::AsyncWrite for SocketWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::os::fd::AsFd;
        let stream: &tokio::net::UnixStream = self.0.as_ref();
        loop {
            std::task::ready!(stream.poll_write_ready(cx))?;
            match stream.try_io(tokio::io::Interest::WRITABLE, || {
                send_nosignal(stream.as_fd(), buf)
            }) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return std::task::Poll::Ready(r),
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::protocol::{ClientFrame, Hello, PROTOCOL_VERSION};
    use futures_util::{SinkExt, StreamExt};
    use tokio_util::codec::{FramedRead, FramedWrite};

    #[tokio::test]
    async fn a_frame_round_trips_and_an_oversized_one_is_refused() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut w = FramedWrite::new(a, codec(1 << 20));
        let mut r = FramedRead::new(b, codec(64));
        let hello = ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client: "t".into(),
        });
        w.send(encode(&hello, 1 << 20).unwrap()).await.unwrap();
        let got = r.next().await.unwrap().unwrap();
        assert_eq!(decode::<ClientFrame>(&got).unwrap(), hello);
        w.send(Bytes::from(vec![b' '; 65])).await.unwrap();
        let err = r.next().await.unwrap().unwrap_err();
        assert!(is_too_large(&err), "{err}");
    }

    #[test]
    fn encoding_over_the_cap_is_an_error_not_a_frame() {
        let err = encode(&"x".repeat(100), 10).unwrap_err();
        assert!(
            matches!(err, ServiceError::TooLarge { max: 10, .. }),
            "{err}"
        );
    }

    #[test]
    fn first_frames_are_read_loosely() {
        let f = FirstFrame::read(br#"{"type":"hello","protocol":7,"future":{"x":1}}"#).unwrap();
        assert_eq!((f.kind.as_str(), f.protocol()), ("hello", Some(7)));
        let f = FirstFrame::read(br#"{"type":"hello","protocol":99999999999}"#).unwrap();
        assert_eq!(f.protocol(), Some(u32::MAX));
        let f = FirstFrame::read(br#"{"type":"hello","protocol":-1}"#).unwrap();
        assert_eq!(f.protocol(), Some(u32::MAX));
        let f = FirstFrame::read(br#"{"type":"hello"}"#).unwrap();
        assert_eq!(f.protocol(), None);
        assert!(FirstFrame::read(b"\xff\x00garbage").is_none());
    }
}
