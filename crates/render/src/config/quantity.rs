//! Kubernetes quantities (`100m`, `1.5Gi`, `1e9`), checked as the API server parses them.
//!
//! k8s-openapi's `Quantity` is only a string; this follows the grammar apimachinery documents
//! and parses (`pkg/api/resource/quantity.go`, `Quantity` and `ParseQuantity`):
//!
//! ```text
//! <quantity>        ::= <signedNumber><suffix>
//! <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//! <signedNumber>    ::= <number> | <sign><number>
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>
//! ```
//!
//! The exponent is an integer (`strconv.ParseInt` in apimachinery's suffixer) of at most 32
//! bits. A resource request must also not be negative (`ValidateResourceQuantityValue`).

/// Why `text` is not a quantity a resource request can have; `None` when it is one.
pub(crate) fn problem(text: &str) -> Option<&'static str> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Some("it does not start with a number");
    }
    if fraction.contains('.') {
        return Some("its number has more than one '.'");
    }
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let decimal = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
    let exponent = suffix.strip_prefix(['e', 'E']).filter(|e| !e.is_empty());
    let suffix_ok = binary.contains(&suffix)
        || decimal.contains(&suffix)
        || exponent.is_some_and(|e| {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && e.parse::<i32>().is_ok()
        });
    if !suffix_ok {
        return Some(
            "its suffix is none of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e9",
        );
    }
    if negative && number.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        return Some("a resource request cannot be negative");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    fn check(text: &str, expected: Option<&str>) {
        assert_eq!(problem(text), expected, "{text}");
    }

    #[test]
    fn accepts_what_apimachinery_parses() {
        for text in [
            "1", "0", "100m", "0.5", ".5", "1.", "1.5Gi", "256Mi", "1e9", "1E3", "2e-3", "+1", "-0", "12n", "5u", "1k",
            "3P", "7Ei",
        ] {
            check(text, None);
        }
    }

    #[test]
    fn refuses_what_apimachinery_refuses() {
        let suffix =
            Some("its suffix is none of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e9");
        check("", Some("it does not start with a number"));
        check("Mi", Some("it does not start with a number"));
        check(".", Some("it does not start with a number"));
        check("1.2.3", Some("its number has more than one '.'"));
        check("1KB", suffix);
        check("1ki", suffix);
        check("1e", suffix);
        check("1e1.5", suffix);
        check("1e99999999999", suffix);
        check("1 Gi", suffix);
        check("-1", Some("a resource request cannot be negative"));
    }
}
