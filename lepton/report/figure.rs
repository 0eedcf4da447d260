//! [`Figure`]: a plot rendered as SVG, re-drawable as PNG by the same drawing code.
//!
//! A figure keeps the data it was drawn from. [`Figure::svg`] is rendered once when the figure
//! is built; [`Figure::save_png`] draws the same plot again on a bitmap. Text is laid out with
//! the DejaVu Sans font embedded in the library, so PNGs have labels on machines without
//! system fonts (SVGs name the generic `sans-serif` family and the viewer picks the face).

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{register_font, FontStyle};

use super::html;
use super::plots::Plot;
use super::table::{commit_temp, create_parent, temp_path_for};
use crate::error::{LeptonError, Result};

/// DejaVu Sans (Bitstream Vera licence, see `report/fonts/LICENSE`).
static DEJAVU_SANS: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// The font family every figure uses; registered to [`DEJAVU_SANS`].
pub(crate) const FONT: &str = "sans-serif";

/// Largest accepted width or height in pixels.
const MAX_SIDE: u32 = 8_192;

/// Registers the embedded font with plotters (once per process).
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(LeptonError::plot(
            "font",
            "embedded DejaVu Sans could not be parsed",
        ))
    }
}

/// A plot, rendered as SVG and re-drawable as PNG.
///
/// Built by [`History::plot`](super::History::plot), [`plot_histories`](super::plot_histories),
/// [`EvalReport::plot_confusion`](super::EvalReport::plot_confusion),
/// [`ExperimentTable::plot_accuracy_vs_size`](super::ExperimentTable::plot_accuracy_vs_size),
/// [`LineChart::plot`](super::LineChart::plot) and
/// [`WeightHistograms::plot`](super::WeightHistograms::plot).
/// In evcxr, a figure as the last expression of a cell shows inline.
#[derive(Clone)]
pub struct Figure {
    plot: Arc<Plot>,
    width: u32,
    height: u32,
    svg: String,
}

impl Figure {
    /// Renders `plot` as SVG at `width` x `height` pixels.
    pub(crate) fn render(plot: Plot, width: u32, height: u32) -> Result<Figure> {
        Self::render_shared(Arc::new(plot), width, height)
    }

    fn render_shared(plot: Arc<Plot>, width: u32, height: u32) -> Result<Figure> {
        check_size(width, height)?;
        ensure_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            draw_and_present(&plot, &root)?;
        }
        Ok(Figure {
            plot,
            width,
            height,
            svg,
        })
    }

    /// The SVG document.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// Width in pixels (SVG user units, and PNG pixels).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The same plot drawn at another size (each side 16..=8192 pixels).
    pub fn with_size(&self, width: u32, height: u32) -> Result<Figure> {
        Self::render_shared(Arc::clone(&self.plot), width, height)
    }

    /// Writes the SVG to `path` (atomically; parent directories are created).
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), self.svg.as_bytes())
    }

    /// Draws the plot as a `width` x `height` PNG at `path` (atomically; parent directories
    /// are created). The file is PNG whatever the extension of `path`.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        ensure_font()?;
        // Draw into an RGB buffer first, so a drawing error leaves no file behind.
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rgb = vec![0u8; w * h * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (self.width, self.height))
                .into_drawing_area();
            draw_and_present(&self.plot, &root)?;
        }
        let mut bytes = Vec::new();
        encode_png(&mut bytes, self.width, self.height, &rgb)
            .map_err(|e| LeptonError::plot("PNG encoding", e))?;
        write_atomically(path, &bytes)
    }

    /// The figure as an HTML fragment (inline SVG).
    pub fn to_html(&self) -> String {
        format!(
            "<div style=\"max-width:100%;overflow-x:auto\">{}</div>",
            self.svg
        )
    }

    /// Shows the figure inline in the evcxr Jupyter kernel.
    pub fn evcxr_display(&self) {
        html::emit(&self.to_html(), &self.to_string());
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Figure {}x{} ({}): save with save_svg / save_png",
            self.width,
            self.height,
            self.plot.kind()
        )
    }
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Figure")
            .field("plot", &self.plot.kind())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("svg_bytes", &self.svg.len())
            .finish()
    }
}

fn check_size(width: u32, height: u32) -> Result<()> {
    let ok = |v: u32| (16..=MAX_SIDE).contains(&v);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(LeptonError::plot(
            "figure size",
            format!("{width}x{height} pixels: each side must be in 16..={MAX_SIDE}"),
        ))
    }
}

/// Encodes an 8-bit RGB buffer as PNG (the `png` crate: plotters' own encoder would bring in
/// the whole `image` crate, which every notebook kernel then has to analyse at `:dep lepton`).
fn encode_png(
    out: &mut Vec<u8>,
    width: u32,
    height: u32,
    rgb: &[u8],
) -> std::result::Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename
/// (parent directories are created); on error the temporary file is removed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    create_parent(path)?;
    let tmp = temp_path_for(path);
    if let Err(e) = fs::write(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(LeptonError::io("write", &tmp, e));
    }
    commit_temp(&tmp, path)
}

fn draw_and_present<DB: DrawingBackend>(plot: &Plot, root: &DrawingArea<DB, Shift>) -> Result<()> {
    plot.draw(root)?;
    root.present()
        .map_err(|e| LeptonError::plot(plot.kind(), e))
}
