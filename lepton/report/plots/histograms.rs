//! Weight histograms: one panel per tensor, all values in grey and the non-zero ones in colour,
//! on a log count axis so that the spike of pruned (zero) weights does not flatten the rest.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{tick_label, DrawResult, Plot, TickedAxis, PALETTE};
use crate::error::{LeptonError, Result};
use crate::report::figure::{Figure, FONT};

/// Name of the figure kind in error messages.
const KIND: &str = "weight histograms";
/// Largest accepted number of bins.
const MAX_BINS: usize = 1000;
/// Panels per row.
const COLUMNS: usize = 3;
/// Height of the title and legend strip, and of one panel, in pixels.
const HEADER: u32 = 64;
const PANEL_H: u32 = 270;
/// Smallest panel height before there are too many panels for one figure.
const MIN_PANEL_H: u32 = 120;
/// Tallest figure (the limit of [`Figure`]).
const MAX_H: u32 = 8_192;
/// Largest number of clusters a panel may colour.
const MAX_CLUSTERS: usize = 256;
/// Colour of the bars of all values.
const ALL: RGBColor = RGBColor(200, 200, 200);
/// Colour of the bars of the non-zero values.
const NON_ZERO: RGBColor = PALETTE[0];

/// Histogram panels of weight values, one panel per tensor: all weights in light grey,
/// non-zero weights overlaid in colour.
///
/// Each panel bins the finite values of its tensor into `bins` equal bins between their
/// smallest and largest value; counts are on a log axis. The caption of a panel gives its
/// name, number of values and share of zeros.
///
/// ```no_run
/// # use lepton::report::WeightHistograms;
/// # let (fc1, fc2): (Vec<f32>, Vec<f32>) = (vec![], vec![]);
/// let fig = WeightHistograms::new("LeNet-300-100 after pruning", 80)
///     .panel("fc1.weight", fc1)
///     .panel("fc2.weight", fc2)
///     .plot()?;
/// # Ok::<(), lepton::LeptonError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WeightHistograms {
    /// Title above the panels (none if empty).
    pub title: String,
    /// (name, values) of each panel, in order (up to three per row).
    pub panels: Vec<(String, Vec<f32>)>,
    /// Bins per panel, 1..=1000.
    pub bins: usize,
    /// Per panel (same order; missing entries count as `None`), the cluster index of each
    /// value: such a panel stacks one colour per cluster instead of all / non-zero.
    pub clusters: Vec<Option<Vec<usize>>>,
}

impl WeightHistograms {
    /// No panels yet, `bins` bins per panel.
    pub fn new(title: impl Into<String>, bins: usize) -> Self {
        WeightHistograms {
            title: title.into(),
            panels: Vec::new(),
            bins,
            clusters: Vec::new(),
        }
    }

    /// Adds a panel of `values` (non-finite values are skipped).
    pub fn panel(mut self, name: impl Into<String>, values: Vec<f32>) -> Self {
        self.clusters.resize(self.panels.len(), None);
        self.panels.push((name.into(), values));
        self.clusters.push(None);
        self
    }

    /// Adds a panel of `values` coloured by cluster: `clusters[i]` is the cluster of
    /// `values[i]` (as long as `values`, at most 256 clusters), each bin stacking one colour
    /// per cluster (the cluster's share of the bin, on the log count axis).
    pub fn clustered_panel(mut self, name: impl Into<String>, values: Vec<f32>, clusters: Vec<usize>) -> Self {
        self.clusters.resize(self.panels.len(), None);
        self.panels.push((name.into(), values));
        self.clusters.push(Some(clusters));
        self
    }

    /// Cluster indices of each value of the shared-weight tensor `shared` (k-means weights:
    /// each distinct value is one centroid), numbered by increasing centroid: the clusters of
    /// the float weights the shared tensor was made from, index for index.
    pub fn clusters_of_shared(shared: &[f32]) -> Vec<usize> {
        let mut centroids: Vec<u32> = shared.iter().map(|v| v.to_bits()).collect();
        let key = |b: u32| f32::from_bits(b);
        centroids.sort_by(|a, b| key(*a).total_cmp(&key(*b)));
        centroids.dedup();
        shared.iter().map(|v| centroids.partition_point(|&c| key(c).total_cmp(v).is_lt())).collect()
    }

    /// The cluster indices of panel `i`, if it has them.
    fn clusters_of(&self, i: usize) -> Option<&[usize]> {
        self.clusters.get(i).and_then(|c| c.as_deref())
    }

