//! Line charts: named curves of `(x, y)` points, with an optional log x axis.

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{padded_range, tick_label, DrawResult, Plot, TickedAxis, PALETTE};
use crate::error::{LeptonError, Result};
use crate::report::figure::{Figure, FONT};
use crate::report::text::fmt_sig;

/// Name of the figure kind in error messages.
const KIND: &str = "line chart";

/// One named curve of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Name shown in the legend.
    pub name: String,
    /// `(x, y)` points, drawn in this order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Error bars: `errors[i]` draws `y ± errors[i]` at point `i` (e.g. one standard deviation
    /// over seeds). Empty for none; missing, non-finite or non-positive entries draw no bar.
    pub errors: Vec<f64>,
}

impl Series {
    /// A curve named `name` through `points`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            errors: Vec::new(),
        }
    }

    /// The same curve with error bars `y ± errors[i]`.
    pub fn with_errors(mut self, errors: Vec<f64>) -> Self {
        self.errors = errors;
        self
    }

    /// The `(x, y − e, y + e)` bars of the finite points with a finite `e > 0`.
    fn bars(&self, log_x: bool) -> Vec<(f64, f64, f64)> {
        self.points
            .iter()
            .zip(&self.errors)
            .filter(|((x, y), e)| x.is_finite() && y.is_finite() && e.is_finite() && **e > 0.0 && (!log_x || *x > 0.0))
            .map(|(&(x, y), &e)| (x, y - e, y + e))
            .collect()
    }
}

/// Options of a line chart: curves of `(x, y)` points, one colour per series, with the series
/// names in a legend to the right of the plotting area.
///
/// ```no_run
/// # use lepton::report::{LineChart, Series};
/// let fig = LineChart::new("accuracy after pruning", "sparsity (%)", "test accuracy (%)")
///     .series(Series::new("magnitude", vec![(0.0, 98.1), (50.0, 98.0), (90.0, 97.2)]))
///     .series(Series::new("random", vec![(0.0, 98.1), (50.0, 95.3), (90.0, 61.0)]))
///     .plot()?;
/// fig.save_png("accuracy.png")?;
/// # Ok::<(), lepton::LeptonError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the chart (none if empty).
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// The curves, coloured in order from a 10-colour palette (repeating after ten).
    pub series: Vec<Series>,
    /// Logarithmic x axis; points with `x <= 0` are then skipped.
    pub log_x: bool,
    /// Draw each point as a small circle (a series of a single point always is).
    pub markers: bool,
    /// Fixed y range `(lo, hi)`; curves are clipped to it. `None`: fitted to the data.
    pub y_range: Option<(f64, f64)>,
}

impl LineChart {
    /// An empty chart with markers, a linear x axis and a y range fitted to the data.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            log_x: false,
            markers: true,
            y_range: None,
        }
    }

    /// Adds a curve.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Logarithmic x axis (points with `x <= 0` are skipped).
    pub fn log_x(mut self, yes: bool) -> Self {
        self.log_x = yes;
        self
    }

    /// Draw points as small circles (default) or lines only.
    pub fn markers(mut self, yes: bool) -> Self {
        self.markers = yes;
        self
    }

    /// Fixes the y axis to `lo..hi` (checked by [`LineChart::plot`]: finite, `lo < hi`).
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    /// The chart as an 820 x 520 figure.
    ///
    /// Errors ([`LeptonError::Plot`]) if no series has a finite point (with `x > 0` on a log x
    /// axis) or the y range is not finite with `lo < hi`.
    pub fn plot(&self) -> Result<Figure> {
        if self.series.is_empty() {
            return Err(LeptonError::plot(KIND, "the chart has no series"));
        }
        if let Some((lo, hi)) = self.y_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(LeptonError::plot(
                    KIND,
                    format!("y range {lo}..{hi} must be finite with lo < hi"),
                ));
            }
        }
        if self.curves().is_empty() {
            let finite = self
                .series
                .iter()
                .flat_map(|s| &s.points)
                .any(|(x, y)| x.is_finite() && y.is_finite());
            let reason = if self.log_x && finite {
                "log x axis: no series has a finite point with x > 0"
            } else {
                "no series has a finite point"
            };
            return Err(LeptonError::plot(KIND, reason));
        }
        Figure::render(Plot::Lines(self.clone()), 820, 520)
    }

    /// The drawable series: (index, name, finite points with `x > 0` on a log axis), without
    /// the series that have none.
    fn curves(&self) -> Vec<(usize, &str, Vec<(f64, f64)>)> {
        self.series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let points: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_x || *x > 0.0))
                    .collect();
                (!points.is_empty()).then_some((i, s.name.as_str(), points))
            })
            .collect()
    }
}

