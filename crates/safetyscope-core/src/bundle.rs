//! The static dashboard as a deliverable: a ready-to-host site directory
//! (page, WASM bindings, the dataset's canonical tables as Parquet and a
//! manifest), or one self-contained HTML file that opens from `file://`.

use std::path::Path;

use crate::io::mapping::Mapping;
use crate::model::schema::TableKind;
use crate::session::dataset::Dataset;
use crate::util::error::{Error, Result};

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const STYLE_CSS: &str = include_str!("../../../web/style.css");
const GLUE: &str = "safetyscope_wasm.js";
const WASM: &str = "safetyscope_wasm_bg.wasm";

/// Parquet files of canonical tables.
type TableFiles = Vec<(TableKind, Vec<u8>)>;

/// The canonical tables of a dataset as Parquet files, with the mapping
/// text (timezone and roster) the page loads them with.
async fn data_files(ds: &Dataset) -> Result<(TableFiles, String)> {
    let mut out = vec![];
    for kind in TableKind::ALL {
        if !ds.has_table(kind) || ds.row_count(kind) == 0 {
            continue;
        }
        let schema = kind.def().arrow_schema(ds.timezone());
        let bytes = crate::io::output::encode(
            &ds.collect(kind).await?,
            &schema,
            crate::io::output::OutputFormat::Parquet,
        )?;
        out.push((kind, bytes));
    }
    let m = Mapping {
        timezone: Some(ds.timezone().to_string()),
        roster: ds.roster().cloned(),
        ..Default::default()
    };
    let text = toml::to_string(&m).map_err(|e| Error::option("mapping", e.to_string()))?;
    Ok((out, text))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn pkg_files(pkg: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    for f in [GLUE, WASM] {
        if !pkg.join(f).is_file() {
            return Err(Error::option(
                "pkg",
                format!(
                    "{} has no {f}: build the WASM bindings first (scripts/build-wasm.sh)",
                    pkg.display()
                ),
            ));
        }
    }
    Ok((read(&pkg.join(GLUE))?, read(&pkg.join(WASM))?))
}

/// Write the dashboard site into `out` (replaced as a whole once complete):
/// `index.html`, `app.js`, `style.css`, `pkg/` from `pkg`, and `data/` with
/// the dataset's canonical tables, `dataset.toml` and `manifest.json`.
pub async fn write_site(ds: &Dataset, pkg: &Path, out: &Path) -> Result<()> {
    let (glue, wasm) = pkg_files(pkg)?;
    let (files, mapping) = data_files(ds).await?;
    let tmp = crate::io::output::temp_sibling(out, "tmp")?;
    let result = (|| -> Result<()> {
        let w = |rel: &str, bytes: &[u8]| -> Result<()> {
            let p = tmp.join(rel);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
            std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
        };
        w("index.html", INDEX_HTML.as_bytes())?;
        w("app.js", APP_JS.as_bytes())?;
        w("style.css", STYLE_CSS.as_bytes())?;
        w(&format!("pkg/{GLUE}"), &glue)?;
        w(&format!("pkg/{WASM}"), &wasm)?;
        let mut listed = vec![];
        for (kind, bytes) in &files {
            let rel = format!("data/{}.parquet", kind.name());
            w(&rel, bytes)?;
            listed.push(serde_json::json!({"table": kind.name(), "file": rel}));
        }
        w("data/dataset.toml", mapping.as_bytes())?;
        let manifest = serde_json::json!({
            "timezone": ds.timezone(),
            "mapping": "data/dataset.toml",
            "files": listed,
        });
        w("data/manifest.json", manifest.to_string().as_bytes())?;
        if out.exists() {
            std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The module without its `name` and `producers` custom sections (function
/// names for stack traces, tool versions): the browser runs it the same.
/// Errors name a module that is not WebAssembly.
fn without_names(wasm: &[u8]) -> Result<Vec<u8>> {
    let bad = || Error::option("pkg", format!("{WASM} is not a WebAssembly module"));
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(bad());
    }
    // An unsigned LEB128 number at `i`: its value and the index after it.
    let leb = |mut i: usize| -> Option<(usize, usize)> {
        let (mut v, mut shift) = (0usize, 0u32);
        loop {
            let b = *wasm.get(i)?;
            i += 1;
            v |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some((v, i));
            }
            shift += 7;
            if shift > 35 {
                return None;
            }
        }
    };
    let mut out = wasm[..8].to_vec();
    let mut i = 8;
    while i < wasm.len() {
        let id = wasm[i];
        let (size, start) = leb(i + 1).ok_or_else(bad)?;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= wasm.len())
            .ok_or_else(bad)?;
        let drop = id == 0
            && leb(start)
                .and_then(|(n, at)| wasm.get(at..at.checked_add(n)?))
                .is_some_and(|name| name == b"name" || name == b"producers");
        if !drop {
            out.extend_from_slice(&wasm[i..end]);
        }
        i = end;
    }
    Ok(out)
}

/// Gzip at the best compression (the page inflates it with the browser's
/// `DecompressionStream`).
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes)
        .and_then(|_| e.finish())
        .map_err(|e| Error::option("pkg", format!("cannot compress the WASM module: {e}")))
}

/// Base64 (standard alphabet, padded).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The wasm-bindgen glue and the page script as one classic module body:
/// the glue's `export` keywords dropped, the page's import of it removed.
fn inline_module(glue: &str) -> Result<String> {
    let mut body = String::new();
    for line in glue.lines() {
        if line.starts_with("export {") {
            continue;
        }
        body.push_str(line.strip_prefix("export ").unwrap_or(line));
        body.push('\n');
    }
    body.push_str("const init = __wbg_init;\n");
    let app: String = APP_JS
        .lines()
        .filter(|l| !l.starts_with("import init"))
        .map(|l| format!("{l}\n"))
        .collect();
    if app.len() == APP_JS.len() {
        return Err(Error::option(
            "pkg",
            "the page script has no import of the bindings",
        ));
    }
    body.push_str(&app);
    Ok(body)
}

/// Write one self-contained HTML report: the page with its style, the
/// bindings, the WASM module (without its name section, gzipped) and the
/// data inline without the position fixes (listed in the bundle's
/// `left_out`), a Content Security Policy that allows exactly the inline
/// script and style (by hash) and no network at all. Opens from `file://` by double-click.
pub async fn write_single_file(ds: &Dataset, pkg: &Path, out: &Path) -> Result<()> {
    use sha2::Digest;
    let (glue, wasm) = pkg_files(pkg)?;
    let (files, mapping) = data_files(ds).await?;
    // Position fixes are the bulk of a dataset and only feed the fence
    // intrusions: a file meant to be mailed leaves them out and says so.
    let left_out: Vec<&str> = files
        .iter()
        .filter(|(k, _)| *k == TableKind::Positions)
        .map(|(k, _)| k.name())
        .collect();
    let files: Vec<_> = files
        .into_iter()
        .filter(|(k, _)| *k != TableKind::Positions)
        .collect();
    let wasm = gzip(&without_names(&wasm)?)?;
    let glue = String::from_utf8(glue)
        .map_err(|_| Error::option("pkg", format!("{GLUE} is not UTF-8")))?;
    let script = inline_module(&glue)?;
    let bundle = serde_json::json!({
        "timezone": ds.timezone(),
        "mapping_text": mapping,
        "wasm_gzip": base64(&wasm),
        "left_out": left_out,
        "files": files.iter().map(|(k, b)| serde_json::json!({
            "table": k.name(),
            "file": format!("{}.parquet", k.name()),
            "b64": base64(b),
        })).collect::<Vec<_>>(),
    });
    // JSON inside <script>: "</" must not close the element.
    let data = bundle.to_string().replace("</", "<\\/");
    let hash = |s: &str| base64(&sha2::Sha256::digest(s.as_bytes()));
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}' 'wasm-unsafe-eval'; style-src 'sha256-{}'; img-src data: blob:; connect-src 'none'; object-src 'none'; base-uri 'none'",
        hash(&script),
        hash(STYLE_CSS)
    );
    let head_start = INDEX_HTML
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .ok_or_else(|| Error::option("page", "index.html has no CSP meta element"))?;
    let head_end = head_start
        + INDEX_HTML[head_start..]
            .find('>')
            .ok_or_else(|| Error::option("page", "unterminated CSP meta element"))?
        + 1;
    let mut html = String::with_capacity(data.len() + script.len() + 64 * 1024);
    html.push_str(&INDEX_HTML[..head_start]);
    html.push_str(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
    ));
    let rest = &INDEX_HTML[head_end..];
    let rest = rest
        .replace("<link rel=\"stylesheet\" href=\"style.css\">", &format!("<style>{STYLE_CSS}</style>"))
        .replace(
            "<script type=\"module\" src=\"app.js\"></script>",
            &format!(
                "<script type=\"application/json\" id=\"safetyscope-data\">{data}</script>\n<script type=\"module\">{script}</script>"
            ),
        );
    if !rest.contains("id=\"safetyscope-data\"") {
        return Err(Error::option(
            "page",
            "index.html has no app.js script element",
        ));
    }
    html.push_str(&rest);
    crate::io::output::write_atomic(out, html.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn name_sections_are_dropped_and_the_rest_kept() {
        // Header, a type section, a `name` custom section, a custom section
        // of another name.
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        m.extend_from_slice(&[0, 7, 4, b'n', b'a', b'm', b'e', 9, 9]);
        m.extend_from_slice(&[0, 3, 2, b'x', b'y']);
        let out = super::without_names(&m).unwrap();
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        want.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        want.extend_from_slice(&[0, 3, 2, b'x', b'y']);
        assert_eq!(out, want);
        // Truncated or foreign bytes are an error, never a panic.
        assert!(super::without_names(b"\0asm\x01\0\0\0\x01\xff").is_err());
        assert!(super::without_names(b"PK").is_err());
        assert!(super::without_names(&m[..m.len() - 1]).is_err());
    }
}