    /// The panels in a grid, up to three per row (each about 380 x 270 pixels).
    ///
    /// Errors ([`LeptonError::Plot`]) if there are no panels, `bins` is 0 or above 1000, a
    /// panel has no finite value, or there are too many panels for one figure (over 200).
    pub fn plot(&self) -> Result<Figure> {
        if self.panels.is_empty() {
            return Err(LeptonError::plot(KIND, "no panels"));
        }
        if !(1..=MAX_BINS).contains(&self.bins) {
            return Err(LeptonError::plot(
                KIND,
                format!("{} bins: must be in 1..={MAX_BINS}", self.bins),
            ));
        }
        if let Some((name, _)) = self
            .panels
            .iter()
            .find(|(_, v)| !v.iter().any(|x| x.is_finite()))
        {
            return Err(LeptonError::plot(
                KIND,
                format!("panel {name:?} has no finite values"),
            ));
        }
        for (i, (name, values)) in self.panels.iter().enumerate() {
            if let Some(c) = self.clusters_of(i) {
                if c.len() != values.len() {
                    return Err(LeptonError::plot(KIND, format!("panel {name:?}: {} cluster indices for {} values", c.len(), values.len())));
                }
                if c.iter().any(|&k| k >= MAX_CLUSTERS) {
                    return Err(LeptonError::plot(KIND, format!("panel {name:?}: a cluster index is {MAX_CLUSTERS} or more")));
                }
            }
        }
        let (rows, cols) = grid(self.panels.len());
        let panel_h = PANEL_H.min((MAX_H - HEADER) / rows as u32);
        if panel_h < MIN_PANEL_H {
            return Err(LeptonError::plot(
                KIND,
                format!(
                    "{} panels do not fit in one figure (at most {})",
                    self.panels.len(),
                    COLUMNS as u32 * ((MAX_H - HEADER) / MIN_PANEL_H)
                ),
            ));
        }
        let width = match cols {
            1 => 600,
            2 => 2 * 420,
            _ => cols as u32 * 380,
        };
        let height = HEADER + rows as u32 * panel_h;
        Figure::render(Plot::Histograms(self.clone()), width, height)
    }
}

/// (rows, columns) of the grid of `n` panels.
fn grid(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, COLUMNS);
    (n.div_ceil(cols), cols)
}

/// The binned values of one panel.
struct Binned {
    /// Left edge of the first bin and width of a bin.
    lo: f64,
    width: f64,
    /// Counts of all finite values and of the non-zero ones, per bin.
    all: Vec<u64>,
    non_zero: Vec<u64>,
    /// Number of finite values and of zeros among them.
    finite: usize,
    zeros: usize,
    /// Counts per cluster and bin (`[cluster][bin]`), empty without clusters.
    by_cluster: Vec<Vec<u64>>,
}

impl Binned {
    /// Bins the finite `values` into `bins` (>= 1) bins from the smallest to the largest, or
    /// around the value if they are all equal. `None` if no value is finite.
    fn new(values: &[f32], bins: usize, clusters: Option<&[usize]>) -> Option<Binned> {
        let finite = || values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v));
        let (min, max) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if min > max {
            return None;
        }
        let (lo, hi) = if max > min {
            (min, max)
        } else {
            let half = (0.05 * min.abs()).max(1e-3);
            (min - half, min + half)
        };
        let bins = bins.max(1);
        let width = (hi - lo) / bins as f64;
        let mut b = Binned {
            lo,
            width,
            all: vec![0; bins],
            non_zero: vec![0; bins],
            finite: 0,
            zeros: 0,
            by_cluster: Vec::new(),
        };
        if let Some(c) = clusters {
            let k = c.iter().copied().max().map_or(0, |m| m + 1);
            b.by_cluster = vec![vec![0; bins]; k];
            for (&v, &ci) in values.iter().zip(c) {
                if v.is_finite() {
                    let i = (((f64::from(v) - lo) / width) as usize).min(bins - 1);
                    b.by_cluster[ci][i] += 1;
                }
            }
        }
        for v in finite() {
            let i = (((v - lo) / width) as usize).min(bins - 1);
            b.all[i] += 1;
            b.finite += 1;
            if v == 0.0 {
                b.zeros += 1;
            } else {
                b.non_zero[i] += 1;
            }
        }
        Some(b)
    }

    fn hi(&self) -> f64 {
        self.lo + self.width * self.all.len() as f64
    }
}

/// A count as a short tick label: 1, 20, 500, 1k, 20k, 1M.
fn count_label(v: f64) -> String {
    let v = v.round();
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

pub(super) fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &WeightHistograms,
) -> DrawResult<DB> {
    let (header, body) = root.split_vertically(HEADER);
    let legend_top = if h.title.is_empty() {
        0
    } else {
        header.titled(&h.title, (FONT, 20))?;
        30
    };
    draw_legend(&header, legend_top + 6, h.clusters.iter().any(Option::is_some))?;
    let (rows, cols) = grid(h.panels.len());
    let areas = body.split_evenly((rows, cols));
    for (i, ((name, values), area)) in h.panels.iter().zip(&areas).enumerate() {
        if let Some(binned) = Binned::new(values, h.bins, h.clusters_of(i)) {
            draw_panel(area, name, &binned)?;
        }
    }
    Ok(())
}

