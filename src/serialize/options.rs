//! Checked serialization options (the binding layer converts the JS object into these).

use super::render::RenderConfig;
use crate::error::{Error, Result};
use crate::tokens::Encoding;

/// Smallest `maxSize` that can hold any JSON document's cut form (`[]`, `{}`, `""`).
pub const MIN_MAX_SIZE: usize = 2;

/// Indentation as JSON.stringify's third argument: spaces per level, 0..=10.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Indent(pub usize);

impl Indent {
    /// `pretty: true` = 2 spaces; a number = that many (above 10 clamps to 10 and fractions
    /// floor, as in JSON.stringify); negative or non-finite numbers are refused.
    pub fn from_number(n: f64) -> Result<Indent> {
        if !n.is_finite() || n < 0.0 {
            return Err(Error::invalid_option(
                "pretty",
                format!("must be a boolean or a number from 0 to 10, got {n}"),
            ));
        }
        Ok(Indent((n.floor() as usize).min(10)))
    }

    pub fn from_bool(b: bool) -> Indent {
        Indent(if b { 2 } else { 0 })
    }
}

/// Options of `serialize` / `serializeAsync` after validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerializeOptions {
    pub max_size: Option<usize>,
    pub truncate: bool,
    pub indent: Indent,
    /// Also count the tokens of the text, in this encoding.
    pub count_tokens: Option<Encoding>,
}

impl SerializeOptions {
    /// Validates `maxSize` (a positive integer, at least [`MIN_MAX_SIZE`]); `truncate`
    /// defaults to true when `maxSize` is set.
    pub fn new(max_size: Option<f64>, truncate: Option<bool>, indent: Indent) -> Result<Self> {
        let max_size = match max_size {
            None => None,
            Some(m) => {
                if !(m.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&m)) {
                    return Err(Error::invalid_option(
                        "maxSize",
                        format!("must be a positive integer, got {m}"),
                    ));
                }
                if (m as usize) < MIN_MAX_SIZE {
                    return Err(Error::invalid_option(
                        "maxSize",
                        format!("({m}) is too small to hold any JSON (minimum {MIN_MAX_SIZE})"),
                    ));
                }
                Some(m as usize)
            }
        };
        Ok(SerializeOptions {
            max_size,
            truncate: truncate.unwrap_or(max_size.is_some()),
            indent,
            count_tokens: None,
        })
    }

    pub fn render_config(&self) -> RenderConfig {
        RenderConfig {
            indent: self.indent.0,
            max_size: self.max_size,
            truncate: self.truncate,
        }
    }

    /// Once a tape's lower-bound length passes this, reading more JS is useless: the text
    /// will be cut (or refused) before it.
    pub fn read_limit(&self) -> Option<usize> {
        self.max_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn validates_max_size() {
        for bad in [-1.0, 0.0, 1.5, f64::NAN, f64::INFINITY, 1.0] {
            let e = SerializeOptions::new(Some(bad), None, Indent(0)).unwrap_err();
            assert_eq!(e.code, Code::InvalidOption, "{bad}");
            assert!(e.message.contains("maxSize"));
        }
        let o = SerializeOptions::new(Some(100.0), None, Indent(0)).unwrap();
        assert_eq!(o.max_size, Some(100));
        assert!(o.truncate);
        let o = SerializeOptions::new(Some(100.0), Some(false), Indent(0)).unwrap();
        assert!(!o.truncate);
        let o = SerializeOptions::new(None, None, Indent(0)).unwrap();
        assert!(!o.truncate);
    }

    #[test]
    fn indent_follows_json_stringify() {
        assert_eq!(Indent::from_number(11.0).unwrap(), Indent(10));
        assert_eq!(Indent::from_number(2.7).unwrap(), Indent(2));
        assert_eq!(Indent::from_number(0.0).unwrap(), Indent(0));
        assert!(Indent::from_number(-3.0).is_err());
        assert!(Indent::from_number(f64::NAN).is_err());
        assert_eq!(Indent::from_bool(true), Indent(2));
    }
}
