//! The web console, embedded in the binary: the files of `controller/web/dist/` (built and
//! committed by `controller/web/build.sh`, so building the controller needs no Node).
//!
//! [`router`] is merged after the gRPC routes as the fallback. A GET of a file of `dist/` serves
//! it; any other GET serves `index.html`, so the console's own paths (`/servers/3`) survive a
//! reload. Not served, and answered 404 instead (which gRPC and grpc-web clients read as
//! UNIMPLEMENTED): the API's paths (`/languard.*`, `/grpc.*`, `/ws`, `/healthz`, `/metrics`),
//! methods other than GET and HEAD, and missing files (a last path segment with a dot).
//!
//! Responses are revalidated on every use (`cache-control: no-cache`, the file's SHA-256 as ETag,
//! 304 when it matches), and the pre-compressed `<file>.gz` is sent to clients that accept gzip.
//! `index.html` carries a content security policy: only this origin's scripts, styles and
//! connections (grpc-web and the WebSocket), and no framing.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "web/dist/"]
struct Dist;

/// Paths of the API, never answered with the console.
const API_PREFIXES: [&str; 2] = ["/languard.", "/grpc."];
const API_PATHS: [&str; 3] = ["/ws", "/healthz", "/metrics"];

const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's routes: a fallback serving the embedded files.
pub fn router() -> Router {
    Router::new().fallback(serve)
}

fn is_api(path: &str) -> bool {
    API_PREFIXES.iter().any(|p| path.starts_with(p))
        || API_PATHS.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether `accept-encoding` lists gzip (with a non-zero quality).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip"))
                && parts.all(|p| !matches!(p, "q=0" | "q=0.0" | "q=0.00" | "q=0.000"))
        })
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if (method != Method::GET && method != Method::HEAD) || is_api(path) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let requested = path.trim_start_matches('/');
    let name =
        if !requested.is_empty() && !requested.ends_with(".gz") && Dist::get(requested).is_some() {
            requested
        } else if requested
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
        {
            return StatusCode::NOT_FOUND.into_response();
        } else {
            "index.html"
        };
    let gz = format!("{name}.gz");
    let (file, gzipped) = match Dist::get(&gz).filter(|_| accepts_gzip(&headers)) {
        Some(f) => (f, true),
        None => match Dist::get(name) {
            Some(f) => (f, false),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };

    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(file.data.into_owned()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(name)),
        );
        if gzipped {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if name == "index.html" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn index_html_is_served_as_html_at_the_root_and_for_console_paths() {
        for path in ["/", "/index.html", "/servers/3", "/users"] {
            let r = request(Method::GET, path, &[]).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&r, header::CONTENT_TYPE),
                "text/html; charset=utf-8",
                "{path}"
            );
            assert!(
                header_of(&r, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'")
            );
            assert!(body(r).await.contains("<div id=\"app\">"), "{path}");
        }
    }

    #[tokio::test]
    async fn assets_have_their_type_and_go_gzipped_to_who_accepts_it() {
        let plain = request(Method::GET, "/app.js", &[]).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(
            header_of(&plain, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), "");
        let gz = request(
            Method::GET,
            "/app.js",
            &[("accept-encoding", "br, gzip;q=0.8")],
        )
        .await;
        assert_eq!(header_of(&gz, header::CONTENT_ENCODING), "gzip");
        assert_eq!(
            header_of(&gz, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        let refused = request(Method::GET, "/app.css", &[("accept-encoding", "gzip;q=0")]).await;
        assert_eq!(header_of(&refused, header::CONTENT_ENCODING), "");
        assert_eq!(
            header_of(&refused, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn api_paths_other_methods_and_missing_files_are_not_found() {
        for path in [
            "/languard.v1.ServerService/ListServers",
            "/grpc.health.v1.Health/Check",
            "/ws",
            "/healthz",
            "/metrics",
            "/missing.js",
            "/app.js.gz",
        ] {
            let r = request(Method::GET, path, &[]).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let r = request(Method::POST, "/servers/1", &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Paths that merely start like an API path are the console's.
        let r = request(Method::GET, "/wsx", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_matching_etag_gets_not_modified() {
        let r = request(Method::GET, "/app.css", &[]).await;
        let etag = header_of(&r, header::ETAG).to_owned();
        assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
        let again = request(Method::GET, "/app.css", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(body(again).await, "");
    }
}
