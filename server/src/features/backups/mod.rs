//! Backups, for admins: the Backups page (the folder, the schedule, the archives kept,
//! recent failures; one taken now; one downloaded) and the same in the JSON API. The
//! backups themselves are taken by the backup service below this.

pub mod api;
pub mod pages;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

use crate::request::{Answer, ApiError, Ctx};

/// Sends an archive of the backup folder as a download, streamed (it is encrypted
/// already), and records the download in the audit trail.
async fn download(ctx: Ctx) -> Answer {
    let name = ctx.param().to_owned();
    let (file, len) = ctx
        .app
        .backups
        .open(&name)
        .ok_or(ApiError::NotFound("backup"))?;
    let who = ctx.principal()?.actor();
    ctx.app
        .backups
        .downloaded(&name, &who, &ctx.client().to_string())
        .await;
    let body = FileBody {
        file: tokio::fs::File::from_std(file),
        left: len,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .body(body.map_err(Into::into).boxed_unsync())
        .map_err(|_| ApiError::NotFound("backup"))
}

/// A file as a response body, read as it is sent.
struct FileBody {
    file: tokio::fs::File,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut self.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the backup file got shorter while it was sent",
                    ))));
                }
                let n = n.min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= n as u64;
                buf.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
