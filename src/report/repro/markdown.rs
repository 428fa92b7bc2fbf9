//! The report's own tables as compact Markdown: cells unpadded and left-aligned, since many hold
//! sentences (the `compare` tables keep their aligned form).

/// A Markdown table; `|` in a cell is escaped.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let esc = |c: &str| c.replace('|', "\\|");
    let mut out = line(header.iter().map(|h| esc(h)).collect());
    out.push_str(&line(header.iter().map(|_| "---".to_string()).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|c| esc(c)).collect()));
    }
    out
}
