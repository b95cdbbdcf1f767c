//! The one place input files are opened: every reader (CDF, scenario, fleet,
//! profile, trace, sizing-calc metrics, calibration CSV) goes through here, so
//! a hostile file (`/dev/zero`, a multi-gigabyte blob, a gzip archive, a
//! binary file) gets one clear error instead of exhausting memory or dumping
//! binary into a message.
//!
//! * Whole-file reads ([`read_text`]) stop at [`MAX_FILE_BYTES`].
//! * Streamed reads ([`open_stream`], for traces) have no total limit but stop
//!   at a line longer than [`MAX_LINE_BYTES`].
//! * Gzip-compressed files (magic bytes `1f 8b`) are decompressed
//!   transparently; the limits apply to the decompressed bytes.
//! * A leading UTF-8 byte-order mark is dropped from text.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::error::InputError;

/// Largest input file read whole (CDF, scenario, fleet, profile, metrics), bytes (64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Longest line of a streamed file (a trace row), bytes (1 MiB).
pub const MAX_LINE_BYTES: u64 = 1024 * 1024;

/// Marker put in the io::Error message of a limit violation (so callers can
/// tell a limit from an operating-system error).
const LIMIT_TAG: &str = "input limit";

fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// A reader that fails once more than `max_total` bytes have passed, or
/// once a line grows past `max_line` bytes without a newline.
struct Capped<R> {
    inner: R,
    total: u64,
    line: u64,
    max_total: u64,
    max_line: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never read more than one byte past the limit.
        let room = (self.max_total - self.total.min(self.max_total)).saturating_add(1);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.total += n as u64;
        if self.total > self.max_total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{LIMIT_TAG}: file is larger than the {} MiB limit for input files",
                    mib(self.max_total)
                ),
            ));
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line = 0;
            } else {
                self.line += 1;
                if self.line > self.max_line {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{LIMIT_TAG}: a line is longer than the {} MiB limit",
                            mib(self.max_line)
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// Turn an io::Error raised while reading `path` through [`open_stream`] or
/// [`open_capped_file`] into the input error to report (a limit violation
/// reads `PATH: file is larger than ...` / `PATH: a line is longer than ...`).
pub fn read_error(path: &Path, e: io::Error) -> InputError {
    let msg = e.to_string();
    match msg
        .strip_prefix(LIMIT_TAG)
        .and_then(|m| m.strip_prefix(": "))
    {
        Some(reason) => InputError::File {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        },
        None => InputError::Io {
            path: path.to_path_buf(),
            error: e,
        },
    }
}

/// Open `path` (decompressing gzip), with the given limits.
fn open_capped(
    path: &Path,
    max_total: u64,
    max_line: u64,
) -> Result<Box<dyn BufRead + Send>, InputError> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut raw = BufReader::new(file);
    let gzip = raw
        .fill_buf()
        .map_err(|e| read_error(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let inner: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    Ok(Box::new(BufReader::new(Capped {
        inner,
        total: 0,
        line: 0,
        max_total,
        max_line,
    })))
}

/// Open a streamed input (a trace): gzip is decompressed, lines longer than
/// [`MAX_LINE_BYTES`] fail the read (map the error with [`read_error`]).
pub fn open_stream(path: &Path) -> Result<Box<dyn BufRead + Send>, InputError> {
    open_capped(path, u64::MAX, MAX_LINE_BYTES)
}

/// Open a whole-file input as a byte stream (for CSV readers): gzip is
/// decompressed and more than [`MAX_FILE_BYTES`] fails the read.
pub fn open_capped_file(path: &Path) -> Result<Box<dyn BufRead + Send>, InputError> {
    open_capped(path, MAX_FILE_BYTES, u64::MAX)
}

/// Read a whole text file: at most [`MAX_FILE_BYTES`] (after gzip
/// decompression), UTF-8, a leading byte-order mark dropped.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let mut bytes = Vec::new();
    open_capped_file(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(path, e))?;
    text_of(path, bytes)
}

/// Decode bytes read from `path` as UTF-8 text without a byte-order mark.
fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, InputError> {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            if s.contains('\0') {
                return Err(InputError::File {
                    path: path.to_path_buf(),
                    reason: "binary data (NUL bytes); expected a text file".into(),
                });
            }
            Ok(s)
        }
        Err(e) => Err(InputError::File {
            path: path.to_path_buf(),
            reason: format!(
                "not UTF-8 text (invalid byte at offset {}); expected a text file",
                e.utf8_error().valid_up_to()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kvfleet-input-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn bom_is_dropped_and_binary_is_refused() {
        let p = temp("bom.json", b"\xef\xbb\xbf[1]");
        assert_eq!(read_text(&p).unwrap(), "[1]");
        let p = temp("bin.json", b"\xff\xfe\x00\x01");
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        let p = temp("nul.json", b"[1]\0\0");
        assert!(read_text(&p).unwrap_err().to_string().contains("NUL"));
    }

    #[test]
    fn gzip_is_read_transparently() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello\nworld\n").unwrap();
        let p = temp("t.csv.gz", &enc.finish().unwrap());
        assert_eq!(read_text(&p).unwrap(), "hello\nworld\n");
        let mut lines = String::new();
        open_stream(&p).unwrap().read_to_string(&mut lines).unwrap();
        assert_eq!(lines, "hello\nworld\n");
    }

    #[test]
    fn limits_stop_unbounded_reads() {
        let e = read_text(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("64 MiB limit"), "{e}");
        assert!(e.starts_with("/dev/zero: "), "{e}");
        let mut buf = Vec::new();
        let err = open_stream(Path::new("/dev/zero"))
            .unwrap()
            .read_until(b'\n', &mut buf)
            .unwrap_err();
        let e = read_error(Path::new("/dev/zero"), err).to_string();
        assert!(e.contains("line is longer than the 1 MiB limit"), "{e}");
        assert!(buf.len() as u64 <= MAX_LINE_BYTES + 64 * 1024);
    }
}
