//! Aligned tables for the terminal and padded Markdown tables, as `compare` prints them: the
//! first column left-aligned, the others right-aligned.

fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Pads `s` to `w` characters: left-aligned in the first column, right-aligned elsewhere.
fn pad(s: &str, w: usize, col: usize) -> String {
    let fill = " ".repeat(w.saturating_sub(s.chars().count()));
    if col == 0 {
        format!("{s}{fill}")
    } else {
        format!("{fill}{s}")
    }
}

pub(crate) fn text_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| pad(c, w[i], i))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub(crate) fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let w = widths(header, rows);
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| pad(&c.replace('|', "\\|"), w[i], i))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.to_vec());
    let rule: Vec<String> = w
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let dashes = "-".repeat(n.max(3) - 1);
            if i == 0 {
                format!(":{dashes}")
            } else {
                format!("{dashes}:")
            }
        })
        .collect();
    out.push_str(&format!("| {} |\n", rule.join(" | ")));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
