//! Reading and writing IDX files (the MNIST file format), plain or gzip-compressed.
//!
//! An IDX file is a big-endian header followed by the data:
//!
//! | file   | magic        | header                         | data                  |
//! |--------|--------------|--------------------------------|-----------------------|
//! | images | `0x00000803` | magic, count, rows, cols (u32) | count·rows·cols bytes |
//! | labels | `0x00000801` | magic, count (u32)             | count bytes           |
//!
//! A file whose first two bytes are the gzip magic `1f 8b` is decompressed first (once, into
//! one buffer); anything else is read as raw IDX.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{IdxProblem, LeptonError, Result};

/// Magic number of an IDX file of `u8` values with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` values with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The images of an IDX image file: `count` images of `rows`×`cols` bytes, row-major.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, each row-major.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for IdxImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdxImages {{ count: {}, rows: {}, cols: {}, .. }}", self.count, self.rows, self.cols)
    }
}

fn idx_error(path: &Path, problem: IdxProblem) -> LeptonError {
    LeptonError::Idx { path: path.to_path_buf(), problem }
}

/// Reads a whole file, decompressing it if it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| LeptonError::io("read IDX file", path, e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    // The gzip trailer stores the uncompressed size mod 2^32: use it (bounded, in case the
    // trailer is garbage) to allocate the output once.
    let hint = raw
        .get(raw.len().saturating_sub(4)..)
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as usize)
        .min(raw.len().saturating_mul(1032).saturating_add(1024))
        .min(1 << 31);
    let mut out = Vec::with_capacity(hint);
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| idx_error(path, IdxProblem::Gzip(e.to_string())))?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    <[u8; 4]>::try_from(word).ok().map(u32::from_be_bytes)
}

/// Checks the magic and header length; returns the header's u32 fields after the magic.
fn header(path: &Path, bytes: &[u8], magic: u32, what: &'static str, len: usize) -> Result<Vec<usize>> {
    if bytes.is_empty() {
        return Err(idx_error(path, IdxProblem::NoRecords));
    }
    let short = || idx_error(path, IdxProblem::ShortHeader { expected: len, found: bytes.len() });
    let found = be_u32(bytes, 0).ok_or_else(short)?;
    if found != magic {
        return Err(idx_error(path, IdxProblem::BadMagic { found, expected: magic, what }));
    }
    (4..len).step_by(4).map(|at| be_u32(bytes, at).map(|v| v as usize).ok_or_else(short)).collect()
}

/// Checks that `data_len` bytes follow the header, as the header says.
fn check_data_len(path: &Path, expected: Option<usize>, data_len: usize) -> Result<()> {
    match expected {
        Some(e) if e == data_len => Ok(()),
        Some(e) if e < data_len => Err(idx_error(path, IdxProblem::TrailingBytes { extra: data_len - e })),
        // An overflowing size cannot fit in memory, so the file is necessarily short.
        Some(e) => Err(idx_error(path, IdxProblem::Truncated { expected: e, found: data_len })),
        None => Err(idx_error(path, IdxProblem::Truncated { expected: usize::MAX, found: data_len })),
    }
}

/// Reads an IDX image file (magic `0x00000803`, `u8` pixels), gzip-compressed or raw.
///
/// Errors: [`LeptonError::Io`] if the file cannot be read, otherwise [`LeptonError::Idx`]
/// naming the file with [`IdxProblem::BadMagic`], [`IdxProblem::ShortHeader`],
/// [`IdxProblem::Truncated`], [`IdxProblem::TrailingBytes`], [`IdxProblem::NoRecords`],
/// [`IdxProblem::ZeroDims`] or [`IdxProblem::Gzip`].
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let mut bytes = read_maybe_gzip(path)?;
    let fields = header(path, &bytes, IDX_IMAGES_MAGIC, "u8 images, 3 dimensions", IMAGES_HEADER)?;
    let (count, rows, cols) = match fields.as_slice() {
        [count, rows, cols] => (*count, *rows, *cols),
        _ => return Err(idx_error(path, IdxProblem::ShortHeader { expected: IMAGES_HEADER, found: bytes.len() })),
    };
    if count == 0 {
        return Err(idx_error(path, IdxProblem::NoRecords));
    }
    if rows == 0 || cols == 0 {
        return Err(idx_error(path, IdxProblem::ZeroDims { rows, cols }));
    }
    let expected = count.checked_mul(rows).and_then(|v| v.checked_mul(cols));
    check_data_len(path, expected, bytes.len().saturating_sub(IMAGES_HEADER))?;
    bytes.drain(..IMAGES_HEADER);
    Ok(IdxImages { count, rows, cols, pixels: bytes })
}

