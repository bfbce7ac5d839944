//! The web console of Toka: what `toka serve` answers at `/` for the people who
//! oversee agents — the agent tree, a live event stream, pending approvals, and trust
//! at a glance (head, checkpoint check, commit rate).
//!
//! What it is not: a second API. The page, its stylesheet and its script are static
//! files embedded in the binary; the script calls the HTTP API with the token the
//! person pasted (kept in the tab's session storage, sent as the bearer, never in a
//! URL), so the console sees exactly what that token may see and does exactly what it
//! may do. The live stream is read with `fetch` (a browser's `EventSource` cannot send
//! an `Authorization` header).
//!
//! Nothing is loaded from elsewhere: the Content-Security-Policy allows this origin
//! only, so the console works offline and an injected script has nowhere to send data.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the assets are served from.
pub const ASSET_PREFIX: &str = "/console/";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    path: "/",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
};

const ASSETS: [Asset; 3] = [
    Asset {
        path: "/console/console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/console.js"),
    },
    Asset {
        path: "/console/console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/console.css"),
    },
    Asset {
        path: "/console/icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../assets/icon.svg"),
    },
];

/// This origin only; no inline script, no frames, no forms posting elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn respond(asset: &'static Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new binary may bring new assets: always ask again (they are small).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The console's routes: `/` and its assets under [`ASSET_PREFIX`]. Merge them into
/// a router that has the API.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route(INDEX.path, get(|| async { respond(&INDEX) }));
    for asset in &ASSETS {
        router = router.route(asset.path, get(move || async move { respond(asset) }));
    }
    router
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(path: &str) -> Response {
        router::<()>()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_the_page_and_its_assets_with_a_strict_policy() {
        for path in [
            "/",
            "/console/console.js",
            "/console/console.css",
            "/console/icon.svg",
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap();
            assert!(csp.contains("connect-src 'self'"), "{path}: {csp}");
            assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        }
        assert_eq!(
            get("/console/missing.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for asset in std::iter::once(&INDEX).chain(ASSETS.iter()) {
            for needle in ["http://", "https://", "//cdn", "<script>", " onclick="] {
                // The SVG's namespace is the one URL a file may name.
                let body = asset.body.replace("http://www.w3.org/2000/svg", "");
                assert!(!body.contains(needle), "{} holds {needle:?}", asset.path);
            }
        }
    }

    #[test]
    fn the_token_is_kept_in_session_storage_only() {
        let script = ASSETS[0].body;
        assert!(script.contains("sessionStorage"));
        assert!(!script.contains("localStorage.setItem(TOKEN"));
        assert!(!script.contains("?token="), "the token never goes in a URL");
    }
}