/// "all" and "non-zero" swatches, centred at `y`.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, top: i32, clustered: bool) -> DrawResult<DB> {
    let (w, _) = area.dim_in_pixel();
    let style = (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut entries = vec![("all values", ALL), ("non-zero values", NON_ZERO)];
    if clustered {
        entries.push(("clustered panels: one colour per cluster", PALETTE[1]));
    }
    let mut widths = Vec::new();
    for (label, _) in &entries {
        widths.push(area.estimate_text_size(label, &style)?.0 as i32);
    }
    let gap = 28;
    let total: i32 = widths.iter().map(|t| 20 + t).sum::<i32>() + gap;
    let mut x = (w as i32 - total) / 2;
    let y = top + 8;
    for ((label, color), text_w) in entries.iter().zip(widths) {
        area.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()))?;
        area.draw(&Text::new(*label, (x + 20, y), style.clone()))?;
        x += 20 + text_w + gap;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    name: &str,
    b: &Binned,
) -> DrawResult<DB> {
    let (lo, hi) = (b.lo, b.hi());
    let top = b.all.iter().copied().max().unwrap_or(1).max(1) as f64;
    let floor = 0.7;
    let y = TickedAxis::log_sparse(floor..top * 2.0, 6);
    let zero_share = if b.finite > 0 {
        100.0 * b.zeros as f64 / b.finite as f64
    } else {
        0.0
    };
    let caption = if b.by_cluster.is_empty() {
        format!("{name} ({} values, {zero_share:.1} % zero)", b.finite)
    } else {
        format!("{name} ({} values, {} clusters)", b.finite, b.by_cluster.iter().filter(|c| c.iter().any(|&n| n > 0)).count())
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 13))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(30)
        .y_label_area_size(46)
        .build_cartesian_2d(lo..hi, y)?;
    let span = hi - lo;
    chart
        .configure_mesh()
        .y_desc("count")
        .x_labels(5)
        .label_style((FONT, 11))
        .axis_desc_style((FONT, 12))
        .x_label_formatter(&|v| tick_label(*v, span))
        .y_label_formatter(&|v| count_label(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    if !b.by_cluster.is_empty() {
        // cumulative counts drawn from the last cluster down: each cluster's segment stays
        // visible above the ones before it
        let mut cum = vec![0u64; b.all.len()];
        let mut layers = Vec::with_capacity(b.by_cluster.len());
        for counts in &b.by_cluster {
            cum.iter_mut().zip(counts).for_each(|(t, &c)| *t += c);
            layers.push(cum.clone());
        }
        for (k, tops) in layers.iter().enumerate().rev() {
            let color = PALETTE[k % PALETTE.len()];
            let bars = tops.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| {
                let x0 = lo + b.width * i as f64;
                Rectangle::new([(x0, floor), (x0 + b.width, c as f64)], color.filled())
            });
            chart.draw_series(bars)?;
        }
        return Ok(());
    }
    for (counts, color) in [(&b.all, ALL), (&b.non_zero, NON_ZERO)] {
        let bars = counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, &c)| {
            let x0 = lo + b.width * i as f64;
            Rectangle::new([(x0, floor), (x0 + b.width, c as f64)], color.filled())
        });
        chart.draw_series(bars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binning_counts_all_and_non_zero() {
        let b = Binned::new(&[0.0, 0.0, -1.0, 1.0, 0.5, f32::NAN], 4, None).unwrap();
        assert_eq!((b.lo, b.hi()), (-1.0, 1.0));
        assert_eq!(b.all, vec![1, 0, 2, 2]);
        assert_eq!(b.non_zero, vec![1, 0, 0, 2]);
        assert_eq!((b.finite, b.zeros), (5, 2));
        let z = Binned::new(&[0.0; 3], 3, None).unwrap();
        assert_eq!((z.all.clone(), z.zeros), (vec![0, 3, 0], 3));
        assert!(Binned::new(&[f32::NAN, f32::INFINITY], 3, None).is_none());
        // per cluster: the NaN's cluster index is skipped with it
        let c = Binned::new(&[0.0, 0.0, -1.0, 1.0, 0.5, f32::NAN], 4, Some(&[1, 1, 0, 2, 2, 0])).unwrap();
        assert_eq!(c.by_cluster, vec![vec![1, 0, 0, 0], vec![0, 0, 2, 0], vec![0, 0, 0, 2]]);
        assert_eq!(WeightHistograms::clusters_of_shared(&[0.5, -0.25, 0.5, 0.0, -0.25]), vec![2, 0, 2, 1, 0]);
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(4), (2, 3));
        assert_eq!(count_label(20000.0), "20k");
    }
}
