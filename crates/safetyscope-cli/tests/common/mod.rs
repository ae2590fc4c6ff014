//! Helpers shared by the command-line tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safetyscope"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn sample(dir: &Path) -> String {
    let out = dir.join("sample");
    let o = run(&[
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--scale",
        "0.05",
        "--sites",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out.to_string_lossy().to_string()
}
