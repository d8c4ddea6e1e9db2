//! dstorage: apply `dstorage-no-float.patch` to the pristine amalgamation at build time, so
//! the repository keeps SQLite's source untouched and the patch is the whole difference.
//!
//! The patch file is a comment, then blocks of `@@ FIND <title>`, the exact text to find,
//! `@@ REPLACE`, its replacement, `@@ END`. Every FIND text must occur exactly once in
//! sqlite3.c, so a changed amalgamation fails the build instead of being patched wrongly.

use std::path::{Path, PathBuf};

/// The patch, relative to the crate root.
pub const PATCH: &str = "dstorage-no-float.patch";

/// Write the patched copy of `source` (the crate's sqlite3/sqlite3.c) into `out_dir` and
/// return its path.
pub fn patched_source(source: &Path, out_dir: &str) -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let patch_path = Path::new(&manifest).join(PATCH);
    let source_path = Path::new(&manifest).join(source);
    println!("cargo:rerun-if-changed={}", patch_path.display());
    let patch = std::fs::read_to_string(&patch_path).expect("read dstorage-no-float.patch");
    let mut text = std::fs::read_to_string(&source_path).expect("read sqlite3.c");
    let blocks = parse(&patch);
    assert!(!blocks.is_empty(), "{PATCH} holds no blocks");
    for (title, find, replace) in &blocks {
        let count = text.matches(find.as_str()).count();
        assert!(
            count == 1,
            "{PATCH}: the text of block `{title}` occurs {count} times in sqlite3.c, not once"
        );
        text = text.replacen(find.as_str(), replace, 1);
    }
    let out = Path::new(out_dir).join("sqlite3.c");
    std::fs::write(&out, text).expect("write the patched sqlite3.c");
    out
}

/// The (title, find, replace) blocks of the patch.
fn parse(patch: &str) -> Vec<(String, String, String)> {
    enum At {
        Comment,
        Find,
        Replace,
    }
    let mut blocks = Vec::new();
    let mut at = At::Comment;
    let (mut title, mut find, mut replace) = (String::new(), String::new(), String::new());
    for line in patch.split_inclusive('\n') {
        if let Some(t) = line.strip_prefix("@@ FIND ") {
            assert!(matches!(at, At::Comment), "{PATCH}: FIND inside a block");
            title = t.trim().to_owned();
            find.clear();
            replace.clear();
            at = At::Find;
        } else if line.trim_end() == "@@ REPLACE" {
            assert!(matches!(at, At::Find), "{PATCH}: REPLACE without FIND");
            at = At::Replace;
        } else if line.trim_end() == "@@ END" {
            assert!(matches!(at, At::Replace), "{PATCH}: END without REPLACE");
            blocks.push((title.clone(), find.clone(), replace.clone()));
            at = At::Comment;
        } else {
            match at {
                At::Comment => {}
                At::Find => find.push_str(line),
                At::Replace => replace.push_str(line),
            }
        }
    }
    assert!(matches!(at, At::Comment), "{PATCH}: unterminated block");
    blocks
}
