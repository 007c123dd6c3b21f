//! A request body that tells the budget when its bytes leave (see [`Slot`]).

use crate::budget::Slot;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The whole body in one frame, of known length (so it goes with `Content-Length`). The HTTP
/// connection asks for it right after it wrote the head into its buffer and just before it
/// writes both to the socket: that moment marks the slot.
pub(crate) struct PacedBody {
    bytes: Option<Bytes>,
    len: u64,
    slot: Slot,
}

impl PacedBody {
    pub(crate) fn new(bytes: Vec<u8>, slot: Slot) -> Self {
        Self {
            len: bytes.len() as u64,
            bytes: Some(Bytes::from(bytes)),
            slot,
        }
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        this.slot.sent();
        Poll::Ready(this.bytes.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;

    #[tokio::test]
    async fn the_slot_counts_from_the_first_poll_and_the_body_is_whole() {
        let budget = Budget::local(1);
        let slot = budget.acquire().await;
        let mut body = PacedBody::new(b"{\"count\":3}".to_vec(), slot);
        assert_eq!(body.size_hint().exact(), Some(11));
        assert!(!body.is_end_stream());
        // Not out yet: the one request a window is on its way, so nothing else may go.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.acquire())
                .await
                .is_err()
        );
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = frame.expect("a frame").unwrap().into_data().unwrap();
        assert_eq!(&data[..], b"{\"count\":3}");
        assert!(body.is_end_stream());
        assert!(
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
                .await
                .is_none()
        );
    }
}