/// Legend text size in points.
const LEGEND_FONT: u32 = 13;
/// Height of one legend row in pixels.
const LEGEND_ROW: i32 = 22;

pub(super) fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> DrawResult<DB> {
    let curves = chart.curves();
    if curves.is_empty() {
        return Ok(());
    }
    let body = if chart.title.is_empty() {
        root.clone()
    } else {
        root.titled(&chart.title, (FONT, 20))?
    };
    // The legend is a column right of the plotting area, as wide as the longest name (up to a
    // third of the figure; longer names are shortened).
    let (body_w, _) = body.dim_in_pixel();
    let font: TextStyle = (FONT, LEGEND_FONT).into();
    let mut widest = 0;
    for (_, name, _) in &curves {
        widest = widest.max(body.estimate_text_size(name, &font)?.0);
    }
    let max_w = body_w / 3;
    let legend_w = (widest + 52).clamp(90, max_w.max(90));
    let (plot_area, legend_area) = body.split_horizontally(body_w.saturating_sub(legend_w));
    let xs = curves.iter().flat_map(|c| c.2.iter().map(|p| p.0));
    let bars: Vec<(f64, f64, f64)> = chart.series.iter().flat_map(|s| s.bars(chart.log_x)).collect();
    let ys = curves.iter().flat_map(|c| c.2.iter().map(|p| p.1)).chain(bars.iter().flat_map(|b| [b.1, b.2]));
    let y = chart.y_range.unwrap_or_else(|| padded_range(ys, (None, None)));
    if chart.log_x {
        let (lo, hi) = xs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
        // 5 % of the span in decades on each side, at least a factor 1.1.
        let pad = ((hi / lo).powf(0.05)).max(1.1);
        let x = TickedAxis::log_sparse((lo / pad)..(hi * pad), 9);
        let fmt = |v: &f64| log_label(*v);
        let log: XTransform = (f64::ln, f64::exp);
        lines_chart(&plot_area, chart, x, y, &fmt, log, &curves)?;
    } else {
        let (lo, hi) = padded_range(xs, (None, None));
        let span = hi - lo;
        let fmt = |v: &f64| tick_label(*v, span);
        let linear: XTransform = (|v| v, |v| v);
        lines_chart(&plot_area, chart, lo..hi, y, &fmt, linear, &curves)?;
    }
    draw_legend(&legend_area, chart.markers, &curves)
}

/// The transform of the x axis and its inverse (identity, or ln and exp).
type XTransform = (fn(f64) -> f64, fn(f64) -> f64);

fn lines_chart<DB, XS>(
    area: &DrawingArea<DB, Shift>,
    opts: &LineChart,
    x: XS,
    (y0, y1): (f64, f64),
    x_fmt: &dyn Fn(&f64) -> String,
    tx: XTransform,
    curves: &[(usize, &str, Vec<(f64, f64)>)],
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    XS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .margin_right(6)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y0..y1)?;
    let span = y1 - y0;
    chart
        .configure_mesh()
        .x_desc(opts.x_label.as_str())
        .y_desc(opts.y_label.as_str())
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(x_fmt)
        .y_label_formatter(&|v| tick_label(*v, span))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for (i, _, points) in curves {
        let color = PALETTE[i % PALETTE.len()];
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        for run in clip_to_y(points, (y0, y1), tx) {
            chart.draw_series(LineSeries::new(run, style))?;
        }
        if opts.markers || points.len() == 1 {
            let inside = points.iter().filter(|p| (y0..=y1).contains(&p.1));
            chart.draw_series(inside.map(|&p| Circle::new(p, 3, style.filled())))?;
        }
        if let Some(s) = opts.series.get(*i) {
            let bars = s.bars(opts.log_x);
            let thin = ShapeStyle { stroke_width: 1, ..style };
            chart.draw_series(bars.into_iter().filter(|b| b.2 >= y0 && b.1 <= y1).map(|(x, lo, hi)| {
                PathElement::new(vec![(x, lo.max(y0)), (x, hi.min(y1))], thin)
            }))?;
        }
    }
    Ok(())
}

/// A log-axis tick: 3 significant digits, `2e-5` style beyond 0.001..1e6.
fn log_label(v: f64) -> String {
    if v > 0.0 && v.is_finite() && !(1e-3..1e6).contains(&v) {
        let k = v.log10().floor();
        let m = v / 10f64.powf(k);
        // Rounding the mantissa may carry it to 10.
        let (m, k) = if fmt_sig(m, 3) == "10" { (1.0, k + 1.0) } else { (m, k) };
        format!("{}e{}", fmt_sig(m, 3), k as i32)
    } else {
        fmt_sig(v, 3)
    }
}

