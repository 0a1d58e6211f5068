//! The dashboard page and its assets, embedded in the binary so a live session can be watched
//! offline: no file system, no CDN. The server answers `/` with `index.html` and `/assets/NAME`
//! with [`asset`]`(NAME)`; nothing else is reachable.
//!
//! The page (`dashboard/index.html`, `app.js`, `style.css`) reads `/api/schema`, taps the model,
//! truth, marker, feature and `condition_means` streams over WebSocket and polls `/api/status`.
//! Its charts are uPlot, copied from `dashboard/node_modules` by `build.rs` at build time.

/// Every embedded asset: name (as in `/assets/NAME`), bytes, content type.
const ASSETS: [(&str, &[u8], &str); 6] = [
    (
        "index.html",
        include_bytes!("dashboard/index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "app.js",
        include_bytes!("dashboard/app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "style.css",
        include_bytes!("dashboard/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "uPlot.iife.min.js",
        include_bytes!(concat!(env!("OUT_DIR"), "/uPlot.iife.min.js")),
        "text/javascript; charset=utf-8",
    ),
    (
        "uPlot.min.css",
        include_bytes!(concat!(env!("OUT_DIR"), "/uPlot.min.css")),
        "text/css; charset=utf-8",
    ),
    (
        "uPlot.LICENSE.txt",
        include_bytes!(concat!(env!("OUT_DIR"), "/uPlot.LICENSE.txt")),
        "text/plain; charset=utf-8",
    ),
];

/// The embedded asset called `name` (exactly; no paths), as its bytes and content type.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS
        .iter()
        .find(|(asset, _, _)| *asset == name)
        .map(|(_, bytes, content_type)| (*bytes, *content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> &'static str {
        let (bytes, _) = asset(name).unwrap_or_else(|| panic!("{name} is embedded"));
        std::str::from_utf8(bytes).expect("UTF-8 text")
    }

    /// The literal `/assets/NAME` references of a text (`"/assets/" + name` in the loader is
    /// covered by its list instead).
    fn references(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("/assets/") {
            rest = &rest[at + "/assets/".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            if end > 0 {
                found.push(rest[..end].to_string());
            }
        }
        found
    }

    #[test]
    fn every_asset_the_page_references_is_served() {
        let html = text("index.html");
        let mut names = references(html);
        let list = html
            .split("name=\"heloflow-assets\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("index.html lists its assets in <meta name=\"heloflow-assets\">");
        names.extend(list.split_whitespace().map(str::to_string));
        names.extend(references(text("app.js")));
        for wanted in ["app.js", "style.css", "uPlot.iife.min.js", "uPlot.min.css"] {
            assert!(names.iter().any(|n| n == wanted), "the page loads {wanted}");
        }
        for name in &names {
            assert!(asset(name).is_some(), "{name} is referenced but not served");
        }
    }

    #[test]
    fn the_page_loads_nothing_from_outside() {
        for (name, _, content_type) in ASSETS {
            if name.starts_with("uPlot") {
                continue;
            }
            let text = text(name);
            for scheme in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(scheme), "{name} mentions {scheme}");
            }
            assert!(content_type.ends_with("charset=utf-8"), "{name}");
        }
        assert!(text("uPlot.iife.min.js").contains("var uPlot="));
        assert!(text("uPlot.LICENSE.txt").contains("MIT License"));
    }

    #[test]
    fn names_are_exact_and_paths_are_not_assets() {
        assert_eq!(asset("index.html").unwrap().1, "text/html; charset=utf-8");
        assert_eq!(asset("app.js").unwrap().1, "text/javascript; charset=utf-8");
        for name in [
            "",
            "/app.js",
            "./app.js",
            "../Cargo.toml",
            "dashboard/app.js",
            "APP.JS",
            "app.js ",
            "node_modules/uplot/package.json",
        ] {
            assert!(asset(name).is_none(), "{name:?} is not an asset");
        }
    }
}
