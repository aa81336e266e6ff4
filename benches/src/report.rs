//! The summary printed after criterion's output, and the files the docs
//! are made from (CSV and PNG under `target/pciem-bench/`).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::BenchError;

/// Where results go: `$PCIEM_BENCH_OUT` if set (a relative path is taken
/// from the workspace root, since `cargo bench` runs benchmarks in the
/// package's directory), else `target/pciem-bench` of the workspace.
pub fn out_dir() -> Result<PathBuf, BenchError> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = match std::env::var_os("PCIEM_BENCH_OUT") {
        Some(d) => root.join(d),
        None => root.join("target/pciem-bench"),
    };
    std::fs::create_dir_all(&dir).map_err(|e| BenchError::Write {
        path: dir.display().to_string(),
        source: e,
    })?;
    Ok(dir)
}

/// A left-aligned first column and right-aligned others, columns two
/// spaces apart, header first.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        for (i, cell) in r.iter().enumerate().take(cols) {
            let w = widths.get(i).copied().unwrap_or(0);
            if i == 0 {
                let _ = write!(out, "{cell:<w$}");
            } else {
                let _ = write!(out, "  {cell:>w$}");
            }
        }
        out.push('\n');
    }
    out
}

/// Writes rows as CSV (cells contain no commas or quotes here).
pub fn write_csv(name: &str, header: &[&str], rows: &[Vec<String>]) -> Result<PathBuf, BenchError> {
    let path = out_dir()?.join(name);
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| BenchError::Write {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(path)
}

/// The same rows as a Markdown table (what docs/performance.md quotes).
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|", header.join(" | "));
    for _ in header {
        out.push_str(" --- |");
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// Writes `text` to `name` in the results directory.
pub fn write_text(name: &str, text: &str) -> Result<PathBuf, BenchError> {
    let path = out_dir()?.join(name);
    std::fs::write(&path, text).map_err(|e| BenchError::Write {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_a_separator_row() {
        let t = markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }

    #[test]
    fn table_aligns_columns() {
        let t = format_table(
            &["name", "median_ns"],
            &[
                vec!["floor".into(), "52.1".into()],
                vec!["pciem-ring".into(), "1234.5".into()],
            ],
        );
        assert_eq!(
            t,
            "name        median_ns\nfloor            52.1\npciem-ring     1234.5\n"
        );
    }
}
