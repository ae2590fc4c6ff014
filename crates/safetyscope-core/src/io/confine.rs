//! Where the paths written in files may lead, and where results may go.
//!
//! A mapping or a job file is often written by someone other than the
//! person who runs it (a platform user hands a mapping to the nightly job).
//! The paths inside such a file are therefore confined to the file's own
//! directory (or, for a file on an object store, to its prefix): no absolute
//! path, no `..`, no symbolic link out of it, no other bucket. The process
//! may lift this with [`set_allow_outside`] (the CLI's `--allow-outside`,
//! Python's `safetyscope.set_allow_outside(True)`).
//!
//! Results may never be written over or into their own inputs.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::error::{Error, Result};

static ALLOW_OUTSIDE: AtomicBool = AtomicBool::new(false);

/// Allow (or forbid again) paths in mapping and job files that lead outside
/// the file's directory or prefix, for the rest of the process.
pub fn set_allow_outside(allow: bool) {
    ALLOW_OUTSIDE.store(allow, Ordering::Relaxed);
}

/// Whether paths outside a file's directory are allowed.
pub fn allow_outside() -> bool {
    ALLOW_OUTSIDE.load(Ordering::Relaxed)
}

const HOW_TO_ALLOW: &str = "paths in mapping and job files stay inside the file's directory \
     unless allowed (CLI `--allow-outside`, Python `safetyscope.set_allow_outside(True)`)";

fn is_url(s: &str) -> bool {
    s.starts_with("s3://") || s.starts_with("s3a://")
}

/// Check a location written in a file (`what`: the file and the key, for
/// the message) against the file's directory or URL prefix `base`: it must
/// be relative and must not climb out with `..`. A local file may name an
/// object-store prefix (a job reading `s3://lake/safety`); a file on an
/// object store may name only URLs under its own prefix.
pub fn check_location(base: &Path, location: &str, what: &str) -> Result<()> {
    if allow_outside() {
        return Ok(());
    }
    let refuse = |why: &str| {
        Err(Error::mapping(
            Some(what.to_string()),
            format!("`{location}` {why}: {HOW_TO_ALLOW}"),
        ))
    };
    let base_text = base.to_string_lossy();
    if is_url(location) {
        if location.split('/').any(|s| s == "..") {
            return refuse("climbs out of its prefix with `..`");
        }
        if !is_url(&base_text) {
            return Ok(());
        }
        let prefix = format!("{}/", base_text.trim_end_matches('/'));
        if !location.starts_with(&prefix) {
            return refuse("is not under the file's own location");
        }
        if location[prefix.len()..].split('/').any(|s| s == "..") {
            return refuse("climbs out of the file's location with `..`");
        }
        return Ok(());
    }
    let p = Path::new(location);
    if p.is_absolute()
        || p.has_root()
        || matches!(p.components().next(), Some(Component::Prefix(_)))
    {
        return refuse("is an absolute path");
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return refuse("climbs out of the file's directory with `..`");
    }
    Ok(())
}

/// Check that files found for a location (after globs and directory walks)
/// are really inside `base` once symbolic links are followed.
pub fn check_found(base: &Path, found: &[PathBuf], what: &str) -> Result<()> {
    if allow_outside() || is_url(&base.to_string_lossy()) {
        return Ok(());
    }
    let root = std::fs::canonicalize(base).map_err(|e| Error::io(base, e))?;
    for f in found {
        let real = std::fs::canonicalize(f).map_err(|e| Error::io(f, e))?;
        if !real.starts_with(&root) {
            return Err(Error::mapping(
                Some(what.to_string()),
                format!(
                    "{} leads to {} through a symbolic link: {HOW_TO_ALLOW}",
                    f.display(),
                    real.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The absolute form of a path with `.` and `..` resolved, its existing
/// part's symbolic links followed.
fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    // Follow links on the longest existing ancestor.
    let mut tail = vec![];
    let mut head = out.clone();
    loop {
        if let Ok(real) = std::fs::canonicalize(&head) {
            let mut r = real;
            for t in tail.iter().rev() {
                r.push(t);
            }
            return r;
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                head = parent.to_path_buf();
            }
            _ => return out,
        }
    }
}

/// Refuse an output path that is one of `inputs` (files or directories of
/// the dataset: its tables' files, its store, its folder) or lies inside one
/// of them: a result must not replace or join its own data.
pub fn check_output(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let o = resolved(out);
    for i in inputs {
        if is_url(&i.to_string_lossy()) {
            continue;
        }
        let r = resolved(i);
        if o == r || (r.is_dir() && o.starts_with(&r)) {
            return Err(Error::option(
                "out",
                format!(
                    "{} would be written {} the input {}; write results elsewhere",
                    out.display(),
                    if o == r { "over" } else { "into" },
                    i.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_stay_under_their_file() {
        let base = Path::new("/jobs/team");
        assert!(check_location(base, "data/incidents.csv", "x").is_ok());
        assert!(check_location(base, "data/*.csv", "x").is_ok());
        // A local job may name an object-store prefix.
        assert!(check_location(base, "s3://lake/safety", "x").is_ok());
        for bad in [
            "/etc/passwd",
            "../secret.csv",
            "data/../../x.csv",
            "s3://lake/a/../b",
        ] {
            let e = check_location(base, bad, "[tables.incidents] path").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
            assert!(e.to_string().contains("--allow-outside"), "{e}");
        }
        let s3 = Path::new("s3://bucket/team");
        assert!(check_location(s3, "s3://bucket/team/x.csv", "x").is_ok());
        assert!(check_location(s3, "x.csv", "x").is_ok());
        assert!(check_location(s3, "s3://bucket/teammate/x.csv", "x").is_err());
        assert!(check_location(s3, "s3://bucket/team/../other/x.csv", "x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_the_directory_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("job");
        std::fs::create_dir(&base).unwrap();
        std::fs::write(d.path().join("outside.csv"), "x").unwrap();
        std::os::unix::fs::symlink(d.path().join("outside.csv"), base.join("in.csv")).unwrap();
        std::fs::write(base.join("real.csv"), "x").unwrap();
        assert!(check_found(&base, &[base.join("real.csv")], "x").is_ok());
        let e = check_found(&base, &[base.join("in.csv")], "x").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn outputs_never_replace_or_join_inputs() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("incidents.csv"), "x").unwrap();
        let inputs = [data.clone(), data.join("incidents.csv")];
        for bad in [
            data.join("incidents.csv"),
            data.join("new.csv"),
            data.join("sub/../incidents.csv"),
            d.path().join("other/../data/incidents.csv"),
        ] {
            let e = check_output(&bad, &inputs).unwrap_err();
            assert_eq!(e.exit_code(), 2);
        }
        assert!(check_output(&d.path().join("risk.csv"), &inputs).is_ok());
        assert!(check_output(&d.path().join("data-out/risk.csv"), &inputs).is_ok());
    }
}
