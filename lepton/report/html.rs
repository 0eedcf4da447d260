//! Inline display in the evcxr Jupyter kernel.
//!
//! evcxr calls `evcxr_display(&self)` on the value of a cell's last expression, if the type
//! has one. It reads stdout: a line `EVCXR_BEGIN_CONTENT <mime type>`, the content, then a line
//! `EVCXR_END_CONTENT`. Each value here sends `text/html` and a `text/plain` alternative (its
//! `Display`), so Jupyter shows the HTML and text front ends the plain form.

use std::io::Write;

use super::experiment::ExperimentTable;
use super::plots::row_share;
use super::text::{kib, Grid};
use super::types::{EvalReport, History, SizeReport};

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by HTML entities.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One evcxr content block; a content line equal to the end marker is indented so it cannot
/// end the block early.
fn block(mime: &str, content: &str) -> String {
    let body: Vec<&str> = content.lines().collect();
    let body: Vec<String> = body
        .iter()
        .map(|l| {
            if *l == "EVCXR_END_CONTENT" {
                format!(" {l}")
            } else {
                (*l).to_owned()
            }
        })
        .collect();
    format!(
        "EVCXR_BEGIN_CONTENT {mime}\n{}\nEVCXR_END_CONTENT\n",
        body.join("\n")
    )
}

/// Prints `html` and its plain-text alternative as one evcxr value, in a single write.
pub(crate) fn emit(html: &str, plain: &str) {
    let out = format!("{}{}", block("text/html", html), block("text/plain", plain));
    let mut stdout = std::io::stdout().lock();
    // Display has nowhere to report a closed stdout; the value is simply not shown.
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
}

const TABLE: &str = "<table style=\"border-collapse:collapse;font-size:0.9em;margin:4px 0\">";
const CELL: &str = "padding:2px 8px;border-bottom:1px solid #ddd";

impl Grid {
    /// The grid as an HTML table; cells are escaped, the total row is bold.
    pub(crate) fn to_html(&self) -> String {
        let align = |num: bool| {
            if num {
                "text-align:right"
            } else {
                "text-align:left"
            }
        };
        let row = |cells: &[String], tag: &str, extra: &str| -> String {
            let tds: String = cells
                .iter()
                .zip(&self.numeric)
                .map(|(c, &num)| {
                    format!(
                        "<{tag} style=\"{CELL};{};{extra}\">{}</{tag}>",
                        align(num),
                        escape_html(c)
                    )
                })
                .collect();
            format!("<tr>{tds}</tr>")
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut html = format!("{TABLE}<thead>{}</thead><tbody>", row(&headers, "th", ""));
        for r in &self.rows {
            html.push_str(&row(r, "td", ""));
        }
        if let Some(total) = &self.total {
            html.push_str(&row(
                total,
                "td",
                "font-weight:bold;border-top:2px solid #888",
            ));
        }
        html.push_str("</tbody></table>");
        html
    }
}

/// A table inside a box that scrolls when it is taller than `max_px`.
fn scroll(inner: &str, max_px: u32) -> String {
    format!(
        "<div style=\"max-height:{max_px}px;overflow-y:auto;display:inline-block\">{inner}</div>"
    )
}

impl History {
    /// HTML: summary line, per-epoch table, and the loss/accuracy figure.
    pub fn to_html(&self) -> String {
        let mut html = format!("<div><b>{}</b>", escape_html(&self.summary()));
        if self.epochs.is_empty() {
            html.push_str("<p>no epochs yet</p></div>");
            return html;
        }
        html.push_str(&scroll(&self.grid().to_html(), 320));
        match self.plot() {
            Ok(fig) => html.push_str(&fig.to_html()),
            Err(e) => html.push_str(&format!(
                "<p>figure not drawn: {}</p>",
                escape_html(&e.to_string())
            )),
        }
        html.push_str("</div>");
        html
    }

    /// Shows the history inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl EvalReport {
    /// HTML: summary line, per-class table, and the confusion matrix with cells shaded by
    /// their share of the true class.
    pub fn to_html(&self) -> String {
        let mut html = format!("<div><b>{}</b><br>", escape_html(&self.summary()));
        html.push_str(&self.class_grid().to_html());
        if self.checked_confusion().is_ok() {
            html.push_str("<p style=\"margin:6px 0 2px\">confusion matrix (rows: true class, columns: predicted)</p>");
            html.push_str(&self.confusion_html());
        }
        html.push_str("</div>");
        html
    }

    fn confusion_html(&self) -> String {
        let n = self.confusion.len();
        let cell = "padding:2px 6px;text-align:right;border:1px solid #eee";
        let mut html = format!("{TABLE}<tr><th style=\"{cell}\">true \\ pred</th>");
        for p in 0..n {
            html.push_str(&format!("<th style=\"{cell}\">{p}</th>"));
        }
        html.push_str("</tr>");
        for (t, row) in self.confusion.iter().enumerate() {
            let name = escape_html(&self.class_name(t));
            html.push_str(&format!("<tr><th style=\"{cell}\">{t} {name}</th>"));
            for (p, count) in row.iter().enumerate() {
                let share = row_share(&self.confusion, t, p);
                let color = if share > 0.5 { "#fff" } else { "#000" };
                html.push_str(&format!(
                    "<td style=\"{cell};background:rgba(8,48,107,{share:.3});color:{color}\" title=\"{:.1} % of true class {t}\">{count}</td>",
                    100.0 * share
                ));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        html
    }

    /// Shows the report inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl SizeReport {
    /// HTML: per-tensor table (params, bytes, KiB) with a bold total row.
    pub fn to_html(&self) -> String {
        format!(
            "<div><b>{}</b>: {} parameters, {} KiB{}</div>",
            escape_html(&self.model),
            self.total_params(),
            kib(self.total_bytes()),
            self.grid().to_html()
        )
    }

    /// Shows the report inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}

impl ExperimentTable {
    /// HTML: one table row per result.
    pub fn to_html(&self) -> String {
        format!(
            "<div><b>experiments</b>: {} rows{}</div>",
            self.rows.len(),
            scroll(&self.grid().to_html(), 480)
        )
    }

    /// Shows the table inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        emit(&self.to_html(), &self.to_string());
    }
}