/// Reads an IDX label file (magic `0x00000801`, one `u8` per record), gzip-compressed or raw.
///
/// Errors as for [`read_idx_images`] (without [`IdxProblem::ZeroDims`]).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let mut bytes = read_maybe_gzip(path)?;
    let fields = header(path, &bytes, IDX_LABELS_MAGIC, "u8 labels, 1 dimension", LABELS_HEADER)?;
    let count = match fields.as_slice() {
        [count] => *count,
        _ => return Err(idx_error(path, IdxProblem::ShortHeader { expected: LABELS_HEADER, found: bytes.len() })),
    };
    if count == 0 {
        return Err(idx_error(path, IdxProblem::NoRecords));
    }
    check_data_len(path, Some(count), bytes.len().saturating_sub(LABELS_HEADER))?;
    bytes.drain(..LABELS_HEADER);
    Ok(bytes)
}

/// Writes `header` then `data` to `path`, gzip-compressed (mtime 0) if the name ends in `.gz`.
pub(super) fn write_idx(path: &Path, header: &[u32], data: &[u8]) -> Result<()> {
    let io = |e| LeptonError::io("write IDX file", path, e);
    let mut bytes = Vec::with_capacity(4 * header.len() + data.len());
    for v in header {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let gz = path.extension().is_some_and(|e| e == "gz");
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    if gz {
        let mut enc = flate2::GzBuilder::new().mtime(0).write(out, flate2::Compression::best());
        enc.write_all(&bytes).map_err(io)?;
        out = enc.finish().map_err(io)?;
    } else {
        out.write_all(&bytes).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Converts a size to an IDX header field, or explains why it does not fit.
pub(super) fn header_field(path: &Path, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        LeptonError::io(
            "write IDX file",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} {v} does not fit in a u32 header field")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn be_u32_is_bounds_checked() {
        assert_eq!(be_u32(&[0, 0, 8, 3, 7], 0), Some(0x803));
        assert_eq!(be_u32(&[0, 0, 8], 0), None);
        assert_eq!(be_u32(&[0; 8], usize::MAX - 1), None);
    }

    #[test]
    fn data_length_checks() {
        let p = Path::new("f");
        assert!(check_data_len(p, Some(4), 4).is_ok());
        let problem = |r: Result<()>| match r {
            Err(LeptonError::Idx { problem, .. }) => Some(problem),
            _ => None,
        };
        assert_eq!(problem(check_data_len(p, Some(4), 6)), Some(IdxProblem::TrailingBytes { extra: 2 }));
        assert_eq!(problem(check_data_len(p, Some(4), 3)), Some(IdxProblem::Truncated { expected: 4, found: 3 }));
        assert_eq!(problem(check_data_len(p, None, 3)), Some(IdxProblem::Truncated { expected: usize::MAX, found: 3 }));
    }

    #[test]
    fn header_reports_magic_before_length() {
        let p = Path::new("f");
        let err = header(p, &[0, 0, 8, 1, 0], IDX_IMAGES_MAGIC, "images", 16);
        assert!(matches!(err, Err(LeptonError::Idx { problem: IdxProblem::BadMagic { found: 0x801, .. }, .. })));
        let err = header(p, &[0, 0, 8, 3, 0], IDX_IMAGES_MAGIC, "images", 16);
        assert!(matches!(err, Err(LeptonError::Idx { problem: IdxProblem::ShortHeader { expected: 16, found: 5 }, .. })));
        assert_eq!(header(p, &[0, 0, 8, 1, 0, 0, 0, 2], IDX_LABELS_MAGIC, "labels", 8).ok(), Some(vec![2]));
    }
}
