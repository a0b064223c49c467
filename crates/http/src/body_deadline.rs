//! The deadline on every request body, whatever the route: a body that has not arrived in
//! full within `http.body_read_timeout` of its request's head ends in an error
//! ([`BodyTimedOut`]) instead of waiting for the next byte, so a client that trickles or
//! stalls its body holds its connection, and any admission slot its request took, for that
//! long at most. The server wraps each request's body as it arrives; the extractors answer
//! the error with `408 body_timeout`.
//!
//! Written by hand: tower-http's `TimeoutBody` times the gap between frames, not the body in
//! all (a byte every few seconds never trips it), and costs a timer on every request; this
//! one arms its timer only when a body is still incomplete after its first poll, which a
//! small JSON body that came with its head never is.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a body past its deadline ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// A request body that fails once `limit` has passed since the request's head arrived.
#[derive(Debug)]
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    limit: Duration,
    /// Armed the first time the body is waited for.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    /// `inner`, which must have arrived in full within `limit` from now.
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + limit,
            limit,
            timer: None,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or anything in its chain of sources) is a body past its deadline.
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body whose first frame comes at once and whose second never does.
    struct Stalled(bool);

    impl Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"a\":")))))
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_at_its_deadline_not_before() {
        let started = Instant::now();
        let error = DeadlineBody::new(Stalled(false), Duration::from_secs(10))
            .collect()
            .await
            .unwrap_err();
        assert!(is_body_timeout(error.as_ref()), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_body_is_read_without_a_timer() {
        let mut body = DeadlineBody::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")),
            Duration::from_secs(10),
        );
        let bytes = (&mut body).collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{}");
        assert!(body.timer.is_none());
    }
}
