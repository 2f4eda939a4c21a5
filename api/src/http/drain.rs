//! Uploads read to their end before an early refusal is answered. A route
//! that refuses an upload before reading it (a wrong key, a bad field
//! before the file) would otherwise answer and close the connection while
//! the client is still sending: clients that stream their upload (Node's
//! fetch, which OpenAI's Node SDK uses) then see a reset connection instead
//! of the answer. The rest of the body is read and discarded, up to the
//! route's limit and for a bounded time, so memory stays flat.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;

/// Longest an unread rest is read for.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// Runs the request; if it is refused with its body unread, reads the
/// rest of the body (at most `limit` bytes) before answering.
pub async fn unread_body(limit: usize, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (back, returned) = oneshot::channel();
    let body = Body::new(Returning {
        inner: Some(body),
        back: Some(back),
        ended: false,
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // The handler has returned: the request, and the body with it, was
    // dropped, and what was left of it came back (or it was read whole).
    let drained = async move {
        let Ok(rest) = returned.await else {
            return;
        };
        rest.into_data_stream()
            .take_while(|chunk| std::future::ready(chunk.is_ok()))
            .scan(0usize, |seen, chunk| {
                *seen = seen.saturating_add(chunk.map_or(0, |c| c.len()));
                std::future::ready((*seen <= limit).then_some(()))
            })
            .for_each(|()| std::future::ready(()))
            .await;
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drained).await;
    response
}

/// A request body that hands itself back when dropped unfinished.
struct Returning {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Body>>,
    ended: bool,
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(HttpBody::size_hint)
            .unwrap_or_default()
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let (Some(inner), Some(back)) = (self.inner.take(), self.back.take()) {
            if !inner.is_end_stream() {
                let _ = back.send(inner);
            }
        }
    }
}
