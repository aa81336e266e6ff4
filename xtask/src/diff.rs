//! A small line diff in unified format, so that a stale generated file can be
//! shown as what changed rather than just "differs".
//!
//! The common prefix and suffix are skipped first; the middle is diffed by a
//! longest-common-subsequence table. A middle too large for the table (both
//! sides over a few thousand lines of change) is shown as one hunk that
//! replaces all of it, which is still correct, only less precise.

use std::fmt::Write as _;

/// Lines of unchanged context around each change.
const CONTEXT: usize = 3;

/// Largest LCS table (cells) worth building.
const MAX_TABLE: usize = 4_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Line `a` of the old text equals line `b` of the new one.
    Same(usize, usize),
    /// Line `a` of the old text is gone.
    Del(usize),
    /// Line `b` of the new text is new.
    Ins(usize),
}

/// The unified diff from `old` to `new`, at most `max_lines` lines long
/// (the rest is summarised), or `None` when the texts are equal.
pub fn unified(
    old: &str,
    new: &str,
    old_name: &str,
    new_name: &str,
    max_lines: usize,
) -> Option<String> {
    if old == new {
        return None;
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = edit_script(&a, &b);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut lines = 0usize;
    let mut omitted = 0usize;
    for hunk in hunks(&ops) {
        let body = render_hunk(&ops[hunk.0..hunk.1], &a, &b);
        for line in body.lines() {
            if lines < max_lines {
                out.push_str(line);
                out.push('\n');
                lines += 1;
            } else {
                omitted += 1;
            }
        }
    }
    if ops.iter().all(|op| matches!(op, Op::Same(..))) {
        // Same lines, different bytes: line endings or a final newline.
        out.push_str("(the texts differ only in line endings or the final newline)\n");
    }
    if omitted > 0 {
        let _ = writeln!(out, "... {omitted} more diff lines not shown");
    }
    Some(out)
}

/// The edit script turning `a` into `b`, in order.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);

    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Same(i, i)).collect();
    if (am.len() + 1).saturating_mul(bm.len() + 1) <= MAX_TABLE {
        ops.extend(lcs_script(am, bm).into_iter().map(|op| match op {
            Op::Same(i, j) => Op::Same(i + prefix, j + prefix),
            Op::Del(i) => Op::Del(i + prefix),
            Op::Ins(j) => Op::Ins(j + prefix),
        }));
    } else {
        ops.extend((0..am.len()).map(|i| Op::Del(i + prefix)));
        ops.extend((0..bm.len()).map(|j| Op::Ins(j + prefix)));
    }
    let (a0, b0) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| Op::Same(a0 + k, b0 + k)));
    ops
}

/// Edit script by a longest-common-subsequence table.
fn lcs_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let w = b.len() + 1;
    // table[i * w + j] = LCS length of a[i..] and b[j..].
    let mut table = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i * w + j] = if a[i] == b[j] {
                table[(i + 1) * w + j + 1] + 1
            } else {
                table[(i + 1) * w + j].max(table[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            ops.push(Op::Same(i, j));
            i += 1;
            j += 1;
        } else if table[(i + 1) * w + j] >= table[i * w + j + 1] {
            ops.push(Op::Del(i));
            i += 1;
        } else {
            ops.push(Op::Ins(j));
            j += 1;
        }
    }
    ops.extend((i..a.len()).map(Op::Del));
    ops.extend((j..b.len()).map(Op::Ins));
    ops
}

/// Ranges of `ops` forming hunks: each change with up to [`CONTEXT`]
/// unchanged lines around it, overlapping hunks merged.
fn hunks(ops: &[Op]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (k, op) in ops.iter().enumerate() {
        if matches!(op, Op::Same(..)) {
            continue;
        }
        let start = k.saturating_sub(CONTEXT);
        let end = (k + 1 + CONTEXT).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn render_hunk(ops: &[Op], a: &[&str], b: &[&str]) -> String {
    // Line numbers where the hunk starts on each side (1-based) and the
    // number of lines it covers there.
    let mut a_start = None;
    let mut b_start = None;
    let (mut a_len, mut b_len) = (0usize, 0usize);
    let mut body = String::new();
    for op in ops {
        match *op {
            Op::Same(i, j) => {
                a_start.get_or_insert(i);
                b_start.get_or_insert(j);
                a_len += 1;
                b_len += 1;
                let _ = writeln!(body, " {}", a[i]);
            }
            Op::Del(i) => {
                a_start.get_or_insert(i);
                a_len += 1;
                let _ = writeln!(body, "-{}", a[i]);
            }
            Op::Ins(j) => {
                b_start.get_or_insert(j);
                b_len += 1;
                let _ = writeln!(body, "+{}", b[j]);
            }
        }
    }
    format!(
        "@@ -{},{a_len} +{},{b_len} @@\n{body}",
        a_start.map_or(0, |i| i + 1),
        b_start.map_or(0, |j| j + 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y", 100), None);
    }

    #[test]
    fn a_changed_line_shows_as_minus_and_plus_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nFIVE\n6\n7\n8\n9\n";
        let d = unified(old, new, "old", "new", 100).unwrap();
        assert_eq!(
            d,
            "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn insertions_and_deletions_are_located() {
        let d = unified("a\nb\nc\n", "a\nc\nd\n", "o", "n", 100).unwrap();
        assert!(d.contains("-b\n"), "{d}");
        assert!(d.contains("+d\n"), "{d}");
        assert!(!d.contains("-a\n") && !d.contains("-c\n"), "{d}");
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: String = (0..40).map(|i| format!("{i}\n")).collect();
        let new = old
            .replace("\n5\n", "\nfive\n")
            .replace("\n30\n", "\nthirty\n");
        let d = unified(&old, &new, "o", "n", 100).unwrap();
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
    }

    #[test]
    fn a_missing_final_newline_is_reported() {
        let d = unified("a\nb\n", "a\nb", "o", "n", 100).unwrap();
        assert!(d.contains("line endings or the final newline"), "{d}");
    }

    #[test]
    fn long_diffs_are_cut() {
        let old: String = (0..100).map(|i| format!("{i}\n")).collect();
        let new: String = (0..100).map(|i| format!("x{i}\n")).collect();
        let d = unified(&old, &new, "o", "n", 10).unwrap();
        assert!(d.contains("more diff lines not shown"), "{d}");
        assert!(d.lines().count() <= 13, "{d}");
    }
}