/// The legend column: a line (and marker) in the series colour, then its name.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    markers: bool,
    curves: &[(usize, &str, Vec<(f64, f64)>)],
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let top = 14;
    let rows = (curves.len() as i32).min(((h - top - 8) / LEGEND_ROW).max(1));
    let style = (FONT, LEGEND_FONT)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Rectangle::new(
        [(0, top), (w - 8, top + rows * LEGEND_ROW + 8)],
        BLACK.mix(0.3),
    ))?;
    let text_w = (w - 50).max(10) as u32;
    for (row, (i, name, points)) in curves.iter().take(rows as usize).enumerate() {
        let y = top + 4 + LEGEND_ROW / 2 + row as i32 * LEGEND_ROW;
        let color = PALETTE[i % PALETTE.len()];
        let line = ShapeStyle {
            color: color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        area.draw(&PathElement::new(vec![(8, y), (32, y)], line))?;
        if markers || points.len() == 1 {
            area.draw(&Circle::new((20, y), 3, line.filled()))?;
        }
        let label = fit_text(area, name, &style, text_w)?;
        area.draw(&Text::new(label, (40, y), style.clone()))?;
    }
    Ok(())
}

/// `text`, shortened with an ellipsis to at most `width` pixels.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> std::result::Result<String, DrawingAreaErrorKind<DB::ErrorType>> {
    if area.estimate_text_size(text, style)?.0 <= width {
        return Ok(text.to_owned());
    }
    let mut chars: Vec<char> = text.chars().collect();
    while chars.len() > 1 {
        chars.pop();
        let short: String = chars.iter().chain(['…'].iter()).collect();
        if area.estimate_text_size(&short, style)?.0 <= width {
            return Ok(short);
        }
    }
    Ok("…".to_owned())
}

/// The parts of the polyline through `points` with `y` in `lo..=hi`, each drawn as one line.
/// Crossings are interpolated along the x axis transformed by `to` (so segments stay straight
/// on a log axis) and mapped back by `from`.
fn clip_to_y(
    points: &[(f64, f64)],
    (lo, hi): (f64, f64),
    (to, from): XTransform,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for seg in points.windows(2) {
        let (a, b) = (seg[0], seg[1]);
        let dy = b.1 - a.1;
        let (t0, t1) = if dy == 0.0 {
            if (lo..=hi).contains(&a.1) {
                (0.0, 1.0)
            } else {
                (1.0, 0.0)
            }
        } else {
            let (ta, tb) = ((lo - a.1) / dy, (hi - a.1) / dy);
            (ta.min(tb).max(0.0), ta.max(tb).min(1.0))
        };
        if t0 > t1 {
            if run.len() > 1 {
                runs.push(std::mem::take(&mut run));
            }
            run.clear();
            continue;
        }
        let at = |t: f64| {
            if t <= 0.0 {
                a
            } else if t >= 1.0 {
                b
            } else {
                let (xa, xb) = (to(a.0), to(b.0));
                (from(xa + t * (xb - xa)), a.1 + t * dy)
            }
        };
        if t0 > 0.0 || run.is_empty() {
            if run.len() > 1 {
                runs.push(std::mem::take(&mut run));
            }
            run.clear();
            run.push(at(t0));
        }
        run.push(at(t1));
        if t1 < 1.0 {
            runs.push(std::mem::take(&mut run));
        }
    }
    if run.len() > 1 {
        runs.push(run);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINEAR: XTransform = (|v| v, |v| v);

    #[test]
    fn log_labels() {
        assert_eq!(log_label(1e-5), "1e-5");
        assert_eq!(log_label(2e-5), "2e-5");
        assert_eq!(log_label(0.005), "0.005");
        assert_eq!(log_label(2e7), "2e7");
        assert_eq!(log_label(999.9), "1000");
    }

    #[test]
    fn clip_keeps_inside_and_cuts_at_the_bounds() {
        let pts = [(0.0, 0.0), (1.0, 2.0), (2.0, 0.0), (3.0, 0.5)];
        let runs = clip_to_y(&pts, (-1.0, 1.0), LINEAR);
        assert_eq!(
            runs,
            vec![vec![(0.0, 0.0), (0.5, 1.0)], vec![(1.5, 1.0), (2.0, 0.0), (3.0, 0.5)]]
        );
        assert_eq!(clip_to_y(&pts, (-1.0, 3.0), LINEAR), vec![pts.to_vec()]);
        assert!(clip_to_y(&pts, (5.0, 6.0), LINEAR).is_empty());
        // A segment crossing the whole window is cut at both ends.
        let runs = clip_to_y(&[(0.0, -2.0), (4.0, 2.0)], (-1.0, 1.0), LINEAR);
        assert_eq!(runs, vec![vec![(1.0, -1.0), (3.0, 1.0)]]);
    }
}
