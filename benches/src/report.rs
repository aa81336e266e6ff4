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

/// One benchmark's finished summary: what `publish` prints and writes.
#[derive(Debug)]
pub struct Summary<'a> {
    /// File stem of the results (`NAME.md`, `NAME.csv`, `NAME.png`).
    pub name: &'a str,
    /// Title of the plot.
    pub title: &'a str,
    /// Column names of the table.
    pub header: &'a [&'a str],
    /// Its rows.
    pub rows: &'a [Vec<String>],
    /// The goal verdict lines, each ending in a newline.
    pub goals: &'a str,
    /// The plot's bars.
    pub bars: &'a [crate::plot::Bar],
}

/// Whether this bench binary runs in criterion's test mode. Criterion's own
/// rule: without `--bench` (that is, under `cargo test --benches`) or with
/// `--test`, every benchmark runs once as a test; the summary pass then
/// takes one short round and [`publish`] writes nothing.
pub fn criterion_test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--test") || !has("--bench")
}

/// Prints the goal verdicts and writes the Markdown table with them, the
/// CSV and the plot into the results directory, reporting each path (or
/// error). In criterion's `--test` mode (one short round, a smoke run) it
/// writes nothing and judges no goal: those figures are not measurements.
pub fn publish(s: &Summary<'_>, test_mode: bool) {
    if test_mode {
        println!("(--test mode: one 1 ms round, the figures above are not measurements)");
        return;
    }
    print!("{}", s.goals);
    let notes = format!("{}\n{}", markdown_table(s.header, s.rows), s.goals);
    let png = |d: PathBuf| {
        let p = d.join(format!("{}.png", s.name));
        crate::plot::bar_chart(&p, s.title, s.bars).map(|()| p)
    };
    for written in [
        write_text(&format!("{}.md", s.name), &notes),
        write_csv(&format!("{}.csv", s.name), s.header, s.rows),
        out_dir().and_then(png),
    ] {
        match written {
            Ok(p) => println!("wrote {}", p.display()),
            Err(e) => eprintln!("{e}"),
        }
    }
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
