//! Numbers formatted as JavaScript's `Number.prototype.toString` does (shortest round-trip,
//! `1e+21`, `5e-7`, `-0` -> `0`), which is what JSON.stringify writes.

/// Formats a finite `f64` like JS; non-finite values give `null` (JSON.stringify's rule).
pub fn format_js_number(n: f64, buf: &mut ryu_js::Buffer) -> &str {
    if !n.is_finite() {
        return "null";
    }
    if n == 0.0 {
        return "0";
    }
    buf.format_finite(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_js_number_to_string() {
        let mut b = ryu_js::Buffer::new();
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (5e-7, "5e-7"),
            (1e-6, "0.000001"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (123456789012345680000.0, "123456789012345680000"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ];
        for &(n, want) in cases {
            assert_eq!(format_js_number(n, &mut b), want, "{n:e}");
        }
    }
}
