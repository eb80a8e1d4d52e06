//! File downloads shared by the API and the admin pages.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// A CSV attachment named `{name}.csv`, streamed from an open file.
pub fn csv_download(name: &str, file: std::fs::File) -> Response {
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
